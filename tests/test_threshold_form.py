"""The approximate find form: a histogram of nearest-neighbour distances with
the threshold marked, and a live count at the value typed, cached so typing
stays cheap."""

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
from conftest import write_image
from operator_support import form, labels, run

from image_dedup import approx_dups

FIND = "find_approximate_duplicate_images"


@pytest.fixture
def near(dataset, tmp_path):
    """Ten images: 4, 5 near 0; 6 near 1 (as in test_approx_operators); 0-2 tagged test."""
    emb = np.eye(16)[:10] * 10.0
    rng = np.random.default_rng(0)
    for copy, original in ((4, 0), (5, 0), (6, 1)):
        emb[copy] = emb[original] + rng.normal(scale=0.3, size=16)
    paths = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(10)]
    dataset.add_samples([fo.Sample(filepath=p, tags=["test"] if i < 3 else ["train"])
                         for i, p in enumerate(paths)])
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    return dataset


@pytest.mark.parametrize("threshold, dups", [(0.2, 3), (0.0, 0)])
def test_histogram_and_live_count_match_the_find(near, threshold, dups):
    shown = form(FIND, near, sim_choices="sim", threshold_value=threshold, show_histogram=True)
    plot = shown["histogram"]["view"]
    assert plot["name"] == "PlotlyView"
    assert sum(plot["data"][0]["y"]) == 10  # every sample has a nearest neighbour
    line = plot["layout"]["shapes"][0]
    assert line["x0"] == line["x1"] == threshold
    assert shown["preview"]["view"]["label"].startswith(f"At {threshold}: {dups} duplicates would be removed")
    assert run(FIND, near, sim_choices="sim", threshold_value=threshold).result["num_dups"] == dups


def test_leak_mode_counts_target_samples_near_a_reference(near):
    params = dict(sim_choices="sim", threshold_value=0.2, compare_to="tag", reference_tag="test")
    shown = form(FIND, near, show_histogram=True, **params)
    assert "Distance to the nearest reference" == shown["histogram"]["view"]["layout"]["title"]
    assert sum(shown["histogram"]["view"]["data"][0]["y"]) == 7  # the train samples
    assert "At 0.2: 3 target samples duplicate a reference" in labels(shown)
    assert run(FIND, near, **params).result["num_leaked"] == 3


def test_histogram_only_when_asked(near):
    assert "histogram" not in form(FIND, near, sim_choices="sim")  # headless default: no search
    assert form(FIND, near, sim_choices="sim")["show_histogram"]["default"] is True


def test_preview_search_is_cached_per_scope(near):
    approx_dups._PREVIEWS.clear()
    first = approx_dups.threshold_preview(near, "sim", 0.2)
    search = next(iter(approx_dups._PREVIEWS.values()))
    pairs = search.pairs
    assert approx_dups.threshold_preview(near, "sim", 0.1).num_dups <= first.num_dups
    assert search.pairs is pairs and len(approx_dups._PREVIEWS) == 1  # no new search
    assert approx_dups.threshold_preview(near, "sim", 1.5).num_dups >= first.num_dups
    assert search.pairs is not pairs and search.max_dist == 1.5  # a larger threshold searched again
    approx_dups.threshold_preview(near.limit(5), "sim", 0.2)
    near.delete_samples(near.limit(1))
    assert approx_dups.threshold_preview(near, "sim", 0.2).counts != first.counts
    assert len(approx_dups._PREVIEWS) == 3  # another scope, another size: new entries
