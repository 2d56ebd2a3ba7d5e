#!/usr/bin/env bash
# The checks made on a lent GPU machine (one NVIDIA H200, 16 CPU cores) in one
# short call, from the repository's root there:
#   1. the torch tests with tensors on the GPU (GAUSSMIX_TEST_DEVICE=cuda);
#   2. benchmarks/bench_gpu.py (gaussmix and the GPU peers, same start);
#   3. thread scaling on the 16 CPU cores, n=1M, d=16, K=8, full (issue
#      "Speed on every core"), with a chunk_size sweep at 16 threads;
#   4. 1 against 16 threads for the other cases of bench_em.py;
#   5. the GIL share of a single-threaded pass (bench_gil.py).
# Python packages missing there travel as wheels in .whl/ (see the device
# tool's notes): array-api-compat, pomegranate, apricot-select, gmmx.
# Usage: bash benchmarks/device_run.sh OUTDIR   (each step has its own time limit)
set -u
out=${1:-/tmp/gaussmix-device}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
step() { echo "== $(date -u +%H:%M:%S) $*"; }

step machine
{ nproc; lscpu | grep -E 'Model name|Thread|Core|Socket|L1d|L2|L3|NUMA node0'
  nvidia-smi -L
  python3 -c 'import numpy, numba, torch, sklearn, scipy
print("numpy", numpy.__version__, "numba", numba.__version__, "torch", torch.__version__,
      "sklearn", sklearn.__version__, "scipy", scipy.__version__)'
} 2>&1 | tee "$out/machine.txt"

step torch tests on the GPU
GAUSSMIX_TEST_DEVICE=cuda timeout 80 python3 -m pytest -q -p no:randomly \
    -p no:cacheprovider tests/test_torch.py 2>&1 | tail -30 | tee "$out/gpu_tests.txt"

step GPU benchmark
SCIPY_ARRAY_API=1 timeout 140 python3 benchmarks/bench_gpu.py --json "$out/gpu.json" \
    2>&1 | tee "$out/gpu.txt"

step CPU thread scaling
timeout 140 python3 benchmarks/bench_em.py --gaussmix-only --case 0 --rows 1000000 \
    --threads 1,2,4,8,16 --chunk-sizes 4096,8192,32768 --iter 10 --repeat 3 \
    2>&1 | tee "$out/scaling.txt"

step other cases, 1 and 16 threads
timeout 75 python3 benchmarks/bench_em.py --gaussmix-only --case 1 --case 2 --case 3 \
    --case 4 --case 5 --threads 1,16 --iter 5 --repeat 1 2>&1 | tee "$out/cases.txt"

step GIL share
timeout 35 python3 benchmarks/bench_gil.py --repeat 3 2>&1 | tee "$out/gil.txt"
step done
