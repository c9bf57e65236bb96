"""The neighbour search run by the similarity backend (backend_search.py),
against real engines started here with no network: Milvus Lite (a local
file), PostgreSQL + pgvector (pgserver, a private server in a temp dir),
sklearn and LanceDB. Each backend's reported similarity or distance must come
back as the index's distance; exact backends must give the in-memory path's
groups, approximate ones a high pair recall."""

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob

from support import run

from image_dedup import backend_distances, backend_search, backend_searchers, neighbors, results

N, DIM = 1200, 32
# a threshold is only compared where no pair distance is this close to it:
# backends measure in float32, the in-memory path in float64
MARGIN = 1e-4


def clustered(n=N, dim=DIM, seed=0):
    """Clusters of 1-6 points around random centers, with varied spread."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n), rng.integers(1, 7, size=n))[:n]
    centers = rng.normal(size=(n, dim))
    spread = rng.uniform(0.02, 0.4, size=n)[labels, None]
    emb = centers[labels] + spread * rng.normal(size=(n, dim))
    return emb[rng.permutation(n)].astype(np.float32)


def safe_threshold(emb, metric, wanted):
    """A threshold near ``wanted`` with no exact pair distance within MARGIN."""
    every = neighbors.find_pairs(emb, metric, 2 * wanted, method="exact").dist
    for t in np.linspace(wanted, 1.5 * wanted, 50):
        if not np.any(np.abs(every - t) <= MARGIN):
            return float(t)
    raise AssertionError("no safe threshold")


def pair_set(pairs):
    return set(zip(pairs.i.tolist(), pairs.j.tolist()))


def truth(emb, metric, threshold, center):
    x = emb.astype(np.float64)
    if center:
        x = x - x.mean(axis=0)
    return x.astype(np.float32), neighbors.find_pairs(x, metric, threshold, method="exact")


def assert_exact(emb, metric, pairs, threshold, center):
    """Same pairs, same distances, same groups as the in-memory path."""
    x, exact = truth(emb, metric, threshold, center)
    assert len(exact.i) > 100
    assert pair_set(pairs) == pair_set(exact)
    assert np.allclose(pairs.dist, exact.dist, atol=1e-5)
    ours = neighbors.assign_groups(len(emb), pairs, threshold)
    memory = neighbors.search_duplicates(x, metric, threshold=threshold, method="exact")
    assert np.array_equal(ours.rep, memory.rep)
    assert np.allclose(ours.dist, memory.dist, atol=1e-5)


def assert_sorted_unique(pairs):
    assert np.all(pairs.i < pairs.j)
    keys = pairs.i.astype(np.int64) * (1 << 32) + pairs.j
    assert np.all(np.diff(keys) > 0)


@pytest.fixture
def samples(dataset):
    dataset.add_samples([fo.Sample(filepath=f"/img/{k:05d}.jpg") for k in range(N)])
    return dataset


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A private PostgreSQL with pgvector (pgserver); works as root too."""
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


def milvus_index(samples, tmp_path, emb, metric, key="mil"):
    return fob.compute_similarity(
        samples, embeddings=emb, backend="milvus", uri=str(tmp_path / f"{key}.db"),
        brain_key=key, metric=metric,
    )


def pgvector_index(samples, uri, emb, metric, key):
    return fob.compute_similarity(
        samples, embeddings=emb, backend="pgvector", connection_string=uri,
        brain_key=key, metric=metric, table_name=f"{key}_{samples._doc.id}",
        index_name=f"{key}_{samples._doc.id}_idx",
    )


