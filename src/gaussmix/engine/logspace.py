"""Log-space helpers: the one logsumexp of gaussmix, for any array namespace."""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace


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
    top = xp.max(a, axis=axis, keepdims=True)
    top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
    total = xp.sum(xp.exp(a - top), axis=axis)
    return safe_log(total, xp) + xp.squeeze(top, axis=axis)


def safe_log(x: Any, xp: Any) -> Any:
    """``log(x)`` for ``x >= 0``, with ``log(0) = -inf`` and no warning."""
    positive = x > 0
    return xp.where(positive, xp.log(xp.where(positive, x, xp.ones_like(x))),
                    xp.full_like(x, -xp.inf))
