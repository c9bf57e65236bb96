"""The faiss candidate search (recall, exactly re-measured distances, when it
is chosen) and the binary embedding cache of sklearn indexes."""


import numpy as np
import pytest
from sklearn.metrics import pairwise_distances

from support import clustered_embeddings, pair_set
from test_approx_search import TOLERANCE

from image_dedup import faiss_search, neighbor_search, neighbors


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_faiss_pairs_are_exact_pairs_with_high_recall(metric):
    emb = clustered_embeddings(n=4000, dim=32, seed=11)
    dists = pairwise_distances(emb.astype(np.float64), metric=metric)
    np.fill_diagonal(dists, np.inf)
    max_dist = float(np.quantile(dists[np.isfinite(dists)], 0.0005))
    exact = neighbor_search.find_pairs(emb, metric, max_dist, method="exact")
    fast = neighbor_search.find_pairs(emb, metric, max_dist, method="faiss")
    assert len(exact.i) > 1000
    assert np.all(fast.i < fast.j)
    assert np.allclose(fast.dist, dists[fast.i, fast.j], atol=1e-9)
    assert pair_set(fast) <= pair_set(exact)
    assert len(pair_set(fast)) >= 0.99 * len(pair_set(exact))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_faiss_cross_search_and_nearest(metric):
    emb = clustered_embeddings(n=3000, dim=16, seed=12)
    queries, references = emb[:1000], emb[1000:]
    dists = pairwise_distances(queries.astype(np.float64), references.astype(np.float64), metric=metric)
    max_dist = float(np.quantile(dists, 0.0005))
    exact = neighbor_search.find_pairs(queries, metric, max_dist, references=references, method="exact")
    fast = neighbor_search.find_pairs(queries, metric, max_dist, references=references, method="faiss")
    assert len(exact.i) > 500
    assert np.allclose(fast.dist, dists[fast.i, fast.j], atol=1e-9)
    assert pair_set(fast) <= pair_set(exact)
    assert len(pair_set(fast)) >= 0.99 * len(pair_set(exact))
    nearest = neighbor_search.nearest_neighbor_distances(queries, metric, references=references, method="faiss")
    truth = dists.min(axis=1)
    assert np.all(nearest >= truth - TOLERANCE)
    assert np.mean(np.isclose(nearest, truth, atol=TOLERANCE)) >= 0.95


def test_faiss_fraction_mode_matches_exact_path():
    emb = clustered_embeddings(n=3000, dim=32, seed=13)
    exact = neighbors.search_duplicates(emb, "cosine", fraction=0.2, method="exact")
    fast = neighbors.search_duplicates(emb, "cosine", fraction=0.2, method="faiss")
    assert (exact.rep >= 0).sum() > 500
    assert fast.threshold == exact.threshold
    assert np.array_equal(fast.rep, exact.rep)


def test_faiss_groups_carry_exact_distances():
    emb = clustered_embeddings(n=3000, dim=32, seed=14)
    groups = neighbors.search_duplicates(emb, "euclidean", threshold=2.0, method="faiss")
    members = np.nonzero((groups.rep >= 0) & (groups.rep != np.arange(len(emb))))[0]
    expected = np.linalg.norm(emb[members] - emb[groups.rep[members]], axis=1)
    assert len(members) > 300
    assert np.allclose(groups.dist[members], expected, atol=1e-5)
    assert expected.max() <= 2.0


def test_auto_takes_faiss_only_for_large_searches(monkeypatch):
    large = int(np.sqrt(2 * neighbor_search.EXACT_MAX_COMPARISONS)) + 2
    assert neighbor_search.choose_method("auto", 1000) == "exact"
    assert neighbor_search.choose_method("auto", large) == "faiss"
    assert neighbor_search.choose_method("auto", 1000, num_references=2 * 10**6) == "faiss"
    assert neighbor_search.choose_method("exact", 10**7) == "exact"
    with pytest.raises(ValueError):
        neighbor_search.choose_method("hnsw", 10)
    monkeypatch.setattr(faiss_search, "faiss", None)
    assert neighbor_search.choose_method("auto", 10**7) == "exact"
    with pytest.raises(ImportError):
        neighbor_search.choose_method("faiss", 10)