# exact backends: the in-memory path's groups ---------------------------------


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_sklearn_backend_gives_the_in_memory_groups(samples, metric):
    emb = clustered(seed=1)
    index = fob.compute_similarity(samples, embeddings=emb, backend="sklearn", brain_key="sim", metric=metric)
    x = emb.astype(np.float64) - emb.astype(np.float64).mean(axis=0)
    threshold = safe_threshold(x, metric, 0.05 if metric == "cosine" else 1.0)
    pairs = backend_search.backend_pairs(index, samples.values("id"), threshold, k=4)
    assert_sorted_unique(pairs)
    assert_exact(emb, metric, pairs, threshold, center=True)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_pgvector_exact_scan_gives_the_in_memory_groups(samples, postgres, metric):
    emb = clustered(seed=2)
    index = pgvector_index(samples, postgres, emb, metric, f"ex{metric[:3]}")
    index.cleanup()  # drops the HNSW index, keeps the table: every query scans (exact)
    threshold = safe_threshold(emb, metric, 0.05 if metric == "cosine" else 1.0)
    # embeddings as the in-memory path gets them: from the index, not centered
    stored, ids, _ = index.get_embeddings()
    assert list(ids) == samples.values("id")
    pairs = backend_search.backend_pairs(index, samples.values("id"), threshold, batch_size=100, k=4)
    assert_sorted_unique(pairs)
    assert_exact(stored, metric, pairs, threshold, center=False)


def test_pgvector_hnsw_recall(samples, postgres):
    emb = clustered(seed=3)
    index = pgvector_index(samples, postgres, emb, "cosine", "hnsw")
    threshold = safe_threshold(emb, "cosine", 0.05)
    pairs = backend_search.backend_pairs(index, samples.values("id"), threshold)
    _, exact = truth(emb, "cosine", threshold, center=False)
    assert pair_set(pairs) <= pair_set(exact)
    assert len(pair_set(pairs)) >= 0.98 * len(pair_set(exact))


# Milvus Lite: approximate (HNSW), cosine similarity and squared L2 converted --


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_milvus_pairs_have_index_distances_and_high_recall(samples, tmp_path, metric):
    emb = clustered(seed=4)
    index = milvus_index(samples, tmp_path, emb, metric)
    threshold = safe_threshold(emb, metric, 0.05 if metric == "cosine" else 1.0)
    pairs = backend_search.backend_pairs(index, samples.values("id"), threshold, batch_size=200)
    assert_sorted_unique(pairs)
    _, exact = truth(emb, metric, threshold, center=False)
    true_dist = dict(zip(zip(exact.i.tolist(), exact.j.tolist()), exact.dist.tolist()))
    assert pair_set(pairs) <= set(true_dist)
    assert np.allclose(pairs.dist, [true_dist[p] for p in zip(pairs.i.tolist(), pairs.j.tolist())], atol=1e-5)
    assert len(pairs.i) >= 0.99 * len(exact.i)
    # groups: what recall misses may regroup a few samples, no more
    ours = neighbors.assign_groups(N, pairs, threshold).rep
    memory = neighbors.search_duplicates(emb, metric, threshold=threshold, method="exact").rep
    assert np.mean(ours == memory) >= 0.97


def test_milvus_searches_at_least_the_measured_ef(samples, tmp_path):
    """The brain's default ef (10) missed 10% of the pairs at 100,000 samples."""
    index = milvus_index(samples, tmp_path, clustered(seed=5), "cosine")
    assert index.config.search_params["HNSW"]["params"]["ef"] < backend_searchers.MILVUS_MIN_EF
    ids = np.asarray(samples.values("id"), dtype="S24")
    searcher = backend_searchers.searcher(index, ids, backend_distances.CONVERSIONS[("milvus", "cosine")])
    assert searcher.ef == backend_searchers.MILVUS_MIN_EF


def test_milvus_can_not_return_embeddings_so_auto_searches_the_backend(samples, tmp_path):
    index = milvus_index(samples, tmp_path, clustered(seed=5), "cosine")
    assert not backend_search.can_return_embeddings(index)
    assert backend_search.choose_search("auto", index, N) == "backend"
    assert backend_search.choose_search("backend", index, N) == "backend"
    with pytest.raises(ValueError, match="search='backend'"):
        backend_search.choose_search("memory", index, N)


