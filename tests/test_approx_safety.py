"""The approximate find on hard input, with real sklearn similarity indexes in
the real database: fractions that cannot be reached, non-finite and all-zero
embeddings, and scopes that mean-centring used to break.

Searches run under a deadline, so a search that never ends fails its test
instead of hanging the suite.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
import fiftyone.operators as foo
from support import near_embeddings, run

from image_dedup import approx_dups, neighbors, similarity

FIND = "find_approximate_duplicate_images"
DEADLINE_SECONDS = 30


class DeadlineExceeded(Exception):
    """Raised in the main thread when a guarded call runs too long."""


@contextlib.contextmanager
def deadline(seconds: float = DEADLINE_SECONDS):
    """Interrupts the block with :class:`DeadlineExceeded` after ``seconds``
    (re-raised here: the interrupted frame may have no line to report)."""

    def expire(signum, frame):
        raise DeadlineExceeded(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except DeadlineExceeded as e:
        raise DeadlineExceeded(str(e)) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def indexed(dataset: fo.Dataset, embeddings: np.ndarray, brain_key: str = "sim") -> fo.Dataset:
    """Adds one sample per embedding (if not there yet) and an sklearn index."""
    if len(dataset) == 0:
        dataset.add_samples([fo.Sample(filepath=f"/img/{i:03d}.jpg") for i in range(len(embeddings))])
    fob.compute_similarity(dataset, embeddings=np.asarray(embeddings, dtype=float),
                           backend="sklearn", brain_key=brain_key)
    return dataset


def random_embeddings(n: int, dim: int = 16, offset: float = 3.0, seed: int = 0) -> np.ndarray:
    """Distinct random embeddings around a mean far from 0."""
    return offset + np.random.default_rng(seed).normal(size=(n, dim))


def groups(dataset: fo.Dataset) -> dict:
    """{sample position: representative position} of the grouped samples."""
    position = {sample_id: k for k, sample_id in enumerate(dataset.values("id"))}
    ids, reps = dataset.exists("approx_dup_group_id").values(["id", "approx_dup_group_id"])
    return {position[i]: position[r] for i, r in zip(ids, reps)}


def find(samples, **kwargs) -> approx_dups.ApproxFindResult:
    with deadline():
        return approx_dups.find_approximate_duplicates(samples, "sim", **kwargs)


# 6. fraction mode ends for every input


@pytest.mark.parametrize("n, fraction", [(1, 0.5), (10, 0.96), (40, 0.99)])
def test_unreachable_fraction_ends_with_the_closest_result(dataset, n, fraction):
    indexed(dataset, random_embeddings(n))
    result = find(dataset, method="fraction", fraction=fraction)
    assert result.num_dups == n - 1  # one sample of a group is always kept
    assert result.fraction_reached == pytest.approx((n - 1) / n)
    assert f"dup_fraction {fraction}" in result.note and "closest" in result.note


def test_unreachable_fraction_through_the_operator(dataset):
    """In another process, so that a hang is ended by the timeout (FiftyOne
    runs ``execute`` in a worker thread, which no signal can interrupt)."""
    indexed(dataset, random_embeddings(10))
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "import database, fiftyone as fo; from support import run;"
        f"result = run('{FIND}', fo.load_dataset(sys.argv[2]), sim_choices='sim',"
        " method_choices='fraction', dup_fraction=0.96).result;"
        "print(json.dumps(result))"
    )
    done = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__), dataset.name],
                          capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["num_dups"] == 9 and result["num_groups"] == 1
    assert result["fraction_reached"] == pytest.approx(0.9) and "closest" in result["note"]


def test_reachable_fraction_says_nothing(near_dataset):
    result = find(near_dataset, method="fraction", fraction=0.3)
    assert result.num_dups == 3 and result.fraction_reached == pytest.approx(0.3)
    assert result.note == ""


def test_tuning_ends_when_no_threshold_reaches_the_count():
    no_pairs = neighbors.Pairs(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    with deadline():
        threshold = neighbors.tune_threshold(3, no_pairs, num_keep=1, max_dist=2.0)
    assert 0 < threshold <= 2.0


@pytest.mark.parametrize("method", ["threshold", "fraction"])
def test_search_of_nan_embeddings_is_a_clear_error(method):
    emb = random_embeddings(10)
    emb[4, 2] = np.nan
    criteria = {"threshold": 0.2} if method == "threshold" else {"fraction": 0.2}
    with deadline(), pytest.raises(ValueError, match="1 embedding is not finite"):
        neighbors.search_duplicates(emb, "cosine", **criteria)


def test_fraction_mode_on_an_index_with_nan_is_a_clear_error(dataset):
    emb = random_embeddings(10)
    emb[4, 2] = np.nan
    indexed(dataset, emb)
    with pytest.raises(ValueError, match="1 sample has"):
        find(dataset, method="fraction", fraction=0.2)


# 7. non-finite embeddings are an error that changes nothing


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeddings_are_an_error_and_keep_the_previous_result(dataset, bad):
    emb = near_embeddings()
    indexed(dataset, emb)
    broken = emb.copy()
    broken[2, 0] = bad
    broken[7, 3] = bad
    indexed(dataset, broken, "broken")
    run(FIND, dataset, sim_choices="sim", threshold_value=0.2)
    before = groups(dataset)
    assert before == {0: 0, 4: 0, 5: 0, 1: 1, 6: 1}
    ids = dataset.values("id")
    with deadline(), pytest.raises(foo.executor.ExecutionError, match="2 samples have") as error:
        run(FIND, dataset, sim_choices="broken", threshold_value=0.2)
    assert ids[2] in str(error.value) and ids[7] in str(error.value)
    assert groups(dataset) == before


def test_non_finite_embeddings_outside_the_scope_are_ignored(dataset):
    emb = near_embeddings()
    emb[8, 0] = np.nan
    indexed(dataset, emb)
    result = find(dataset.select(dataset.values("id")[:8]), threshold=0.2)
    assert result.num_dups == 3
    assert groups(dataset) == {0: 0, 4: 0, 5: 0, 1: 1, 6: 1}


# 8. all-zero embeddings are never grouped


def test_zero_embeddings_are_left_out_and_counted(dataset):
    emb = np.vstack([near_embeddings(), np.zeros((3, 16))])  # 10-12: all zero
    indexed(dataset, emb)
    result = run(FIND, dataset, sim_choices="sim", threshold_value=0.2).result
    assert groups(dataset) == {0: 0, 4: 0, 5: 0, 1: 1, 6: 1}
    assert result["num_dups"] == 3 and result["num_degenerate"] == 3
    assert "3 all-zero" in result["note"]


def test_zero_embeddings_are_left_out_in_fraction_mode(dataset):
    emb = np.vstack([np.zeros((2, 16)), near_embeddings(), np.zeros((2, 16))])
    indexed(dataset, emb)
    result = find(dataset, method="fraction", fraction=0.3)  # of the 10 non-zero
    assert groups(dataset) == {2: 2, 6: 2, 7: 2, 3: 3, 8: 3}
    assert result.num_degenerate == 4 and result.num_dups == 3


def test_zero_rows_are_never_grouped_by_the_search():
    emb = np.vstack([np.zeros((3, 4)), np.eye(4)])
    for metric in ("cosine", "euclidean"):
        found = neighbors.search_duplicates(emb, metric, threshold=2.0)
        assert found.num_degenerate == 3
        assert (found.rep[:3] == -1).all() and (found.rep[3:] == 3).all()


# 9. centring keeps small and uniform scopes right


def test_two_near_identical_samples_of_a_larger_index_are_found(dataset):
    emb = random_embeddings(30)
    emb[5] = emb[4] + 1e-3
    indexed(dataset, emb)
    ids = dataset.values("id")
    result = find(dataset.select([ids[4], ids[5]]), threshold=0.05)
    assert result.num_dups == 1
    assert groups(dataset) == {4: 4, 5: 4}


def test_identical_samples_of_a_scope_are_found(dataset):
    emb = random_embeddings(30)
    emb[10:14] = emb[10]
    indexed(dataset, emb)
    ids = dataset.values("id")
    result = find(dataset.select(ids[10:14]), threshold=0.05)
    assert result.num_dups == 3
    assert groups(dataset) == {10: 10, 11: 10, 12: 10, 13: 10}


def test_identical_embeddings_of_a_whole_dataset_are_found(dataset):
    indexed(dataset, np.tile(np.arange(1.0, 9.0), (5, 1)))
    result = find(dataset, threshold=0.05)
    assert result.num_dups == 4 and result.num_degenerate == 0
    assert groups(dataset) == {k: 0 for k in range(5)}


def test_rows_are_centred_on_the_whole_index(dataset):
    emb = random_embeddings(30)
    emb[3] = 0.0  # all-zero: not part of the mean
    emb[7, 0] = np.nan  # non-finite, not in the scope: not part of the mean
    indexed(dataset, emb)
    usable = np.delete(emb, [3, 7], axis=0)
    wanted = set(dataset.values("id")[:3])
    rows = similarity.index_rows(dataset, "sim", wanted)
    assert np.allclose(rows.mean, usable.mean(axis=0))
    assert np.allclose(rows.embeddings, emb[:3] - usable.mean(axis=0), atol=1e-5)
    raw = similarity.index_rows(dataset, "sim", wanted, center=False)
    assert np.all(raw.mean == 0)
    assert np.allclose(raw.embeddings, emb[:3], atol=1e-5)
