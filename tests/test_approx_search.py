"""The near-duplicate search agrees with fiftyone-brain's find_duplicates and
works on more than one similarity backend."""

import numpy as np
import pytest
from sklearn.metrics import pairwise_distances

import fiftyone as fo
import fiftyone.brain as fob
import fiftyone.operators as foo
from database import PLUGIN
from support import clustered_embeddings

from image_dedup import approx_dups, nearest_rows, neighbor_search, neighbors

FIND = f"{PLUGIN}/find_approximate_duplicate_images"
TOLERANCE = 1e-5


@pytest.fixture
def clustered(dataset):
    emb = clustered_embeddings()
    dataset.add_samples([fo.Sample(filepath=f"/img/{i:05d}.jpg") for i in range(len(emb))])
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    return dataset, emb


def brain_groups(dataset, **kwargs):
    index = dataset.load_brain_results("sim", cache=False)
    index.find_duplicates(**kwargs)
    groups = {kept: kept for kept in index.neighbors_map}
    for kept, dups in index.neighbors_map.items():
        groups.update({dup: kept for dup, _ in dups})
    return groups, index.thresh


def our_groups(dataset):
    return dict(zip(*dataset.exists("approx_dup_group_id").values(["id", "approx_dup_group_id"])))


def near_threshold_ids(dataset, emb, threshold):
    """Samples with some distance within TOLERANCE of the threshold."""
    centered = emb - emb.mean(axis=0)
    dists = pairwise_distances(centered, metric="cosine")
    np.fill_diagonal(dists, np.inf)
    ambiguous = np.abs(dists - threshold) <= TOLERANCE
    return {i for i, a in zip(dataset.values("id"), ambiguous.any(axis=1)) if a}


def assert_same_groups(dataset, emb, ours, theirs, threshold):
    """Same duplicates as the brain, each with its nearest kept sample.

    The brain's own nearest-kept lookup re-centers the kept embeddings on
    their mean, so it sometimes picks a kept sample that is not the nearest:
    there ours must be strictly nearer. Other differences are allowed only
    for samples with a distance within TOLERANCE of the threshold.
    """
    allowed = near_threshold_ids(dataset, emb, threshold)
    our_dups = {k for k, rep in ours.items() if k != rep}
    their_dups = {k for k, rep in theirs.items() if k != rep}
    assert our_dups ^ their_dups <= allowed
    centered = emb - emb.mean(axis=0)
    position = {sample_id: k for k, sample_id in enumerate(dataset.values("id"))}
    kept = [position[k] for k in set(position) - our_dups]
    for dup in our_dups - allowed:
        dists = pairwise_distances(centered[[position[dup]]], centered[kept], metric="cosine")[0]
        nearest = dists.min()
        assert dists[kept.index(position[ours[dup]])] <= nearest + TOLERANCE
        if ours[dup] != theirs[dup]:
            their_dist = dists[kept.index(position[theirs[dup]])]
            assert their_dist > nearest


@pytest.mark.parametrize("threshold", [0.01, 0.05, 0.2])
def test_threshold_mode_matches_brain(clustered, threshold):
    dataset, emb = clustered
    result = approx_dups.find_approximate_duplicates(dataset, "sim", threshold=threshold)
    theirs, _ = brain_groups(dataset, thresh=threshold)
    ours = our_groups(dataset)
    assert len(ours) > 100 and result.num_dups > 50
    assert_same_groups(dataset, emb, ours, theirs, threshold)


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.3])
def test_fraction_mode_matches_brain(clustered, fraction):
    dataset, emb = clustered
    result = approx_dups.find_approximate_duplicates(dataset, "sim", method="fraction", fraction=fraction)
    theirs, brain_thresh = brain_groups(dataset, fraction=fraction)
    assert result.threshold == float(f"{brain_thresh:.4g}")  # the output keeps 4 significant digits
    assert result.num_dups == len(theirs) - len(set(theirs.values()))
    assert_same_groups(dataset, emb, our_groups(dataset), theirs, brain_thresh)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_pairs_and_nearest_match_brute_force(metric):
    emb = clustered_embeddings(n=700, dim=16, seed=3)
    dists = pairwise_distances(emb.astype(np.float64), metric=metric)
    np.fill_diagonal(dists, np.inf)
    max_dist = float(np.quantile(dists[np.isfinite(dists)], 0.01))
    pairs = neighbor_search.find_pairs(emb, metric, max_dist)
    expected = {(i, j) for i, j in zip(*np.nonzero(dists <= max_dist)) if i < j}
    borderline = {(i, j) for i, j in zip(*np.nonzero(np.abs(dists - max_dist) <= TOLERANCE))}
    assert set(zip(pairs.i.tolist(), pairs.j.tolist())) ^ expected <= borderline
    assert np.allclose(pairs.dist, dists[pairs.i, pairs.j], atol=TOLERANCE)
    nearest = neighbor_search.nearest_neighbor_distances(emb, metric)
    assert np.allclose(nearest, dists.min(axis=1), atol=TOLERANCE)