# LanceDB: local files, cosine distance and squared L2 converted --------------


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_lancedb_generic_path(samples, tmp_path, metric):
    emb = clustered(seed=6)
    index = fob.compute_similarity(
        samples, embeddings=emb, backend="lancedb", uri=str(tmp_path / "lance"),
        brain_key="lance", metric=metric,
    )
    threshold = safe_threshold(emb, metric, 0.05 if metric == "cosine" else 1.0)
    pairs = backend_search.backend_pairs(index, samples.values("id"), threshold, batch_size=300)
    _, exact = truth(emb, metric, threshold, center=False)
    assert pair_set(pairs) <= pair_set(exact)
    assert len(pairs.i) >= 0.95 * len(exact.i)
    true_dist = dict(zip(zip(exact.i.tolist(), exact.j.tolist()), exact.dist.tolist()))
    assert np.allclose(pairs.dist, [true_dist[p] for p in zip(pairs.i.tolist(), pairs.j.tolist())], atol=1e-4)


# the search itself --------------------------------------------------------------


def copies(n_groups=3, size=40, dim=DIM, seed=7):
    """Groups of identical vectors (more than k) plus scattered others."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(N, dim)).astype(np.float32)
    for g in range(n_groups):
        emb[g * size : (g + 1) * size] = emb[g * size] + 1e-4 * rng.normal(size=(size, dim))
    return emb


@pytest.mark.parametrize("backend", ["sklearn", "pgvector", "milvus"])
def test_more_neighbours_than_k_are_all_found(samples, postgres, tmp_path, backend):
    emb = copies()
    if backend == "sklearn":
        index = fob.compute_similarity(samples, embeddings=emb, backend="sklearn", brain_key="s")
    elif backend == "pgvector":
        index = pgvector_index(samples, postgres, emb, "cosine", "copies")
    else:
        index = milvus_index(samples, tmp_path, emb, "cosine")
    pairs = backend_search.backend_pairs(index, samples.values("id"), 0.01, k=4)
    assert len(pairs.i) == 3 * (40 * 39 // 2)
    assert set(pairs.i.tolist()) | set(pairs.j.tolist()) == set(range(120))


def test_positions_follow_sample_ids_and_missing_ids_have_no_pairs(samples, postgres):
    emb = copies(n_groups=1, size=10)
    index = pgvector_index(samples, postgres, emb, "cosine", "pos")
    ids = samples.values("id")
    # searched: the copies 0..9 reversed, a sample outside the index, then 20..39
    wanted = ids[9::-1] + ["000000000000000000000000"] + ids[20:40]
    pairs = backend_search.backend_pairs(index, wanted, 0.01)
    assert pair_set(pairs) == {(i, j) for i in range(10) for j in range(i + 1, 10)}
    # neighbours outside the searched samples are left out
    pairs = backend_search.backend_pairs(index, ids[:5] + ids[20:40], 0.01)
    assert pair_set(pairs) == {(i, j) for i in range(5) for j in range(i + 1, 5)}


def test_progress_per_batch_and_the_index_is_only_read(samples, tmp_path):
    emb = clustered(seed=8)
    index = milvus_index(samples, tmp_path, emb, "cosine")
    before = (samples.get_field_schema(), samples.list_brain_runs(), samples.list_saved_views())
    calls = []
    backend_search.backend_pairs(
        index, samples.values("id"), 0.05, progress=lambda f, label: calls.append((f, label)), batch_size=500
    )
    assert [round(f, 3) for f, _ in calls] == [round(500 / N, 3), round(1000 / N, 3), 1.0]
    assert "milvus" in calls[-1][1]
    assert (samples.get_field_schema(), samples.list_brain_runs(), samples.list_saved_views()) == before
    assert index.total_index_size == N


def test_choose_search(samples, postgres, monkeypatch):
    sk = fob.compute_similarity(samples, embeddings=clustered(seed=9), backend="sklearn", brain_key="sk")
    pg = pgvector_index(samples, postgres, clustered(seed=9), "cosine", "choose")
    assert backend_search.can_return_embeddings(sk) and backend_search.can_return_embeddings(pg)
    assert backend_search.choose_search("auto", sk, 10**8) == "memory"  # in memory anyway
    assert backend_search.choose_search("auto", pg, N) == "memory"
    assert backend_search.choose_search("auto", pg, backend_search.BACKEND_MIN_SAMPLES) == "backend"
    assert backend_search.choose_search("backend", sk, N) == "backend"
    assert backend_search.choose_search("memory", pg, 10**8) == "memory"
    with pytest.raises(ValueError, match="search must be one of"):
        backend_search.choose_search("gpu", sk, N)


def test_conversions_match_each_engine_convention():
    cos = np.array([1.0, 0.5, -0.2])
    d = np.array([0.0, 0.5, 2.0])
    c = backend_distances.CONVERSIONS
    assert np.allclose(c[("milvus", "cosine")](cos), 1 - cos)
    assert np.allclose(c[("qdrant", "cosine")](cos), 1 - cos)
    assert np.allclose(c[("elasticsearch", "cosine")]((1 + cos) / 2), 1 - cos)
    assert np.allclose(c[("mongodb", "cosine")]((1 + cos) / 2), 1 - cos)
    assert np.allclose(c[("milvus", "euclidean")](d**2), d)
    assert np.allclose(c[("elasticsearch", "euclidean")](1 / (1 + d**2)), d)
    assert np.allclose(c[("mongodb", "euclidean")](1 / (1 + d)), d)
    assert np.allclose(c[("pgvector", "euclidean")](d), d)


# the find operator ------------------------------------------------------------


def test_find_operator_on_a_milvus_index_searches_in_the_backend(samples, tmp_path):
    """Pulling all vectors fails on Milvus; the find asks Milvus instead."""
    emb = clustered(seed=7)
    milvus_index(samples, tmp_path, emb, "cosine")
    threshold = safe_threshold(emb, "cosine", 0.05)
    result = run("find_approximate_duplicate_images", samples, sim_choices="mil",
                 threshold_value=threshold).result
    exact = neighbors.search_duplicates(emb, "cosine", threshold=threshold, method="exact")
    assert result["num_dups"] >= 0.95 * (int((exact.rep >= 0).sum()) - len(set(exact.rep[exact.rep >= 0])))
    assert result["num_images_with_approx_dups"] > 0
    with pytest.raises(fo.operators.executor.ExecutionError, match="can't return all its vectors"):
        run("find_approximate_duplicate_images", samples, sim_choices="mil",
            threshold_value=threshold, search="memory")


def test_find_operator_searches_pgvector_in_the_backend_with_the_memory_groups(samples, postgres):
    emb = clustered(seed=8)
    index = pgvector_index(samples, postgres, emb, "cosine", "opex")
    index.cleanup()  # exact scans
    threshold = safe_threshold(emb, "cosine", 0.05)
    memory = run("find_approximate_duplicate_images", samples, sim_choices="opex",
                 threshold_value=threshold, search="memory").result
    groups = samples.values("approx_dup_group_id")
    backend = run("find_approximate_duplicate_images", samples, sim_choices="opex",
                  threshold_value=threshold, search="backend").result
    assert backend["num_dups"] == memory["num_dups"] > 0
    assert samples.values("approx_dup_group_id") == groups


def test_the_backend_find_reads_ids_compactly_in_the_view_order(samples):
    view = samples.match(fo.ViewField("filepath") > "/img/00100.jpg").sort_by("filepath", reverse=True)
    ids = results.sample_id_array(view)
    assert ids.dtype == np.dtype("S24")
    assert [x.decode() for x in ids] == view.values("id")
    assert len(results.sample_id_array(samples, batch_size=7)) == N
    assert len(results.sample_id_array(samples.limit(0))) == 0


def test_values_are_written_in_batches(samples):
    samples.add_sample_field("note", fo.StringField)
    ids = samples.values("id")[::-1]
    results.write_values(samples, {"note": [f"n{k}" for k in range(N)]}, ids, batch_size=7)
    assert samples.values("note")[::-1] == [f"n{k}" for k in range(N)]
