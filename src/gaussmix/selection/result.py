"""The selection table: one :class:`Candidate` per model tried, and the
:class:`SelectionResult` that holds them with the chosen model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ..mixture import GaussianMixture

CRITERIA = ("bic", "aic", "icl")


def check_criterion(name: Any) -> str:
    """``name`` in lower case if it is one of :data:`CRITERIA`, else ValueError."""
    if not isinstance(name, str) or name.lower() not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {name!r}.")
    return name.lower()


@dataclass(frozen=True)
class Candidate:
    """One row of the selection table: a fitted ``(n_components, covariance_type)``.

    Attributes
    ----------
    n_components, covariance_type
        The candidate model.
    log_likelihood : float
        Total (weighted) log-likelihood of the data at the fitted parameters.
    n_parameters : int
        Number of free parameters ``p``.
    bic, aic, icl : float
        The criteria (lower is better); NaN when the fit failed.
    converged : bool
        Whether EM converged (for the best of the ``n_init`` starts).
    n_iter : int
        EM iterations of the best start.
    time : float
        Seconds spent fitting and scoring this candidate (all its starts),
        excluding the initial seeding shared by all covariance types. With
        shared passes (candidates in lockstep) the wall time from the start
        of the shared fit until this candidate stopped, plus the shared
        criteria pass.
    error : str or None
        Why the fit failed, or None.
    """

    n_components: int
    covariance_type: str
    log_likelihood: float
    n_parameters: int
    bic: float
    aic: float
    icl: float
    converged: bool
    n_iter: int
    time: float
    error: str | None = None

    def criterion(self, name: str) -> float:
        """The value of criterion ``name`` ('bic', 'aic' or 'icl')."""
        return float(getattr(self, check_criterion(name)))


@dataclass
class SelectionResult:
    """What :func:`~gaussmix.select` returns: every candidate's scores and the winner.

    Attributes
    ----------
    table : list of Candidate
        One record per ``(n_components, covariance_type)`` tried, ordered by
        covariance type (as requested) then ``n_components``.
    criterion : str
        The criterion used to choose ('bic', 'aic' or 'icl'; lower is better).
    best_ : Candidate
        The row of the chosen model.
    best_estimator_ : GaussianMixture
        The chosen model, fitted on the data.
    best_n_components_ : int
    best_covariance_type_ : str
    estimators_ : dict
        ``{(n_components, covariance_type): GaussianMixture}`` for every
        candidate that fitted.
    n_samples : float
        ``n`` in the BIC penalty (the sum of the weights, if any).
    seeding_time : dict
        ``{n_components: seconds}`` spent on the shared initialisation.
    total_time : float
        Wall-clock seconds of the whole selection.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import select
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(8, 1, (150, 2))])
    >>> result = select(X, n_components=[1, 2, 3], covariance_types=["full", "diag"],
    ...                 random_state=0)
    >>> result.best_n_components_, result.n_components, result.covariance_types
    (2, [1, 2, 3], ['full', 'diag'])
    >>> bic = result.values()             # {covariance_type: BIC over n_components}
    >>> int(np.argmin(bic["diag"])) + 1
    2
    >>> len(result.records()), sorted(result.records()[0])[:3]
    (6, ['aic', 'bic', 'converged'])
    """

    table: list[Candidate]
    criterion: str
    best_estimator_: GaussianMixture
    estimators_: dict[tuple[int, str], GaussianMixture]
    n_samples: float
    seeding_time: dict[int, float] = field(default_factory=dict)
    total_time: float = 0.0

    @property
    def best_(self) -> Candidate:
        key = (self.best_n_components_, self.best_covariance_type_)
        return next(c for c in self.table
                    if (c.n_components, c.covariance_type) == key)

    @property
    def best_n_components_(self) -> int:
        return int(self.best_estimator_.n_components)

    @property
    def best_covariance_type_(self) -> str:
        return str(self.best_estimator_.covariance_type)

    @property
    def n_components(self) -> list[int]:
        """The distinct numbers of components tried, ascending."""
        return sorted({c.n_components for c in self.table})

    @property
    def covariance_types(self) -> list[str]:
        """The covariance types tried, in the order requested."""
        return list(dict.fromkeys(c.covariance_type for c in self.table))

    def records(self) -> list[dict[str, Any]]:
        """The table as a list of plain dicts (one per candidate)."""
        return [asdict(c) for c in self.table]

    def values(self, criterion: str | None = None) -> dict[str, np.ndarray]:
        """``{covariance_type: criterion values}`` over :attr:`n_components`.

        NaN where a candidate failed or was not tried.
        """
        name = check_criterion(criterion or self.criterion)
        ks = self.n_components
        out = {t: np.full(len(ks), np.nan) for t in self.covariance_types}
        for c in self.table:
            out[c.covariance_type][ks.index(c.n_components)] = c.criterion(name)
        return out

    def to_pandas(self) -> Any:
        """The table as a :class:`pandas.DataFrame`, one row per candidate.

        Raises
        ------
        ImportError
            If pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError(
                "SelectionResult.to_pandas() needs pandas: pip install pandas"
            ) from err
        columns = [f.name for f in fields(Candidate)]
        return pd.DataFrame(self.records(), columns=columns)

    def plot(self, ax: Any = None, *, criterion: str | None = None) -> Any:
        """Criterion against the number of components, one line per covariance type.

        Like mclust's BIC plot, but in this package's sign (lower is better);
        the chosen model is circled. The same as
        :func:`gaussmix.plotting.plot_selection` (needs
        ``pip install 'gaussmix[plot]'``).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure is made when None.
        criterion : {'bic', 'aic', 'icl'}, default=None
            Which criterion to draw; the one used for the selection if None.

        Returns
        -------
        ax : matplotlib Axes
        """
        from ..plotting import plot_selection

        return plot_selection(self, ax, criterion=criterion)

    def __repr__(self) -> str:
        best = self.best_
        return (
            f"SelectionResult({len(self.table)} candidates, criterion="
            f"{self.criterion!r}, best: n_components={best.n_components}, "
            f"covariance_type={best.covariance_type!r}, "
            f"{self.criterion}={best.criterion(self.criterion):.6g})"
        )
