"""The exact search's bound (bound_search.py): where it is used, the pairs
are every pair within the threshold, checked against distances measured
here in float64 by scikit-learn; where it would not prune, full rows are
compared."""

import numpy as np
import pytest
from sklearn.metrics import pairwise_distances

from support import clustered_embeddings, pair_set

from image_dedup import bound_search, neighbor_search


@pytest.fixture(autouse=True)
def small_searches_use_the_bound(monkeypatch):
    monkeypatch.setattr(bound_search, "MIN_COMPARISONS", 0)


def skewed_embeddings(n, dim, seed):
    """Clusters whose spread falls off along randomly rotated axes, as model
    embeddings do (most of the length in a few directions)."""
    emb = clustered_embeddings(n=n, dim=dim, seed=seed) * np.geomspace(3.0, 0.05, dim)
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return emb @ rotation


def true_distances(x, metric, y=None):
    dists = pairwise_distances(x, x if y is None else y, metric=metric)
    if y is None:
        dists[np.tril_indices(len(x))] = np.inf
    return dists


def threshold_between(dists, quantile):
    """A threshold halfway between two measured distances near ``quantile``
    (no pair sits on it, whatever the rounding)."""
    values = np.unique(dists[np.isfinite(dists)])
    k = int(quantile * len(values))
    return float((values[k] + values[k + 1]) / 2)


def prepared(x, metric):
    rows, sq = neighbor_search._prepare(x, metric)
    return rows, sq


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("make", [clustered_embeddings, skewed_embeddings])
def test_the_bound_finds_every_pair_within_the_threshold(metric, make):
    emb = make(n=2500, dim=128, seed=21)
    dists = true_distances(emb, metric)
    threshold = threshold_between(dists, 0.0004)
    rows, sq = prepared(emb, metric)
    limit = neighbor_search._tile_limit(threshold, sq)
    assert bound_search.bound_rows(rows, None, sq, None, limit) is not None
    pairs = neighbor_search.find_pairs(emb, metric, threshold, method="exact")
    truth = set(zip(*np.nonzero(dists <= threshold)))
    assert len(truth) > 1000
    assert pair_set(pairs) == {(int(i), int(j)) for i, j in truth}
    assert np.allclose(pairs.dist, dists[pairs.i, pairs.j], atol=1e-9)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_a_cross_search_with_the_bound(metric):
    emb = skewed_embeddings(n=3000, dim=64, seed=22)
    queries, references = emb[:1000], emb[1000:]
    dists = true_distances(queries, metric, references)
    threshold = threshold_between(dists, 0.0005)
    rows, sq = prepared(queries, metric)
    ref_rows, ref_sq = prepared(references, metric)
    limit = neighbor_search._tile_limit(threshold, sq, ref_sq)
    assert bound_search.bound_rows(rows, ref_rows, sq, ref_sq, limit) is not None
    pairs = neighbor_search.find_pairs(queries, metric, threshold, references=references, method="exact")
    truth = set(zip(*np.nonzero(dists <= threshold)))
    assert len(truth) > 500
    assert pair_set(pairs) == {(int(i), int(j)) for i, j in truth}


def test_a_wide_threshold_compares_full_rows():
    emb = clustered_embeddings(n=2000, dim=64, seed=23)
    dists = true_distances(emb, "cosine")
    threshold = threshold_between(dists, 0.3)
    rows, sq = prepared(emb, "cosine")
    assert bound_search.bound_rows(rows, None, sq, None, neighbor_search._tile_limit(threshold, sq)) is None
    pairs = neighbor_search.find_pairs(emb, "cosine", threshold, method="exact")
    assert len(pairs.i) == int((dists <= threshold).sum())


def test_bound_rows_never_overstate_a_distance():
    emb = skewed_embeddings(n=1500, dim=96, seed=24)
    rows, _ = prepared(emb, "cosine")
    axes = bound_search._principal_axes(rows)
    head = bound_search._head_rows(rows, axes, 24)
    bound = 1.0 - head @ head.T
    assert np.all(bound <= pairwise_distances(emb, metric="cosine") + 1e-5)
