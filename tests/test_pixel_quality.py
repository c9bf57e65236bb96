"""The issue's held-out goals for the pixel index, on photos it was not tuned
on (the ``heldout`` part of ``benchmarks/eval_photos.py``): pairwise F1 >= 0.97
with mirrored copies, <= 5% of hard-negative pairs merged, no two distinct
documents or flat images merged, exact copies always grouped.

The first tests need only what ``pip install`` of the project brings
(scikit-image and scikit-learn photos: 6 held-out photos, too few for the F1
goal, so a floor guards them); the last one, the issue's goals in full, also
uses the Debian packages' photos, which ``./run.sh test`` installs (it is
skipped where they are not installed)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import eval_photos  # noqa: E402
import quality  # noqa: E402

from image_dedup import pixel_embeddings, verification  # noqa: E402


def new_method(verify: bool) -> quality.Method:
    embed = lambda paths: pixel_embeddings.embed_images(paths, num_workers=2)  # noqa: E731
    if verify:
        return quality.Method("new + verification", embed, fixed=verification.CANDIDATE_THRESHOLD, verify=True)
    return quality.Method("new", embed, fixed=pixel_embeddings.DEFAULT_THRESHOLD)


def assert_goals(data, result, min_f1: float):
    """The goals, with F1 at least ``min_f1``."""
    print(f"F1 {result['f1']:.3f} (P {result['precision']:.3f}, R {result['recall']:.3f}), "
          f"hard negatives merged {result['hard_merged_all']:.1%}: {result['hard_counts']}; "
          f"recall per edit {result['edit_recall']}")
    assert result["precision"] >= 0.99
    assert result["f1"] >= min_f1
    assert result["hard_merged_all"] <= 0.05
    assert result["hard_counts"]["document"][0] == 0
    assert result["hard_counts"]["flat"][0] == 0
    assert result["edit_recall"]["exact"] == 1.0
    assert result["edit_recall"]["mirror"] >= 0.95  # measured 1.00


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    """The held-out part from the Python packages' photos only."""
    return eval_photos.build_eval_set(str(tmp_path_factory.mktemp("heldout")), "heldout", use_apt=False)


def test_heldout_set_has_every_kind(heldout):
    kinds = set(heldout.kind)
    assert set(eval_photos.EDIT_KINDS) <= kinds
    assert {k for _, _, k in heldout.hard_pairs} >= {"stereo", "burst", "document", "flat"}
    assert all(os.path.exists(p) for p in heldout.paths)
    names = {i.split(":")[1] for i in heldout.identity if i.startswith("photo:")}
    assert all(eval_photos.part_of(n) == "heldout" for n in names)


@pytest.fixture(scope="module")
def verified(heldout):
    return new_method(verify=True).measure(heldout)


def test_pixel_index_with_verification_meets_goals(heldout, verified):
    assert_goals(heldout, verified, min_f1=0.90)  # measured 0.939 on these 6 photos


def test_embedding_alone_finds_exact_copies_and_mirrors(heldout):
    result = new_method(verify=False).measure(heldout)
    print(f"embedding alone: F1 {result['f1']:.3f}, hard negatives merged {result['hard_counts']}")
    merged, total = result["hard_counts"]["flat"]
    assert merged <= 0.05 * total  # two nearly flat images with the same ramp may meet;
    # verification never confirms images too flat to compare (test_verification)
    assert result["edit_recall"]["exact"] == 1.0
    assert result["edit_recall"]["mirror"] == 1.0
    assert result["recall"] >= 0.85  # measured 0.867: a floor against regressions


def test_f1_interval_draws_whole_photos_again():
    """How much F1 depends on which photos were held out: none when every
    pair is found and none is false; otherwise an interval around the F1."""
    identity = ["a"] * 3 + ["b"] * 3 + ["c"] * 2
    truth = {(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5), (6, 7)}
    assert quality.f1_interval(identity, truth, truth) == (1.0, 1.0)
    predicted = {(0, 1), (0, 2), (1, 2), (3, 4), (2, 6)}  # b: 1 of 3 found; c missed; a false a-c pair
    low, high = quality.f1_interval(identity, predicted, truth)
    assert low < 2 * 4 / (len(predicted) + len(truth)) < high


def test_distances_do_not_depend_on_the_dataset(heldout):
    """Plain cosine of per-image vectors: a pair's distance is the same in any
    subset (no centring), and no non-empty image embeds to zero."""
    paths = heldout.paths[:40]
    full = pixel_embeddings.embed_images(paths, num_workers=2)
    part = pixel_embeddings.embed_images(paths[::3], num_workers=1)
    np.testing.assert_allclose(full[::3], part, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)


@pytest.mark.skipif(not eval_photos.apt_photos_available(),
                    reason="Debian photo packages not installed (benchmarks/quality.py --install)")
def test_goals_on_the_held_out_photos_with_the_debian_photos(tmp_path):
    data = eval_photos.build_eval_set(str(tmp_path), "heldout", use_apt=True)
    assert_goals(data, new_method(verify=True).measure(data), min_f1=0.97)  # measured 0.975
