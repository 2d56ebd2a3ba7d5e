"""Full-width vectors for the compiled loops on AVX-512 machines.

LLVM, which numba compiles with, prefers 256-bit vectors on Intel's AVX-512
CPUs (a tuning from the Skylake server cores, whose clock dropped under
512-bit instructions), so numba's vectorised loops do half the arithmetic per
instruction that OpenBLAS's products do on the same core. The 4 x 4 block of
second moments (:mod:`.moments`) ran at 31 GFLOP/s with 256-bit and 64 with
512-bit vectors on one core of a 2-core Emerald Rapids VM (see BENCHMARKS.md).

:func:`prefer_full_width` runs before the loops are compiled or loaded from
numba's cache (the first lines of :mod:`.moments` and :mod:`.tile_steps`,
which every set of loops imports) and, with ``GAUSSMIX_FULL_WIDTH=1`` set,
asks numba for the host's own CPU features with that tuning off. It is off by
default: numba then takes about three times as long to compile the loops the
first time (measured: one half of ``.ci/warm_numba.py``, 65-72 s with 256-bit
vectors, 181 s with 512-bit ones), against an EM iteration about 10% faster
at d=16 (BENCHMARKS.md). It changes nothing where:

- the host has no AVX-512 (there is no wider vector to prefer);
- ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES`` is set (the user's choice);
- numba has compiled code in this process already (its code generator, and
  with it the features, is set up once per process).

The setting is numba's, for the process: other numba code compiled after it
gets the same tuning (the same instructions, wider; results agree to
rounding). numba keeps separate cache entries per feature string.
"""

from __future__ import annotations

import os

#: Environment variable: ``1`` asks for 512-bit vectors (default: numba's own width).
SWITCH = "GAUSSMIX_FULL_WIDTH"

#: The LLVM tuning (a feature of the x86 target) that halves the width.
NARROW_TUNING = "prefer-256-bit"


def prefer_full_width() -> bool:
    """With ``GAUSSMIX_FULL_WIDTH=1``, ask numba for 512-bit vectors where
    the host has them (see the module notes); True if the setting is in place
    after the call."""
    from numba.core import codegen, config, registry

    wanted = f"-{NARROW_TUNING}"
    chosen = getattr(config, "CPU_FEATURES", None)  # set from the environment
    if chosen is not None:
        return bool(chosen.endswith(wanted))
    if (os.environ.get(SWITCH, "0") != "1" or getattr(config, "CPU_NAME", None) is not None
            or "_toplevel_target_context" in vars(registry.cpu_target)):
        return False
    features = codegen.get_host_cpu_features()
    if "+avx512f" not in features.split(","):
        return False
    config.CPU_FEATURES = f"{features},{wanted}"  # type: ignore[attr-defined]
    return True
