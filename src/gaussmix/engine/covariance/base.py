"""The interface every covariance type implements.

A covariance type is a small stateless object: the EM loop, the estimator and
the M-step call these operations and never branch on the type's name.
Parameters follow scikit-learn's conventions: ``precisions_cholesky`` holds
upper-triangular factors ``U`` with ``precision = U @ U.T``, so that the
Mahalanobis distance of ``x`` is ``|(x - mu) @ U|^2``.

The chunk operations (:meth:`CovarianceType.log_prob`,
:meth:`CovarianceType.moments`, :meth:`CovarianceType.residual_s2`) are
written against the array API standard (see :mod:`gaussmix.engine.xp`): they
take chunks of any namespace and return log-densities in that namespace and
statistics as NumPy float64. Everything else works on small NumPy float64
arrays on the host.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..xp import device, from_host, is_numpy, to_host
from .groups import CentreGroup, centre_groups

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class ComputeSpec:
    """Where and in what precision chunks live: namespace, dtype, device, and
    how many rows each pass runs in other processes (a cluster's workers),
    whose E-step work the fused kernel's ``auto`` mode counts where the
    kernels are built (see :func:`gaussmix.engine.fused.specialised`)."""

    xp: Any
    dtype: Any
    device: Any = None
    rows_elsewhere: int = 0

    def asarray(self, a: np.ndarray, dtype: Any = None) -> Any:
        """A host array moved to this namespace and device (``dtype`` default
        the compute dtype)."""
        return from_host(a, self.xp, self.dtype if dtype is None else dtype, self.device)


@dataclass(frozen=True)
class GroupArrays:
    """One centre group's members and precomputed factors, in the compute spec."""

    members: np.ndarray
    centre: Any
    index: Any
    arrays: dict[str, Any]


@dataclass(frozen=True)
class KernelState:
    """Per-iteration constants of the E-step.

    ``shift`` (host float64, (K, d)) is where the moments are taken; ``groups``
    hold each centre group's arrays; ``const`` (K,) the log normalisers;
    ``means`` and ``prec_chol`` (float64, in the compute namespace, the
    factors in the type's own shape: a (K, d, d) form of diag factors would
    take K d^2 numbers) let the E-step recompute rows whose densities
    overflow (see :meth:`CovarianceType.whiten`).
    """

    shift: np.ndarray
    const: Any
    groups: tuple[GroupArrays, ...]
    order: Any
    means: Any
    prec_chol: Any


#: Largest error, in a log-density, that a NumPy float32 E-step may spend on
#: expanding ``|x - mu|^2`` about a centre group's centre (tied, diag,
#: spherical): about ``eps * D``, D the squared Mahalanobis distance from the
#: centre to a member's mean. Past it (in float32, members more than about 90
#: standard deviations from their centre: 0, 3 and 900 sd cost 1e-2 in
#: responsibilities) the chunks are scored in float64 instead.
EXPANSION_ERROR = 1e-3


class CovarianceType(ABC):
    """Operations of one covariance type (full, tied, diag or spherical)."""

    name: str
    #: Whether :meth:`group_work` builds work arrays again (see there).
    rebuilds_group_work: bool = False
    #: Whether log-densities expand ``|x - mu|^2`` about the group centre,
    #: losing about ``eps * D`` (full whitens ``x - c`` and subtracts whitened
    #: offsets instead, which loses about ``eps * sqrt(D)``).
    expands_about_centre: bool = True
    #: Whether :meth:`scatter_s2` and :meth:`stack_s2` sum the groups' (or
    #: components') statistics (tied: one shared (d, d) sum):
    #: :meth:`moments` and :meth:`direct_moments` then add them as they
    #: come instead of keeping one each (K=500, d=300: 360 MB a chunk).
    sums_group_s2: bool = False

    # -- shapes and counting -------------------------------------------------
    @abstractmethod
    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of covariances_, precisions_, precisions_cholesky_ and of the
        second-moment statistic."""

    @abstractmethod
    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free parameters in the covariances."""

    def numbers_per_row(self, n_components: int, n_features: int) -> int:
        """Size of the E-step's largest work array per row (chunk sizing)."""
        return n_components + n_features

    # -- E-step --------------------------------------------------------------
    @abstractmethod
    def distances(self, prec_chol: np.ndarray, members: np.ndarray,
                  offsets: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis length of ``offsets[i]`` in component
        ``members[i]``'s metric (host)."""

    @abstractmethod
    def group_arrays(self, group: CentreGroup, means: np.ndarray,
                     prec_chol: np.ndarray, spec: ComputeSpec) -> dict[str, Any]:
        """The factors one centre group's E-step needs, in ``spec``."""

    @abstractmethod
    def group_log_prob(self, X: Any, group: GroupArrays, const: Any
                       ) -> tuple[Any, Any, Any]:
        """``(log N(x | k) for the group's components (K_g, n), row term or
        None, work)``. The log-density of component k is the first array's row
        plus the row term (n,), which is common to all components; keeping it
        apart keeps the responsibilities exact where it dwarfs the rest."""

    def group_work(self, X: Any, group: GroupArrays) -> Any:
        """The work array :meth:`group_log_prob` returns, built again, where
        ``rebuilds_group_work`` (else None: full covariances keep theirs, the
        whitened chunks of all groups add up to a single chunk's). With
        several centre groups, the groups' work arrays (one (n, d) or (n, 2d)
        array each, up to K of them: 750 MB for K=200, d=200 diag) are built
        again for the moments, one at a time, instead of all held at once."""
        return None

    @abstractmethod
    def group_moments(self, X: Any, resp: Any, group: GroupArrays, work: Any
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Moments (s1 (K_g, d), s2) of the group's components about its
        centre, float64 on the host; ``resp`` (K_g, n) are weighted
        responsibilities. ``s2`` is the type's per-component statistic for the
        group (tied: one (d, d) sum)."""

    @abstractmethod
    def shift_of(self, means: np.ndarray, groups: tuple[CentreGroup, ...]
                 ) -> np.ndarray:
        """Centre (K, d) about which each component's moments are taken."""

    @abstractmethod
    def residual_s2(self, residuals: Any, weights: Any) -> np.ndarray:
        """One component's second-moment statistic from residuals ``x - c``
        (m, d) and weights (m,), float64 on the host."""

    @abstractmethod
    def stack_s2(self, parts: list[np.ndarray], n_features: int) -> np.ndarray:
        """Per-component statistics of :meth:`residual_s2` in the type's shape."""

    @abstractmethod
    def scatter_s2(self, parts: list[tuple[np.ndarray, np.ndarray]],
                   n_components: int, n_features: int) -> np.ndarray:
        """Group statistics ``(members, s2)`` of :meth:`group_moments` assembled
        into the type's shape."""

    @abstractmethod
    def reduce_full_s2(self, s2: np.ndarray) -> np.ndarray:
        """Full per-component second moments (K, d, d) in the type's shape
        (used where rows with missing values give full conditional moments)."""

    @abstractmethod
    def recentre_s2(self, s2: np.ndarray, s1: np.ndarray, nk: np.ndarray,
                    delta: np.ndarray) -> np.ndarray:
        """Second moments moved from centres ``c`` to ``c + delta`` (exact)."""

    def prepare(self, means: np.ndarray, weights: np.ndarray, prec_chol: np.ndarray,
                spec: ComputeSpec) -> KernelState:
        """Precompute what the E-step of a chunk needs."""
        with np.errstate(over="ignore", invalid="ignore"):
            groups = centre_groups(
                means, weights,
                lambda members, offsets: self.distances(prec_chol, members, offsets),
            )
        spec = self._precise_enough(groups, means, prec_chol, spec)
        if spec.dtype != spec.xp.float64:  # float64 holds every centre as it is
            groups = tuple(CentreGroup(g.members, _representable(g.centre, spec))
                           for g in groups)
        K, d = means.shape
        const = np.empty(K)  # one per component (tied has one for all)
        const[...] = self.log_const(prec_chol, d)
        prepared = tuple(
            GroupArrays(
                members=g.members, centre=spec.asarray(_in_range(g.centre, spec)),
                index=spec.asarray(g.members, spec.xp.int64),
                arrays=self.group_arrays(g, means, prec_chol, spec),
            )
            for g in groups
        )
        return KernelState(
            shift=self.shift_of(means, groups),
            const=spec.asarray(const),
            groups=prepared,
            order=None if len(groups) == 1 else spec.asarray(
                np.argsort(np.concatenate([g.members for g in groups])),
                spec.xp.int64),
            means=spec.asarray(means, spec.xp.float64),
            prec_chol=spec.asarray(prec_chol, spec.xp.float64),
        )

    def _precise_enough(self, groups: tuple[CentreGroup, ...], means: np.ndarray,
                        prec_chol: np.ndarray, spec: ComputeSpec) -> ComputeSpec:
        """``spec``, or float64 for NumPy float32 chunks whose expansion about
        the groups' centres would cost more than :data:`EXPANSION_ERROR` in a
        log-density (tensors keep their dtype, as documented)."""
        if (not self.expands_about_centre or not is_numpy(spec.xp)
                or spec.dtype != np.float32):
            return spec
        with np.errstate(over="ignore", invalid="ignore"):
            spread = max(float(np.max(self.distances(prec_chol, g.members,
                                                     means[g.members] - g.centre)))
                         for g in groups)
        if spread * float(np.finfo(np.float32).eps) <= EXPANSION_ERROR:
            return spec
        return ComputeSpec(spec.xp, spec.xp.float64, spec.device)

    def log_prob(self, X: Any, state: KernelState) -> tuple[Any, Any, list[Any]]:
        """Log-densities (K, n) of a chunk (component-major, so that the
        reductions over K that follow run along contiguous rows), the row
        term (n,) or None, and work arrays that :meth:`moments` reuses."""
        if len(state.groups) == 1:
            lp, row, work = self.group_log_prob(X, state.groups[0], state.const)
            return lp, row, [work]
        parts, works = [], []
        for g in state.groups:
            lp, row, work = self.group_log_prob(X, g, _take(state.const, g.index))
            parts.append(lp if row is None else lp + row[None, :])
            works.append(None if self.rebuilds_group_work else work)
        xp = _namespace(parts[0])
        return _take(xp.concat(parts, axis=0), state.order), None, works

    def moments(self, X: Any, resp: Any, state: KernelState, work: list[Any]
                ) -> tuple[np.ndarray, np.ndarray]:
        """Shifted moments (s1, s2) of a chunk about ``state.shift``, float64
        on the host; ``resp`` (K, n) are weighted responsibilities."""
        K, d = state.shift.shape
        if len(state.groups) == 1:
            g = state.groups[0]
            s1, s2 = self._group_moments(X, resp, state, g, work[0])
            return s1, self.scatter_s2([(g.members, s2)], K, d)
        s1 = np.empty((K, d))
        parts: list[tuple[Any, np.ndarray]] = []
        for g, w in zip(state.groups, work, strict=True):
            s1[g.members], s2 = self._group_moments(X, _take(resp, g.index), state, g, w)
            if self.sums_group_s2 and parts:  # as np.sum over the stack adds them
                parts = [(None, parts[0][1] + s2)]
            else:
                parts.append((g.members, s2))
        return s1, self.scatter_s2(parts, K, d)

    def _group_moments(self, X: Any, resp: Any, state: KernelState, group: GroupArrays,
                       work: Any) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore"):
            work = self.group_work(X, group) if work is None else work
            s1, s2 = self.group_moments(X, resp, group, work)
        if np.isfinite(s1).all() and np.isfinite(s2).all():
            return s1, s2
        # A work array overflowed (rows or a centre beyond 1e154): 0 * inf made
        # NaN. Rows of zero responsibility do not count, as the residual sums
        # that skip them show; rows that count and overflow stay infinite.
        with np.errstate(over="ignore", invalid="ignore"):
            return self.direct_moments(X, resp, state.shift[group.members])

    def direct_moments(self, X: Any, resp: Any, centres: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Moments (s1, s2) of a chunk about per-component ``centres``, from
        each row's own residual ``x - c_k`` (no expansion, so exact whatever
        the spread; used where no precisions exist yet). Rows with zero
        responsibility are skipped, so hard assignments cost one pass.

        The residuals are taken in float64 whatever the rows' dtype: a float32
        subtraction would take them about ``centres`` rounded to float32 (off
        by up to 5e-4 at 1e4), not about the centres the moments are said to
        be about (and :meth:`residual_s2` takes float64 copies anyway)."""
        xp = _namespace(X)
        K, d = centres.shape
        s1 = np.zeros((K, d))
        parts: list[np.ndarray] = []
        for k in range(K):
            rows = resp[k, :] > 0
            w = xp.astype(resp[k, :][rows], xp.float64, copy=False)
            residuals = (xp.astype(X[rows, :], xp.float64, copy=False)
                         - from_host(centres[k], xp, xp.float64, device(X)))
            s1[k] = to_host(xp.sum(residuals * w[:, None], axis=0))
            s2 = self.residual_s2(residuals, w)
            parts = [parts[0] + s2] if self.sums_group_s2 and parts else [*parts, s2]
        return s1, self.stack_s2(parts, d)

    # -- M-step --------------------------------------------------------------
    @abstractmethod
    def covariances(
        self, nk: np.ndarray, delta: np.ndarray, s2: np.ndarray, reg_covar: float
    ) -> np.ndarray:
        """Covariances from statistics; ``delta = s1 / nk`` is the mean's offset."""

    def reseed(self, covariances: np.ndarray, nk: np.ndarray, empty: np.ndarray
               ) -> np.ndarray:
        """Covariances with the ``empty`` components set to the pooled
        (weight-averaged) covariance of the others."""
        out = covariances.copy()
        out[empty] = np.average(covariances[~empty], axis=0, weights=nk[~empty])
        return out

    # -- conversions ---------------------------------------------------------
    @abstractmethod
    def precisions_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        """Upper Cholesky factors of the precisions; raises ValueError with advice."""

    @abstractmethod
    def precisions_cholesky_from_precisions(self, precisions: np.ndarray) -> np.ndarray:
        """Upper factors ``U`` with ``U @ U.T == precisions``."""

    @abstractmethod
    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        """Precisions from their Cholesky factors."""

    @abstractmethod
    def covariances_from_cholesky(self, prec_chol: np.ndarray) -> np.ndarray:
        """Covariances from precision Cholesky factors (triangular solves)."""

    @abstractmethod
    def to_full(
        self, covariances: np.ndarray, n_components: int, n_features: int
    ) -> np.ndarray:
        """Covariances (or precision factors) as (K, d, d) matrices."""

    @abstractmethod
    def whiten(self, points: Any, prec_chol: Any) -> Any:
        """``points`` (K or 1, m, d) mapped by each component's precision
        factor ``U_k`` (``prec_chol``, the type's own shape), ``x -> x U_k``,
        in the points' namespace: (K, m, d), or (1, m, d) where the
        components share one factor (tied) and the points are (1, m, d)."""

    @abstractmethod
    def log_det_cholesky(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        """log det of each precision Cholesky factor, shape (K,)."""

    @abstractmethod
    def precision_traces(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        """``trace(Sigma_k^-1)``, the squared Frobenius norm of each precision
        Cholesky factor, shape (K,) (tied: (1,)), from the type's own shape."""

    def jump_losses(self, delta: np.ndarray, covariances: np.ndarray,
                    prec_chol: np.ndarray) -> np.ndarray:
        """Growth of each component's relative rounding error (K,) when its
        covariance comes from moments about a centre ``delta`` (K, d) from
        its mean (see :mod:`~gaussmix.engine.recentre`): ``|delta|^2 *
        trace(Sigma^-1)`` bounds it in the covariance's smallest direction
        (``trace(Sigma^-1) >= 1 / lambda_min``)."""
        # (from the type's own factor shape: no (K, d, d) copies at every
        # iteration and every partial_fit call)
        traces = self.precision_traces(prec_chol, delta.shape[1])
        with np.errstate(over="ignore", invalid="ignore"):
            return np.sum(delta ** 2, axis=1) * traces

    def jumps_past(self, delta: np.ndarray, covariances: np.ndarray,
                   prec_chol: np.ndarray, limit: float) -> bool:
        """Whether some component's :meth:`jump_losses` exceed ``limit``
        (asked after every M-step)."""
        # (the method, not np.any, whose dispatch costs more than the reduction)
        return bool((self.jump_losses(delta, covariances, prec_chol) > limit).any())

    @abstractmethod
    def check_precisions(self, precisions: np.ndarray) -> None:
        """Raise ValueError unless ``precisions`` are valid (positive definite)."""

    # -- sampling ------------------------------------------------------------
    @abstractmethod
    def sample(
        self, rng: np.random.RandomState, means: np.ndarray,
        covariances: np.ndarray, counts: np.ndarray,
    ) -> np.ndarray:
        """Draw ``counts[k]`` rows from component ``k``, stacked in order."""

    # -- shared helpers ------------------------------------------------------
    def log_const(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        """Per-component constant ``-d/2 log(2 pi) + log det U``."""
        return -0.5 * n_features * LOG_2PI + self.log_det_cholesky(prec_chol, n_features)


def scale_free_jump_losses(delta: np.ndarray, variances: np.ndarray,
                           precision_diagonals: np.ndarray) -> np.ndarray:
    """``sum_i delta_i^2 / Sigma_ii * trace(R^-1)`` per component, ``R`` the
    correlation matrix: a bound on the growth of the covariance's relative
    rounding error in every direction that, unlike ``|delta|^2 *
    trace(Sigma^-1)``, does not change with the features' units.

    The rounding of moments about a centre ``delta`` away errs by about
    ``eps |delta_i| |delta_j|`` in entry (i, j); in direction v that is
    ``eps (sum_i |v_i delta_i|)^2 <= eps |D v|^2 sum_i delta_i^2 / Sigma_ii``
    (Cauchy-Schwarz, ``D = diag(Sigma)^1/2``) against ``v' Sigma v >=
    lambda_min(R) |D v|^2``, and ``1 / lambda_min(R) <= trace(R^-1) =
    sum_i Sigma_ii (Sigma^-1)_ii``. ``variances`` and ``precision_diagonals``
    are the diagonals of Sigma and Sigma^-1, (K, d) or (d,) for all."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        trace_inverse_correlation = np.sum(variances * precision_diagonals, axis=-1)
        return np.sum(delta ** 2 / variances, axis=1) * trace_inverse_correlation


def group_centres(means: np.ndarray, groups: tuple[CentreGroup, ...]) -> np.ndarray:
    """Each component's group centre, (K, d)."""
    shift = np.empty_like(means)
    for g in groups:
        shift[g.members] = g.centre
    return shift


def log_density(maha: Any, const: Any) -> Any:
    """``const_k - maha / 2`` for squared distances (K, n), in ``maha``'s memory
    (the rounding of ``const - 0.5 * maha``, without two temporaries)."""
    maha *= -0.5
    maha += const[:, None]
    return maha


def _representable(centre: np.ndarray, spec: ComputeSpec) -> np.ndarray:
    """The centre as the compute dtype holds it, in float64: the chunks are
    centred on that value, so the offsets of the means and the moments' shift
    must be taken from it too (a float32 centre at 1e6 is off by up to 0.03,
    which otherwise moved every mean by as much). Coordinates beyond the
    dtype's range stay as they are (see :func:`_in_range`)."""
    if spec.dtype == spec.xp.float64:
        return centre  # holds every float64 value (a quick exit: once per pass)
    inside = np.abs(centre) <= _largest(spec.xp, spec.dtype)
    rounded = to_host(spec.asarray(np.where(inside, centre, 0.0)))
    return np.where(inside, rounded, centre)


def _in_range(centre: np.ndarray, spec: ComputeSpec) -> np.ndarray:
    """The centre clipped to the compute dtype's range: a centre beyond it (a
    mean at 1e200 with float32 data) is farther from every row than any value
    the dtype holds, and its components' densities underflow to -inf either way
    (rows where that leaves nothing finite are recomputed in float64)."""
    largest = _largest(spec.xp, spec.dtype)
    # np.clip's result (NaN stays NaN) at a third of its cost: once per pass
    return np.minimum(np.maximum(centre, -largest), largest)


@functools.cache
def _largest(xp: Any, dtype: Any) -> float:
    return float(xp.finfo(dtype).max)


def _namespace(a: Any) -> Any:
    from ..xp import array_namespace

    return array_namespace(a)


def _take(a: Any, index: Any) -> Any:
    """Rows ``index`` of ``a`` (axis 0)."""
    return _namespace(a).take(a, index, axis=0)
