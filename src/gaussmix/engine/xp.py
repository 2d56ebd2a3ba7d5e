"""The array namespace the chunk kernels are written against.

The kernels use only the Python array API standard (through
``array-api-compat``, the route scikit-learn and SciPy take), so the same code
runs on NumPy arrays, on torch tensors and, in the tests, on
``array-api-strict`` arrays, which reject anything outside the standard. Why
the standard rather than a second copy of the kernels per library: one kernel
per covariance type stays the single reference for every backend.

A few primitives have a faster NumPy spelling than the standard offers
(``einsum`` reduces over a middle axis several times faster than ``vecdot``),
and torch has in-place and one-pass spellings that spare a GPU passes over the
chunk's largest work array; they live here, each with the standard spelling
as the general case. Small
``K x d x d`` work (Cholesky factors, the M-step) stays in NumPy float64 on the
host; :func:`to_host` and :func:`from_host` move arrays across.
"""

from __future__ import annotations

from typing import Any

import array_api_compat.numpy as _numpy_namespace
import numpy as np
from array_api_compat import array_namespace as _compat_namespace
from array_api_compat import (
    device,
    is_numpy_array,
    is_numpy_namespace,
    is_torch_array,  # a tensor? (never imports torch)
    is_torch_namespace,
)

__all__ = [
    "array_namespace",
    "device",
    "exp_in_place",
    "from_host",
    "is_numpy",
    "is_torch",
    "is_torch_array",
    "squared_norms",
    "to_host",
    "weighted_grams",
]


def array_namespace(*arrays: Any, **options: Any) -> Any:
    """``array_api_compat.array_namespace``, answered at once for plain NumPy
    arrays (its checks cost about 2.6 us a call, and a small pass or a
    ``partial_fit`` call makes tens of them).

    Examples
    --------
    >>> import array_api_compat
    >>> a = np.ones(2)
    >>> array_namespace(a, a) is array_api_compat.array_namespace(a)
    True
    """
    if not options and arrays and all(type(a) is np.ndarray for a in arrays):
        return _numpy_namespace
    return _compat_namespace(*arrays, **options)


def is_numpy(xp: Any) -> bool:
    """Whether ``xp`` is NumPy's namespace (the fast paths below apply)."""
    # (the usual answer by identity: asked about ten times per kernel build)
    return xp is _numpy_namespace or bool(is_numpy_namespace(xp))


def is_torch(xp: Any) -> bool:
    """Whether ``xp`` is torch's namespace (its fast paths below apply)."""
    return bool(is_torch_namespace(xp))


def to_host(a: Any, dtype: Any = np.float64) -> np.ndarray:
    """An array of any namespace as a NumPy array of ``dtype`` on the host."""
    if type(a) is np.ndarray or is_numpy_array(a):
        return np.asarray(a, dtype=dtype)
    if hasattr(a, "cpu"):  # torch: leave the device first
        a = a.detach().cpu()
    try:
        return np.asarray(np.from_dlpack(a), dtype=dtype)
    except (TypeError, RuntimeError, BufferError, AttributeError):
        return np.asarray(a, dtype=dtype)


def from_host(a: np.ndarray, xp: Any, dtype: Any, device: Any = None) -> Any:
    """A host NumPy array as an array of ``dtype`` in namespace ``xp`` on ``device``."""
    if is_numpy(xp):
        return np.asarray(a, dtype=dtype)
    return xp.asarray(np.ascontiguousarray(a), dtype=dtype, device=device)


def exp_in_place(a: Any) -> Any:
    """``exp(a)``, overwriting ``a`` where the namespace allows it."""
    xp = array_namespace(a)
    if is_numpy(xp):
        return np.exp(a, out=a)
    if is_torch(xp):
        return a.exp_()
    return xp.exp(a)


def squared_norms(a: Any, axis: int) -> Any:
    """Sum of squares of ``a`` along ``axis`` (no temporary copy in NumPy)."""
    xp = array_namespace(a)
    if is_numpy(xp):
        letters = "abcdefgh"[: a.ndim]
        out = letters.replace(letters[axis], "")
        return np.einsum(f"{letters},{letters}->{out}", a, a)
    if is_torch(xp) and a.device.type == "cuda":
        # One reduction pass, no (a * a) temporary (a GPU is bound by memory
        # traffic here). Not on the CPU, where torch's norm over a middle axis
        # is ~20x slower than the sum of products.
        import torch

        return torch.linalg.vector_norm(a, dim=axis).square_()
    return xp.sum(a * a, axis=axis)


