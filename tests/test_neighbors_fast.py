"""The faiss candidate search (recall, exactly re-measured distances, when it
is chosen) and the binary embedding cache of sklearn indexes."""

import os

import numpy as np
import pytest
from sklearn.metrics import pairwise_distances

import fiftyone as fo
import fiftyone.brain as fob
from support import clustered_embeddings, pair_set
from test_approx_search import TOLERANCE

from image_dedup import approx_dups, embedding_cache, neighbor_search, neighbors


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
    assert neighbor_search.choose_method("auto", 1000, num_references=10**6) == "faiss"
    assert neighbor_search.choose_method("exact", 10**7) == "exact"
    with pytest.raises(ValueError):
        neighbor_search.choose_method("hnsw", 10)
    monkeypatch.setattr(neighbor_search, "faiss", None)
    assert neighbor_search.choose_method("auto", 10**7) == "exact"
    with pytest.raises(ImportError):
        neighbor_search.choose_method("faiss", 10)


# the embedding cache -----------------------------------------------------------

DIM = 512  # 2000 x 512 values: above MIN_CACHED_VALUES


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(embedding_cache.CACHE_DIR_ENV, str(tmp_path))
    return tmp_path


def indexed(dataset, n=2000, seed=0, brain_key="sim"):
    emb = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    if not len(dataset):
        dataset.add_samples([fo.Sample(filepath=f"/img/{k:05d}.jpg") for k in range(n)])
    if brain_key in dataset.list_brain_runs():
        dataset.delete_brain_run(brain_key)
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key=brain_key)
    return emb


def entries(cache_dir):
    return sorted(os.listdir(cache_dir))


def fresh_embeddings(dataset, brain_key="sim"):
    """As a new process sees them: nothing loaded in memory."""
    dataset.clear_cache()
    return embedding_cache.index_embeddings(dataset, brain_key)


def test_cache_is_written_then_read(dataset, cache_dir):
    emb = indexed(dataset)
    loaded, ids = fresh_embeddings(dataset)
    assert np.array_equal(loaded, emb) and list(ids) == dataset.values("id")
    [entry] = entries(cache_dir)
    # the entry, not the index, is what a fresh load returns: change it
    with np.load(cache_dir / entry) as f:
        stored = dict(f)
    np.savez(cache_dir / entry, embeddings=stored["embeddings"] + 1, sample_ids=stored["sample_ids"])
    assert np.array_equal(fresh_embeddings(dataset)[0], stored["embeddings"] + 1)


def test_recompute_invalidates_the_cache(dataset, cache_dir):
    indexed(dataset, seed=0)
    fresh_embeddings(dataset)
    [old] = entries(cache_dir)
    new = indexed(dataset, seed=1)
    assert np.array_equal(fresh_embeddings(dataset)[0], new)
    [entry] = entries(cache_dir)
    assert entry != old


def test_removing_from_the_index_invalidates_the_cache(dataset, cache_dir):
    emb = indexed(dataset)
    fresh_embeddings(dataset)
    removed = dataset.values("id")[:10]
    index = dataset.load_brain_results("sim")
    index.remove_from_index(sample_ids=removed)
    index.save()
    loaded, ids = fresh_embeddings(dataset)
    assert list(ids) == dataset.values("id")[10:]
    assert np.array_equal(loaded, emb[10:])
    assert len(entries(cache_dir)) == 1


def test_an_index_loaded_in_memory_is_used_as_is(dataset, cache_dir):
    emb = indexed(dataset)
    fresh_embeddings(dataset)
    index = dataset.load_brain_results("sim")
    index.remove_from_index(sample_ids=dataset.values("id")[:5])  # not saved
    loaded, _ = embedding_cache.index_embeddings(dataset, "sim")
    assert np.array_equal(loaded, emb[5:])
    # ...and its unsaved state never reaches the cache
    assert np.array_equal(fresh_embeddings(dataset)[0], emb)


def test_small_and_field_backed_indexes_are_not_cached(dataset, cache_dir):
    emb = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    dataset.add_samples([fo.Sample(filepath=f"/img/{k:05d}.jpg") for k in range(2000)])
    small = dataset.limit(300)
    fob.compute_similarity(small, embeddings=emb, backend="sklearn", brain_key="small")
    dataset.set_values("vec", list(np.random.default_rng(1).normal(size=(2000, DIM))))
    fob.compute_similarity(dataset, embeddings="vec", backend="sklearn", brain_key="field")
    assert np.array_equal(fresh_embeddings(dataset, "small")[0], emb)
    assert fresh_embeddings(dataset, "field")[0].shape == (2000, DIM)
    assert entries(cache_dir) == []


def test_find_uses_the_cache_and_gives_the_same_groups(dataset, cache_dir):
    emb = clustered_embeddings(n=2000, dim=DIM, seed=15)
    dataset.add_samples([fo.Sample(filepath=f"/img/{k:05d}.jpg") for k in range(len(emb))])
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    dataset.clear_cache()
    first = approx_dups.find_approximate_duplicates(dataset, "sim", threshold=0.05)
    groups = dataset.values(approx_dups.GROUP_FIELD)
    [entry] = entries(cache_dir)
    written = os.stat(cache_dir / entry).st_mtime_ns
    dataset.clear_cache()
    again = approx_dups.find_approximate_duplicates(dataset, "sim", threshold=0.05)
    assert first.num_dups > 100 and again == first
    assert dataset.values(approx_dups.GROUP_FIELD) == groups
    assert entries(cache_dir) == [entry] and os.stat(cache_dir / entry).st_mtime_ns == written
