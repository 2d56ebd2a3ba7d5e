"""Model selection: choose the number of components and the covariance type.

:func:`select` fits one mixture per candidate ``(n_components, covariance_type)``
and scores each by BIC, AIC and ICL, as R's ``mclust`` does with ``Mclust()``.

Sign convention
---------------
All three criteria are *penalised deviances*: **lower is better**, exactly as
scikit-learn's :meth:`~sklearn.mixture.GaussianMixture.bic` and ``aic``::

    BIC = -2 log L + p log n
    AIC = -2 log L + 2 p
    ICL = BIC + 2 EN,   EN = -sum_i sum_k r_ik log r_ik

where ``log L`` is the total log-likelihood of the data at the fitted
parameters, ``p`` the number of free parameters, ``n`` the number of samples
and ``r_ik`` the responsibilities (posterior probabilities) of the fitted
model. ICL (Biernacki, Celeux and Govaert, 2000) adds the entropy of the soft
classification, so it prefers well-separated clusters; ``ICL >= BIC``.

``mclust`` reports ``BIC = 2 log L - p log n``, that is ``-BIC`` here (higher
is better there): a table from ``mclustBIC`` equals ``-result.to_pandas()['bic']``.
mclust's ``icl`` uses the MAP classification instead of the entropy
(``BIC + 2 sum_i log max_k r_ik`` in its sign), so it can differ slightly.

With ``sample_weight``, ``log L`` and the entropy are weighted sums over rows
and ``n`` is the sum of the weights, so integer weights give the same criteria
as repeating rows.

Shared work
-----------
The initial responsibilities (k-means by default, as scikit-learn) depend only
on ``n_components`` and the random state, not on the covariance type, so they
are computed once per ``n_components`` and turned into each covariance type's
initial parameters with one M-step. With an integer ``random_state`` every
candidate starts exactly where ``GaussianMixture(n_components=K,
covariance_type=t, random_state=random_state, n_init=n_init)`` would, so
refitting the winner reproduces it. Candidates run in parallel with joblib
(``n_jobs``, threads by default); each candidate then uses one thread and
BLAS/OpenMP one thread each, so that the levels of parallelism do not
oversubscribe the cores.

Rows not in memory (a data source such as :class:`~gaussmix.NpySource`, or a
Dask array or DataFrame) are selected the same way: the shared seeding runs
on the bounded sample that a single fit initialises from (all rows up to
50,000, so such data starts exactly where it starts in memory), and the
candidates are fitted in lockstep (:mod:`.lockstep`): each EM pass over the
source (a tree reduction on the Dask workers, a read of a file) computes the
statistics of every candidate and start still running, and one more pass
gives every candidate's criteria, so the rows are read once per iteration of
the longest fit instead of once per candidate and iteration. The results are
those of fitting the candidates one by one (``shared_passes=False``).

Modules
-------
- :mod:`.result`: :class:`Candidate` (one row of the table) and
  :class:`SelectionResult` (the table and the chosen model).
- :mod:`.search`: :func:`select`, the search loop (arguments, workers, choice).
- :mod:`.candidates`: the work of one number of components (shared seeding)
  and of one candidate (fit and score).
- :mod:`.lockstep`: all candidates fitted in shared passes (the engine's
  :func:`~gaussmix.engine.loop.run_batch`).
- :mod:`.passes`: the passes over the data made with the engine's internals
  (initial parameters, log-likelihood and entropy); the only module that
  calls them.
- :mod:`.progress`: the progress bar, lines and callback.
- :mod:`.estimator`: :class:`GaussianMixtureSearch`, the scikit-learn estimator.
"""

from .estimator import GaussianMixtureSearch
from .passes import log_likelihood_and_entropy
from .result import CRITERIA, Candidate, SelectionResult
from .search import select

__all__ = [
    "CRITERIA",
    "Candidate",
    "GaussianMixtureSearch",
    "SelectionResult",
    "log_likelihood_and_entropy",
    "select",
]
