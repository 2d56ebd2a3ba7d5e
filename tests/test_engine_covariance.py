"""Covariance types: conversions are inverse to each other, statistics of
residuals follow their definitions, and re-centring second moments is exact."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES

from gaussmix.engine.covariance import COVARIANCE_TYPES as REGISTRY
from gaussmix.engine.covariance import get_covariance_type
from gaussmix.engine.covariance.groups import MAX_SPREAD, centre_groups

K, D = 3, 4


def _covariances(ct, seed=0):
    rng = np.random.default_rng(seed)
    full = np.stack([a @ a.T + D * np.eye(D) for a in rng.normal(size=(K, D, D))])
    return {"full": full, "tied": full[0], "diag": np.diagonal(full, axis1=1, axis2=2),
            "spherical": np.trace(full, axis1=1, axis2=2) / D}[ct]


def test_the_registry_holds_the_four_types_with_their_parameter_counts():
    assert list(REGISTRY) == ["full", "tied", "diag", "spherical"]
    counts = [p.n_covariance_parameters(K, D) for p in REGISTRY.values()]
    assert counts == [K * D * (D + 1) // 2, D * (D + 1) // 2, K * D, K]
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        get_covariance_type("banded")


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_conversions_are_inverse(ct):
    piece = get_covariance_type(ct)
    cov = _covariances(ct)
    chol = piece.precisions_cholesky(cov)
    np.testing.assert_allclose(piece.covariances_from_cholesky(chol), cov, rtol=1e-12)
    precisions = piece.precisions(chol)
    np.testing.assert_allclose(piece.precisions_cholesky_from_precisions(precisions),
                               chol, rtol=1e-12)
    full_cov = piece.to_full(cov, K, D)
    full_prec = np.linalg.inv(full_cov)
    np.testing.assert_allclose(piece.to_full(precisions, K, D), full_prec, rtol=1e-10)
    log_det = np.linalg.slogdet(full_prec)[1] / 2
    np.testing.assert_allclose(np.broadcast_to(piece.log_det_cholesky(chol, D), (K,)),
                               log_det, rtol=1e-12)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_residual_statistics_follow_the_definition(ct):
    piece = get_covariance_type(ct)
    rng = np.random.default_rng(1)
    X, resp = rng.normal(size=(50, D)), rng.dirichlet(np.ones(K), size=50).T
    centres = rng.normal(size=(K, D))
    s1, s2 = piece.direct_moments(X, resp, centres)
    r = X[None, :, :] - centres[:, None, :]
    outer = np.einsum("kn,kni,knj->kij", resp, r, r)
    expected = {"full": outer, "tied": outer.sum(0),
                "diag": np.diagonal(outer, axis1=1, axis2=2),
                "spherical": np.trace(outer, axis1=1, axis2=2)}[ct]
    np.testing.assert_allclose(s1, np.einsum("kn,kni->ki", resp, r), rtol=1e-12)
    np.testing.assert_allclose(s2, expected, rtol=1e-12)
    delta = rng.normal(size=(K, D))
    moved = piece.recentre_s2(s2, s1, resp.sum(axis=1), delta)
    np.testing.assert_allclose(moved, piece.direct_moments(X, resp, centres + delta)[1],
                               rtol=1e-10)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_precisions_that_are_not_positive_are_refused(ct):
    piece = get_covariance_type(ct)
    bad = -piece.precisions(piece.precisions_cholesky(_covariances(ct)))
    with pytest.raises(ValueError, match=rf"^'{ct} precision' should be"):
        piece.check_precisions(bad)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        piece.precisions_cholesky(-_covariances(ct))


def test_centre_groups_keep_every_member_near_its_centre():
    means = np.array([[0.0, 0.0], [3.0, 1.0], [1e6, 0.0], [1e6 + 2, 1.0], [-5e5, 4e5]])
    weights = np.full(5, 0.2)

    def distances(members, offsets):
        return np.sum(offsets**2, axis=1)  # unit variances

    groups = centre_groups(means, weights, distances)
    members = np.sort(np.concatenate([g.members for g in groups]))
    np.testing.assert_array_equal(members, np.arange(5))  # a partition
    assert len(groups) == 3
    for g in groups:
        assert np.all(distances(g.members, means[g.members] - g.centre) <= MAX_SPREAD)
    near = centre_groups(means[:2], weights[:2], distances)
    assert len(near) == 1
    np.testing.assert_allclose(near[0].centre, means[:2].mean(axis=0))


def test_batched_precision_factors_match_one_by_one_and_name_the_bad_component():
    from scipy.linalg import solve_triangular

    from gaussmix.engine.covariance.linalg import (
        inverse_from_upper,
        triangular_inverses,
        upper_cholesky_of_inverses,
    )

    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 4, 4))
    cov = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(4)
    U = upper_cholesky_of_inverses(cov, [f"c{k}" for k in range(5)])
    for k in range(5):  # U U^T = inv(cov): U^T cov U = I, U upper
        np.testing.assert_allclose(U[k].T @ cov[k] @ U[k], np.eye(4), atol=1e-10)
        assert np.all(np.tril(U[k], -1) == 0.0)
    expected = np.stack([solve_triangular(u, np.eye(4)) for u in U])
    np.testing.assert_allclose(triangular_inverses(U, lower=False), expected, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(inverse_from_upper(U), cov, rtol=1e-10)
    bad = cov.copy()
    bad[3] = -np.eye(4)
    with pytest.raises(ValueError, match="ill-defined empirical .*Not positive definite: c3\\."):
        upper_cholesky_of_inverses(bad, [f"c{k}" for k in range(5)])
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="Not positive definite: c1\\."):
        upper_cholesky_of_inverses(bad, [f"c{k}" for k in range(5)])