# exact: each tile merged value by value (0), as tuned (16), or by partial sorts of whole rows
@pytest.mark.parametrize("method, sparse_share", [("exact", 0), ("exact", 16), ("exact", 10**12), ("faiss", 16)])
def test_nearest_pairs_while_searching_equal_nearest_of_all_pairs(monkeypatch, method, sparse_share):
    """A loose threshold's pairs, held to each row's nearest few as they are
    found (exact: each row's running nearest over many small tiles; faiss:
    cut back every few hundred pairs), are the nearest few of all the pairs."""
    emb = clustered_embeddings(n=1500, dim=16, seed=7)
    every = neighbor_search.find_pairs(emb, "cosine", 0.5, method=method)
    monkeypatch.setattr(nearest_rows, "SPARSE_SHARE", sparse_share)
    monkeypatch.setattr(neighbor_search, "TILE_ROWS", 128)
    monkeypatch.setattr(neighbor_search, "TILE_COLS", 200)
    monkeypatch.setattr(nearest_rows, "COMPACT_PAIRS", 300)
    held = neighbor_search.find_pairs(emb, "cosine", 0.5, method=method, nearest=3)
    keep = nearest_rows.nearest_of_either(every.i, every.j, every.dist, 3)
    assert len(every.i) > 4 * len(held.i) > 0  # most pairs were dropped on the way
    assert np.array_equal(held.i, every.i[keep]) and np.array_equal(held.j, every.j[keep])
    assert np.array_equal(held.dist, every.dist[keep])


def test_search_is_blocked_beyond_one_tile(monkeypatch):
    """Several row and column tiles give the same pairs as one."""
    emb = clustered_embeddings(n=900, dim=8, seed=5)
    whole = neighbor_search.find_pairs(emb, "cosine", 0.05)
    monkeypatch.setattr(neighbor_search, "TILE_ROWS", 128)
    monkeypatch.setattr(neighbor_search, "TILE_COLS", 300)
    tiled = neighbor_search.find_pairs(emb, "cosine", 0.05)
    assert np.array_equal(whole.i, tiled.i) and np.array_equal(whole.j, tiled.j)


def test_lancedb_index_gives_the_same_groups(clustered, tmp_path):
    dataset, emb = clustered
    fob.compute_similarity(
        dataset, embeddings=emb - emb.mean(axis=0), backend="lancedb",
        brain_key="lance", metric="cosine", uri=str(tmp_path / "lancedb"),
    )
    foo.execute_operator(FIND, ctx=dict(dataset=dataset, params=dict(sim_choices="lance", threshold_value=0.05)))
    from_lance = our_groups(dataset)
    approx_dups.find_approximate_duplicates(dataset, "sim", threshold=0.05)
    assert len(from_lance) > 100
    assert from_lance.keys() ^ our_groups(dataset).keys() <= near_threshold_ids(dataset, emb, 0.05)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_cross_search_matches_brute_force(metric):
    emb = clustered_embeddings(n=900, dim=16, seed=7)
    queries, references = emb[:300], emb[300:]
    dists = pairwise_distances(queries.astype(np.float64), references.astype(np.float64), metric=metric)
    max_dist = float(np.quantile(dists, 0.005))
    pairs = neighbor_search.find_pairs(queries, metric, max_dist, references=references)
    expected = set(zip(*np.nonzero(dists <= max_dist)))
    borderline = set(zip(*np.nonzero(np.abs(dists - max_dist) <= TOLERANCE)))
    assert len(expected) > 100
    assert set(zip(pairs.i.tolist(), pairs.j.tolist())) ^ expected <= borderline
    assert np.allclose(pairs.dist, dists[pairs.i, pairs.j], atol=TOLERANCE)
    nearest = neighbor_search.nearest_neighbor_distances(queries, metric, references=references)
    assert np.allclose(nearest, dists.min(axis=1), atol=TOLERANCE)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_fraction_guess_from_sampled_rows_gives_the_same_groups(monkeypatch, metric):
    emb = clustered_embeddings(n=3000, dim=16, seed=11)
    full = neighbors.search_duplicates(emb, metric, fraction=0.2, method="exact")
    monkeypatch.setattr(neighbor_search, "GUESS_SAMPLE_ROWS", 100)  # 3000 rows: sampled
    sampled = neighbors.search_duplicates(emb, metric, fraction=0.2, method="exact")
    assert sampled.threshold == full.threshold
    assert np.array_equal(sampled.rep, full.rep)
    assert (full.rep >= 0).sum() > 500


def test_groups_linked_by_a_confirmed_pair_are_joined():
    """Copies of one photo split by the greedy rule (a crop and a rotated copy
    not confirmed with each other) come back together through a pair that
    was confirmed, and so does a copy confirmed only with another sample's
    duplicate; a pair of ungrouped samples and unlinked groups stay."""
    found = neighbors.Groups(rep=np.array([0, 0, 2, 2, -1, -1, 6, 6, -1]),
                             dist=np.array([0, 0.1, 0, 0.2, 0, 0, 0, 0.3, 0], dtype=np.float32), threshold=0.3)
    linked = neighbors.join_linked_groups(found, np.array([1, 4, 0, 7]), np.array([3, 5, 1, 8]),
                                          lambda a, b: (a + b) / 100.0)
    assert linked.rep.tolist() == [0, 0, 0, 0, -1, -1, 6, 6, 6]
    np.testing.assert_allclose(linked.dist, [0, 0.1, 0.02, 0.03, 0, 0, 0, 0.3, 0.14], atol=1e-6)
    unchanged = neighbors.join_linked_groups(found, np.array([0]), np.array([1]), None)
    assert unchanged is found
