"""Four-number vector steps for the compiled loops of :mod:`.loops` (numba).

The gather of ``L_mm`` and the scatter of the conditional covariances move a
(row, pair)'s K components, which lie side by side in memory, but at
positions read from an array: numba's index of each number then carries its
own test for a negative index, so the compiler never sees four neighbours
(it moved them one number at a time, measured 2-3 times slower). These steps
take the four as one LLVM vector of doubles: no index test, no bounds
check; the caller keeps ``at + 4 <= size``.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_FOUR = ir.VectorType(ir.DoubleType(), 4)


def _flat(*arrays) -> bool:  # noqa: ANN002
    """Whether every argument is a C-contiguous 1-d float64 array (the only
    kind these steps are for: a pointer plus an index)."""
    return all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"
               and a.dtype == types.float64 for a in arrays)


def _four_at(context, builder, array_type, array, index):  # noqa: ANN001, ANN202
    """A pointer to ``array[index:index + 4]`` as one vector."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), _FOUR.as_pointer())


@intrinsic
def copy4(typingctx, src, at, dst, to):  # noqa: ANN001, ANN201, ARG001
    """``dst[to:to + 4] = src[at:at + 4]`` (float64, C-contiguous)."""
    if not _flat(src, dst):
        return None
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        source = _four_at(context, builder, signature.args[0], args[0], args[1])
        target = _four_at(context, builder, signature.args[2], args[2], args[3])
        builder.store(builder.load(source, align=8), target, align=8)
        return context.get_dummy_value()
    return types.void(src, at, dst, to), codegen


@intrinsic
def add_product4(typingctx, out, at, x, i, y, j):  # noqa: ANN001, ANN201, ARG001
    """``out[at:at + 4] += x[i:i + 4] * y[j:j + 4]`` (float64, C-contiguous;
    one fused multiply-add per number)."""
    if not _flat(out, x, y):
        return None
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        a, b, c = (_four_at(context, builder, signature.args[n], args[n], args[n + 1])
                   for n in (0, 2, 4))
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_FOUR, [_FOUR] * 3), "llvm.fma.v4f64")
        total = builder.call(fma, [builder.load(b, align=8), builder.load(c, align=8),
                                   builder.load(a, align=8)])
        builder.store(total, a, align=8)
        return context.get_dummy_value()
    return types.void(out, at, x, i, y, j), codegen
