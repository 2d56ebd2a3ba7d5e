"""Centres for the E-step: components grouped so that each group's centre is
near every member's mean.

Diag, tied and spherical expand ``|x - mu_k|^2`` about a centre ``c`` to turn
the E-step into matrix products, and full covariances whiten ``x - c`` for all
components at once. Both lose about ``log10(D)`` digits, where ``D`` is the
squared Mahalanobis distance from ``c`` to the component's mean. One centre
(the mixture's mean) serves all components in the usual case; when components
lie more than ``sqrt(MAX_SPREAD)`` standard deviations from it (an outlier
mean, clusters 1e6 sigma apart), components are grouped around several centres
so that no more than ``log10(MAX_SPREAD)`` = 6 digits are ever at stake, and
each group costs one more product of the same total size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Largest squared Mahalanobis distance from a component's mean to its centre.
MAX_SPREAD = 1e6

Distances = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CentreGroup:
    """Components ``members`` (indices) whose E-step is taken about ``centre``."""

    members: np.ndarray
    centre: np.ndarray


def centre_groups(
    means: np.ndarray, weights: np.ndarray, distances: Distances
) -> tuple[CentreGroup, ...]:
    """Groups of components with a common centre each.

    ``distances(members, offsets)`` gives the squared Mahalanobis length of
    ``offsets[i]`` in component ``members[i]``'s metric. With one group the
    centre is the mixture's weighted mean, as it always was.
    """
    everyone = np.arange(len(means))
    centre = _weighted_mean(means, weights)
    if (distances(everyone, means - centre) <= MAX_SPREAD).all():
        return (CentreGroup(everyone, centre),)
    groups = []
    remaining = everyone[np.argsort(-weights, kind="stable")]
    while remaining.size:
        seed = remaining[0]
        near = distances(remaining, means[remaining] - means[seed]) <= MAX_SPREAD / 4
        near[0] = True
        members = np.sort(remaining[near])
        centre = _weighted_mean(means[members], weights[members])
        if not np.all(distances(members, means[members] - centre) <= MAX_SPREAD):
            centre = means[seed].copy()
        groups.append(CentreGroup(members, centre))
        remaining = remaining[~near]
    return tuple(groups)


def _weighted_mean(means: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = weights.sum()
    if total > 0:  # np.average's checks cost more than the product here
        return (weights @ means) / total
    return means.mean(axis=0)
