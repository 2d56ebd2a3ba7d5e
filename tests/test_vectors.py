"""The compiled loops ask numba for full-width vectors (engine.fused.vectors),
in a fresh process each: numba sets its CPU features up once per process."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

SHOW = ("import {first}; import gaussmix.engine.fused.moments; "
        "from numba.core import config; print(config.CPU_FEATURES)")


def features_after(env: dict[str, str], first: str = "numpy") -> str:
    """numba's CPU features once the loops' modules are imported (after
    ``first``), in a new interpreter with ``env`` added."""
    run = subprocess.run([sys.executable, "-c", SHOW.format(first=first)],
                         env={**os.environ, **env}, capture_output=True, text=True,
                         check=True)
    return run.stdout.strip()


def host_has_avx512() -> bool:
    from numba.core.codegen import get_host_cpu_features
    return "+avx512f" in get_host_cpu_features().split(",")


def test_full_width_when_asked_on_avx512_hosts_only():
    assert features_after({}) == "None"  # off by default
    features = features_after({"GAUSSMIX_FULL_WIDTH": "1"})
    if host_has_avx512():
        assert features.endswith(",-prefer-256-bit")
        assert "+avx512f" in features.split(",")
    else:
        assert features == "None"


def test_users_choice_is_kept():
    assert features_after({"GAUSSMIX_FULL_WIDTH": "1", "NUMBA_CPU_NAME": "generic"}) in (
        "", "None")


def test_numba_already_compiling_is_left_alone():
    first = "numba; numba.njit(lambda x: x + 1)(1)"
    assert features_after({"GAUSSMIX_FULL_WIDTH": "1"}, first) == "None"
