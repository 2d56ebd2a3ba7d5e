"""Fill numba's on-disk cache of gaussmix's compiled loops in two processes.

The test suite compiles the loops as it first meets them, one after another
(about two minutes of CPU on the CI machine's 2 cores); compiling them here in
two processes at once halves that wall time. Only a speed-up: any loop missed
here is compiled by the tests as before. ``python .ci/warm_numba.py`` runs both
halves; ``python .ci/warm_numba.py PART`` runs one.
"""

import os
import subprocess
import sys
import warnings

import numpy as np

# (covariance types, dtypes, with missing values): two halves of about equal
# compile time. Measured 2026-11-29 in a fresh cache, one process each: on the
# Intel VM the missing-value loops (with full float32 then) 171 s, the rest 65 s
# (full float32 now goes with the rest); on an AMD EPYC VM later that day 75 s
# and 46 s. (Read-only rows, memory-mapped files, share these compilations:
# the loops take read-only views, see gaussmix.engine.compiled_inputs.read_only.)
PARTS = {
    "a": [("full", "float64", True), ("diag", "float64", True)],
    "b": [("full", "float64", False), ("full", "float32", False),
          ("tied", "float64", False), ("diag", "float64", False),
          ("spherical", "float64", False), ("tied", "float32", False),
          ("diag", "float32", False), ("spherical", "float32", False)],
}


def compile_part(part: str) -> None:
    os.environ["GAUSSMIX_KERNEL"] = "fused"  # the compiled loops from the first chunk
    warnings.simplefilter("ignore")
    import gaussmix

    rng = np.random.default_rng(0)
    for covariance_type, dtype, missing in PARTS[part]:
        X = rng.standard_normal((2000, 5)).astype(dtype)
        settings = dict(covariance_type=covariance_type, random_state=0, max_iter=2)
        if missing:
            X[rng.random(X.shape) < 0.4] = np.nan
            X = X[~np.isnan(X).all(axis=1)]
            gm = gaussmix.GaussianMixture(3, missing="marginalize", **settings).fit(X)
            gm.impute(X)
        else:
            gm = gaussmix.GaussianMixture(3, **settings)
            gm.fit(X, sample_weight=rng.random(len(X)))
            gm.fit(X)
        gm.predict_proba(X)
        gm.score_samples(X)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        compile_part(sys.argv[1])
    else:
        children = [subprocess.Popen([sys.executable, __file__, part]) for part in PARTS]
        sys.exit(max(child.wait() for child in children))
