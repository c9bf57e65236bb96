"""The embedding cache of sklearn indexes (binary copies keyed to the stored
run) and the fast first read of a stored run's raw results, which must give
arrays identical to FiftyOne's loader."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from bson import json_util

import fiftyone as fo
import fiftyone.brain as fob
import fiftyone.core.brain as fobr
from support import clustered_embeddings

from image_dedup import approx_dups, embedding_cache

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
    embedding_cache.wait_for_writes()  # entries are written in the background
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


def read_in_a_new_process(dataset, before_read: str = "") -> str:
    """Reads the index's embeddings in a new process, which first runs
    ``before_read``; returns what it printed (their shape)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import database, fiftyone as fo;"
        "from plugin_import import import_plugin_package; import_plugin_package();"
        f"from image_dedup import embedding_cache\n{before_read}\n"
        "print(embedding_cache.index_embeddings(fo.load_dataset(sys.argv[2]), 'sim')[0].shape)"
    )
    return subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__), dataset.name],
                          check=True, capture_output=True, text=True).stdout


def test_a_process_that_exits_right_after_a_read_leaves_its_entry(dataset, cache_dir):
    """The entry is written in a background thread: a process that ends
    right after its first read (a delegated run, a script) still leaves it."""
    emb = indexed(dataset)
    read_in_a_new_process(dataset)
    [entry] = entries(cache_dir)
    with np.load(cache_dir / entry) as written:
        assert np.array_equal(written["embeddings"], emb)


def test_a_full_disk_costs_only_speed_and_leaves_no_partial_file(dataset, cache_dir):
    """The process may write at most 1 MB per file (the 2000 x 512 entry
    is 4 MB), as on a disk that fills up during the write."""
    indexed(dataset)
    out = read_in_a_new_process(dataset, "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                                         "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, -1))")
    assert out.strip() == f"(2000, {DIM})"
    assert entries(cache_dir) == []


def test_recompute_invalidates_the_cache(dataset, cache_dir):
    indexed(dataset, seed=0)
    fresh_embeddings(dataset)
    [old] = entries(cache_dir)
    new = indexed(dataset, seed=1)
    assert np.array_equal(fresh_embeddings(dataset)[0], new)
    [entry] = entries(cache_dir)
    assert entry != old


def test_entries_of_deleted_runs_and_datasets_are_removed_by_the_next_write(dataset, cache_dir):
    other = fo.Dataset()
    for key in ("kept", "deleted"):
        indexed(other, brain_key=key)
        fresh_embeddings(other, key)
    indexed(dataset)
    fresh_embeddings(dataset)
    assert len(entries(cache_dir)) == 3
    other.delete_brain_run("deleted")
    indexed(dataset, seed=1)  # a new run: its entry is written again
    fresh_embeddings(dataset)
    assert [e.split("-")[:2] for e in entries(cache_dir)] == sorted([[str(other._doc.id), "kept"],
                                                                      [str(dataset._doc.id), "sim"]])
    other.delete()
    indexed(dataset, seed=2)
    fresh_embeddings(dataset)
    assert [e.split("-")[:2] for e in entries(cache_dir)] == [[str(dataset._doc.id), "sim"]]


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


# the fast first read ---------------------------------------------------------


def fiftyone_embeddings(dataset, brain_key="sim"):
    """What FiftyOne's own loader gives."""
    embeddings, sample_ids, _ = dataset.load_brain_results(brain_key, cache=False).get_embeddings()
    return embeddings, sample_ids


def assert_identical(ours, theirs):
    assert ours[0].dtype == theirs[0].dtype and ours[0].shape == theirs[0].shape
    assert np.array_equal(ours[0].view(np.uint8), theirs[0].view(np.uint8))  # bit for bit
    assert ours[1].dtype == theirs[1].dtype and np.array_equal(ours[1], theirs[1])


