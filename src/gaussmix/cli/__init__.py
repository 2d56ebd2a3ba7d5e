"""The ``gaussmix`` command line.

``app`` holds the click group and its error handling, ``errors`` the
translation of estimator errors and warnings into command-line terms,
``inputs`` the checks of models, data files and outputs that every command
makes first; the commands are in ``fit`` (fit, example), ``apply`` (predict,
score, plot), ``sample`` and ``select``; ``options`` holds the options they
share and ``progress`` the live display of EM progress.
"""

from .app import main, run

__all__ = ["main", "run"]
