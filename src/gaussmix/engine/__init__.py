"""The EM engine: one fold over additive sufficient statistics.

A chunk of rows flows through it like this::

    source ──chunks──▶ estep.EStepKernel.statistics ──SuffStats──▶ reducer (sum)
                                                                        │
    loop.run_em ◀── MixtureParams ◀── mstep.m_step ◀──── merged SuffStats ┘

- :mod:`.sources`: where chunks of rows come from (arrays, memory maps, iterables).
- :mod:`.estep`: the chunk kernel: log-densities, responsibilities, statistics.
- :mod:`.stats`: the statistics value (``+``, zero, re-centring, plain form).
- :mod:`.mstep`: statistics to parameters, reseeding of empty components.
- :mod:`.loop`: the one EM loop (restarts, convergence, progress).
- :mod:`.init`: starting parameters (k-means and the other scikit-learn inits).
- :mod:`.covariance`: one class per covariance type, behind a registry.
"""