def weighted_grams(a: Any, weights: Any) -> Any:
    """``sum_i w_ki a_k[:, i] a_k[:, i]^T`` for a (K, d, n) stack ``a`` and
    non-negative (K, n) weights: (K, d, d). ``a`` is overwritten.

    The general spelling scales ``a`` by ``sqrt(w)`` in place and makes one
    batched product. On a CUDA GPU that product (K long, thin matrices, tiny
    outputs) keeps only K of the multiprocessors busy (measured on an H200:
    89 ms for K=32, d=32, n=2.5M, three quarters of an iteration), so there
    the rows are cut into blocks that become batches of their own
    (:func:`blocked_weighted_grams`).

    Examples
    --------
    >>> a = np.arange(12.0).reshape(2, 2, 3)
    >>> w = np.ones((2, 3))
    >>> np.allclose(weighted_grams(a.copy(), w), a @ a.transpose(0, 2, 1))
    True
    """
    xp = array_namespace(a)
    if is_torch(xp) and a.device.type == "cuda":
        K, _, n = a.shape
        return blocked_weighted_grams(a, weights, _row_blocks(a.device, K, n))
    a *= xp.sqrt(weights)[:, None, :]
    return a @ xp.permute_dims(a, (0, 2, 1))


#: Batches per multiprocessor that a blocked product aims at, and the fewest
#: rows of a block (shorter ones lose more to their launch and sums than the
#: extra batches gain).
BATCHES_PER_MULTIPROCESSOR = 4
SMALLEST_BLOCK_ROWS = 8192


def _row_blocks(device: Any, n_matrices: int, n_rows: int) -> int:
    import torch

    sms = torch.cuda.get_device_properties(device).multi_processor_count
    wanted = -(-BATCHES_PER_MULTIPROCESSOR * sms // n_matrices)
    return max(1, min(wanted, n_rows // SMALLEST_BLOCK_ROWS))


def blocked_weighted_grams(a: Any, weights: Any, blocks: int) -> Any:
    """:func:`weighted_grams` of torch tensors with the rows cut into
    ``blocks`` equal blocks (and the remainder): the scaled blocks are
    written as (K * blocks) matrices in one pass (the scaling's own pass, so
    no extra traffic) and multiplied as one batch; the blocks' products are
    summed. Needs room for a copy of ``a``."""
    import torch

    K, d, n = a.shape
    rows = n // blocks
    head = rows * blocks
    root = torch.sqrt(weights)
    out = torch.empty((K, blocks, d, rows), dtype=a.dtype, device=a.device)
    torch.mul(a[:, :, :head].reshape(K, d, blocks, rows).permute(0, 2, 1, 3),
              root[:, :head].reshape(K, blocks, 1, rows), out=out)
    flat = out.view(K * blocks, d, rows)
    grams = torch.matmul(flat, flat.mT).view(K, blocks, d, d).sum(dim=1)
    if head < n:
        tail = a[:, :, head:] * root[:, None, head:]
        grams += tail @ tail.mT
    return grams


def nonnegative(a: Any) -> Any:
    """``maximum(a, 0)``, overwriting ``a`` where the namespace allows it."""
    xp = array_namespace(a)
    if is_numpy(xp):
        return np.maximum(a, 0.0, out=a)
    if is_torch(xp):
        return a.clamp_(min=0.0)
    return xp.where(a > 0, a, xp.zeros_like(a))


def squares_and_centred(X: Any, centre: Any) -> Any:
    """``[(X - c)^2, X - c]`` side by side, shape (n, 2d), built in place in NumPy."""
    xp = array_namespace(X)
    if is_numpy(xp):
        n, d = X.shape
        # (X's dtype, or float64 for a float64 centre: float32 rows scored in
        # float64, see CovarianceType._precise_enough)
        out = np.empty((n, 2 * d), dtype=np.result_type(X, centre))
        np.subtract(X, centre, out=out[:, d:])
        np.square(out[:, d:], out=out[:, :d])
        return out
    centred = X - centre
    return xp.concat([centred * centred, centred], axis=1)


def centred_with_ones(X: Any, centre: Any) -> Any:
    """``[X - c, 1]``, shape (n, d + 1): one product with it applies a linear
    map and subtracts offsets (built in place in NumPy)."""
    xp = array_namespace(X)
    if is_numpy(xp):
        n, d = X.shape
        out = np.empty((n, d + 1), dtype=X.dtype)
        np.subtract(X, centre, out=out[:, :d])
        out[:, d] = 1.0
        return out
    return xp.concat([X - centre, xp.ones_like(X[:, :1])], axis=1)
