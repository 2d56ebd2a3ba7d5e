"""Errors and warnings as the shell user should read them.

The estimator speaks Python: ``increase reg_covar``, ``row 3`` (0-based),
``sklearn.impute.SimpleImputer``. The commands check what they can first, with
file positions (:func:`gaussmix.files.tables.check_numbers`); whatever still
comes from the estimator is translated here, at the boundary, into option
names and advice about files: :func:`error_message` for errors and
:func:`warning_messages` for warnings, each reported for what it says.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from sklearn.exceptions import ConvergenceWarning, NotFittedError

from ..files.model import ModelFileError
from ..files.tables import DataError

__all__ = ["EXPECTED_ERRORS", "error_message", "translate", "warning_messages"]

#: Errors reported as one line (exit status 2) rather than a traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    DataError, ModelFileError, NotFittedError, ValueError, OSError, ImportError,
)

#: Estimator parameter names and the options that set them.
_OPTIONS = {
    "reg_covar": "--reg-covar",
    "max_iter": "--max-iter",
    "tol": "--tol",
    "n_init": "--n-init",
    "n_components": "-k",
    "covariance_type": "--covariance",
    "init_params": "--init",
    "random_state": "--seed",
    "n_threads": "--threads",
    "sample_weight": "the --weights column",
    "n_samples": "the number of rows",
}
# not after '-': a message may already name an option ("--tol")
_OPTION_NAMES = re.compile(r"'?(?<![-\w])(" + "|".join(_OPTIONS) + r")\b'?")
_PHRASES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # scikit-learn's advice for arrays, for rows of a file instead
    (re.compile(r"\s*\w+ does not accept missing values encoded as NaN natively\..*?"
                r"#estimators-that-handle-nan-values", re.DOTALL), ""),
    (re.compile(r"Remove or impute them \(e\.g\. sklearn\.[\w.]+\)[^.;]*"),
     "Fill in or remove those rows in the file"),
    (re.compile(r"decrease the number of components"), "lower -k"),
    # 0-based array positions, counted from 1 as in the file
    (re.compile(r"\bat row (\d+), column (\d+)"),
     lambda m: f"at data row {int(m[1]) + 1}, column {int(m[2]) + 1} (counting from 1)"),
    (re.compile(r"\bat row (\d+)\b"),
     lambda m: f"at data row {int(m[1]) + 1} (counting from 1)"),
]
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{32}\.tmp$")


def translate(text: str) -> str:
    """An estimator message in command-line terms.

    >>> translate("Try to decrease the number of components, increase reg_covar.")
    'Try to lower -k, increase --reg-covar.'
    >>> print(translate("the first is at row 2, column 0. Remove or impute them "
    ...                 "(e.g. sklearn.impute.SimpleImputer) before fitting."))
    ... # doctest: +NORMALIZE_WHITESPACE
    the first is at data row 3, column 1 (counting from 1). Fill in or remove those
    rows in the file.
    """
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    return _OPTION_NAMES.sub(lambda m: _OPTIONS[m[1]], text)


def _user_path(filename: Any) -> str:
    """The file the user named, for a hidden temporary file written in its place."""
    path = os.fspath(filename)
    head, tail = os.path.split(path)
    match = _TEMPORARY.match(tail)
    return os.path.join(head, match["name"]) if match else path


def error_message(exc: BaseException) -> str:
    """One line describing an expected error, in command-line terms."""
    if (isinstance(exc, OSError) and not isinstance(exc, DataError)
            and exc.strerror and exc.filename):
        text = f"{_user_path(exc.filename)!r}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
        if not isinstance(exc, (DataError, ModelFileError, ImportError, OSError)):
            text = translate(text)
    return " ".join(text.split())


def warning_messages(
    caught: Sequence[warnings.WarningMessage], estimator: Any
) -> list[str]:
    """One line per distinct warning raised while fitting ``estimator``.

    EM's own ConvergenceWarning (the fit stopped at ``max_iter``) becomes
    advice about ``--max-iter``; any other warning, k-means' "fewer distinct
    clusters than components" among them, is reported for what it says.
    """
    lines: list[str] = []
    for item in caught:
        if issubclass(item.category, (DeprecationWarning, PendingDeprecationWarning)):
            continue  # about code, not about the data or the options
        text = _warning_message(item, estimator)
        if text not in lines:
            lines.append(text)
    return lines


_KMEANS_DISTINCT = re.compile(
    r"Number of distinct clusters \((\d+)\) found smaller than n_clusters \((\d+)\)"
)


def _warning_message(item: warnings.WarningMessage, estimator: Any) -> str:
    text = " ".join(str(item.message).split())
    em_stopped = (issubclass(item.category, ConvergenceWarning)
                  and "did not converge" in text
                  and getattr(estimator, "converged_", True) is False)
    if em_stopped:
        return (f"EM did not converge in {estimator.max_iter} iterations; raise "
                "--max-iter or --tol, or try --n-init > 1")
    match = _KMEANS_DISTINCT.search(text)
    if match:
        return (f"the k-means initialisation found only {match[1]} distinct "
                f"clusters for -k {match[2]}, probably because of duplicate rows; "
                "some components start from the same points: lower -k or remove "
                "the duplicates")
    return translate(text)
