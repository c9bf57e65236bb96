"""The approximate find form: a histogram of nearest-neighbour distances with
the threshold marked, and a live count at the value typed, cached so typing
stays cheap."""

import pytest

from support import form, labels, run

from image_dedup import threshold_preview

FIND = "find_approximate_duplicate_images"


@pytest.mark.parametrize("threshold, dups", [(0.2, 3), (0.0, 0)])
def test_histogram_and_live_count_match_the_find(near_dataset, threshold, dups):
    shown = form(FIND, near_dataset, sim_choices="sim", threshold_value=threshold, show_histogram=True)
    plot = shown["histogram"]["view"]
    assert plot["name"] == "PlotlyView"
    assert sum(plot["data"][0]["y"]) == 10  # every sample has a nearest neighbour
    line = plot["layout"]["shapes"][0]
    assert line["x0"] == line["x1"] == threshold
    assert shown["preview"]["view"]["label"].startswith(f"At {threshold}: {dups} duplicates would be removed")
    assert run(FIND, near_dataset, sim_choices="sim", threshold_value=threshold).result["num_dups"] == dups


def test_leak_mode_counts_target_samples_near_a_reference(near_dataset):
    params = dict(sim_choices="sim", threshold_value=0.2, compare_to="tag", reference_tag="test")
    shown = form(FIND, near_dataset, show_histogram=True, **params)
    assert "Distance to the nearest reference" == shown["histogram"]["view"]["layout"]["title"]
    assert sum(shown["histogram"]["view"]["data"][0]["y"]) == 7  # the train samples
    assert "At 0.2: 3 target samples duplicate a reference" in labels(shown)
    assert run(FIND, near_dataset, **params).result["num_leaked"] == 3


def test_histogram_only_when_asked(near_dataset):
    assert "histogram" not in form(FIND, near_dataset, sim_choices="sim")  # headless default: no search
    assert form(FIND, near_dataset, sim_choices="sim")["show_histogram"]["default"] is True


def test_preview_search_is_cached_per_scope(near_dataset):
    threshold_preview._CACHE.clear()
    first = threshold_preview.threshold_preview(near_dataset, "sim", 0.2)
    search = next(iter(threshold_preview._CACHE.values()))
    pairs = search.pairs
    assert threshold_preview.threshold_preview(near_dataset, "sim", 0.1).num_dups <= first.num_dups
    assert search.pairs is pairs and len(threshold_preview._CACHE) == 1  # no new search
    assert threshold_preview.threshold_preview(near_dataset, "sim", 1.5).num_dups >= first.num_dups
    assert search.pairs is not pairs and search.max_dist == 1.5  # a larger threshold searched again
    threshold_preview.threshold_preview(near_dataset.limit(5), "sim", 0.2)
    near_dataset.delete_samples(near_dataset.limit(1))
    assert threshold_preview.threshold_preview(near_dataset, "sim", 0.2).counts != first.counts
    assert len(threshold_preview._CACHE) == 3  # another scope, another size: new entries