def awkward_values(n, dim, seed=0):
    """float64 values over the whole exponent range: subnormals, the largest
    finite, -0.0, integers among fractions, long and short decimals."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, dim)) * 10.0 ** rng.integers(-300, 300, size=(n, dim))
    emb[0, :6] = [5e-324, 1.7976931348623157e308, -0.0, 2.2250738585072014e-308, 3.0, -7.0]
    emb[1] = np.round(emb[1])
    emb[2] = rng.normal(size=dim).astype(np.float32)
    return emb


@pytest.mark.parametrize("make", ["float32", "awkward"])
def test_fast_read_is_identical_to_fiftyones_loader(dataset, make):
    n, dim = 500, 24
    emb = (
        np.random.default_rng(1).normal(size=(n, dim)).astype(np.float32)
        if make == "float32"
        else awkward_values(n, dim)
    )
    dataset.add_samples([fo.Sample(filepath=f"/img/{k:05d}.jpg") for k in range(n)])
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    dataset.clear_cache()
    fast = embedding_cache.read_stored_results(dataset, "sim")
    assert fast is not None  # taken, not declined
    assert_identical(fast, fiftyone_embeddings(dataset))
    assert np.array_equal(fast[0], emb)


@pytest.mark.parametrize("parser", ["arrow, blocks of 1000 bytes", "json_util for the rest"])
def test_every_parser_gives_the_same_arrays(dataset, monkeypatch, parser):
    emb = awkward_values(300, 16, seed=2)
    dataset.add_samples([fo.Sample(filepath=f"/img/{k:05d}.jpg") for k in range(300)])
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    if parser == "json_util for the rest":
        monkeypatch.setattr(embedding_cache, "orjson", None)
    else:
        monkeypatch.setattr(embedding_cache, "ROWS_CHUNK_BYTES", 1000)  # ~100 blocks
    fast = embedding_cache.read_stored_results(dataset, "sim")
    assert fast is not None
    assert_identical(fast, fiftyone_embeddings(dataset))


def test_without_pyarrow_fiftyones_loader_reads(dataset, cache_dir, monkeypatch):
    emb = indexed(dataset)
    monkeypatch.setattr(embedding_cache, "pyarrow_csv", None)
    dataset.clear_cache()
    assert embedding_cache.read_stored_results(dataset, "sim") is None
    assert np.array_equal(fresh_embeddings(dataset)[0], emb)


def stored_json(rows, ids=None):
    ids = [f"{k:024x}" for k in range(len(rows))] if ids is None else ids
    d = {"cls": "fiftyone.brain.internal.core.sklearn.SklearnSimilarityIndex",
         "embeddings": rows, "sample_ids": ids, "label_ids": None}
    return json_util.dumps(d).encode()


def parse(raw, block=None):
    """The fast read of ``raw``, given in blocks of ``block`` bytes (one
    block: None)."""
    blocks = [raw[k : k + block] for k in range(0, len(raw), block)] if block else [raw]
    try:
        return embedding_cache._parse_results(blocks)
    except Exception:
        return None


@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_the_blocks_may_be_cut_anywhere(block):
    rows = awkward_values(20, 6, seed=4).tolist()
    raw = stored_json(rows)
    whole = parse(raw)
    assert whole is not None and np.array_equal(whole[0], rows)
    cut = parse(raw, block)
    assert np.array_equal(cut[0].view(np.uint8), whole[0].view(np.uint8))
    assert np.array_equal(cut[1], whole[1])


def test_what_the_fast_read_declines():
    assert parse(stored_json([[0.5, 1.5], [2.5, 3.5]])) is not None
    assert parse(stored_json([[0.5, float("nan")], [2.5, 3.5]])) is None  # NaN
    assert parse(stored_json([[0.5, float("inf")], [2.5, 3.5]])) is None
    assert parse(stored_json([[0.5, 1.5], ["2.5", 3.5]])) is None  # a string
    assert parse(stored_json([[1, 2], [3, 4]])) is None  # integers: int64 in FiftyOne
    assert parse(stored_json([[0.5, 1.5], [2.5]])) is None  # ragged
    assert parse(stored_json([[0.5, 1.5, 2.5], [2.5]])) is None
    assert parse(stored_json([[0.5, 1.5], [2.5, 3.5, 4.5], [5.5]], ids=["a", "b", "c"])) is None  # 6 = 3 x 2
    assert parse(stored_json([[0.5, 1.5], [2.5, 3.5]]).replace(b"2.5, ", b"2.5,, ")) is None  # empty value
    assert parse(stored_json([[0.5, 1.5]], ids=["a", "b"])) is None  # counts differ
    assert parse(stored_json([])) is None
    assert parse(json.dumps({"embeddings": None}).encode()) is None
    whole = stored_json([[0.5, 1.5], [2.5, 3.5]])
    assert parse(whole[: whole.find(b"]]")], block=4) is None  # cut short
    assert parse(whole[:-60]) is None
    # a list of lists after the rows: declined (FiftyOne's loader reads it), not misread
    assert parse(whole[:-1] + b', "extra": [[0.5, 1.5], [2.5, 3.5]]}') is None


def test_a_declined_read_falls_back_to_fiftyones_loader(dataset, cache_dir):
    emb = np.random.default_rng(3).normal(size=(2000, DIM))
    emb[5, 7] = np.nan
    dataset.add_samples([fo.Sample(filepath=f"/img/{k:05d}.jpg") for k in range(2000)])
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    assert embedding_cache.read_stored_results(dataset, "sim") is None
    loaded, ids = fresh_embeddings(dataset)
    assert np.array_equal(loaded, emb, equal_nan=True)


def test_a_cold_read_does_not_load_the_brain_results(dataset, cache_dir):
    emb = indexed(dataset)
    dataset.clear_cache()
    loaded, ids = embedding_cache.index_embeddings(dataset, "sim")
    # FiftyOne's loader caches the results it loads: none are in this process
    assert not fobr.BrainMethod.has_cached_run_results(dataset, "sim")
    assert np.array_equal(loaded, emb) and list(ids) == dataset.values("id")
    assert len(entries(cache_dir)) == 1  # and the binary copy is written
