"""Log-space helpers: logsumexp and normalisation of log-probabilities, for
any array namespace. Every log-sum-exp in gaussmix goes through here."""

from __future__ import annotations

from typing import Any

from .xp import array_namespace, exp_in_place


def logsumexp(a: Any, axis: int = -1) -> Any:
    """``log(sum(exp(a), axis))`` without overflow, in ``a``'s namespace.

    Rows that are ``-inf`` throughout give ``-inf`` (not NaN); a ``+inf``
    entry gives ``+inf``.

    Examples
    --------
    >>> import numpy as np
    >>> logsumexp(np.log(np.array([[1.0, 3.0], [2.0, 2.0]])), axis=1)
    array([1.38629436, 1.38629436])
    >>> logsumexp(np.array([[-np.inf, -np.inf]]), axis=1)
    array([-inf])
    """
    xp = array_namespace(a)
    top = _finite_top(a, axis, xp)
    total = xp.sum(xp.exp(a - top), axis=axis)
    return safe_log(total, xp) + xp.squeeze(top, axis=axis)


def log_normalise(a: Any, axis: int = 0) -> tuple[Any, Any]:
    """``(a - logsumexp(a), logsumexp(a))``, stable when ``|a|`` is huge.

    Subtracting the maximum before the logarithm of the sum keeps the log
    of normalised probabilities exact where ``logsumexp`` itself would round
    (``-1e81 + log 2 == -1e81``).

    Examples
    --------
    >>> import numpy as np
    >>> log_resp, log_norm = log_normalise(np.array([[-1e81, -1e81]]), axis=1)
    >>> float(np.exp(log_resp).sum())
    1.0
    """
    xp = array_namespace(a)
    top = _finite_top(a, axis, xp)
    shifted = a - top
    log_total = safe_log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True), xp)
    return shifted - log_total, xp.squeeze(log_total + top, axis=axis)


def normalise_in_place(a: Any, top: Any) -> tuple[Any, Any]:
    """Turn log-probabilities (K, n) with column maxima ``top`` (n,) into
    probabilities with one exp, reusing ``a``'s memory where possible.

    Returns the probabilities and ``logsumexp(a, axis=0)``.
    """
    xp = array_namespace(a)
    a -= top[None, :]
    a = exp_in_place(a)
    total = xp.sum(a, axis=0)
    a /= total[None, :]
    return a, xp.log(total) + top


def safe_log(x: Any, xp: Any) -> Any:
    """``log(x)`` for ``x >= 0``, with ``log(0) = -inf`` and no warning."""
    positive = x > 0
    return xp.where(positive, xp.log(xp.where(positive, x, xp.ones_like(x))),
                    xp.full_like(x, -xp.inf))


def _finite_top(a: Any, axis: int, xp: Any) -> Any:
    top = xp.max(a, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(top), top, xp.zeros_like(top))
