"""The ``gaussmix`` command line.

``app`` holds the click group and the fit/predict/score/sample/plot/example
commands, ``select`` the model-selection command, ``options`` the EM options
they share and ``progress`` the live display of EM progress.
"""

from .app import main, run

__all__ = ["main", "run"]
