"""Glue to other array libraries and schedulers (Dask, torch), imported lazily.

Empty until scale-out and GPU support land: each backend will supply a source
and a reducer for the engine's fold, and an array namespace for its kernels.
"""
