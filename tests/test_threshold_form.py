"""The approximate find form: a histogram of nearest-neighbour distances with
the threshold marked, and a live count at the value typed, cached so typing
stays cheap."""

import asyncio
import re

import pytest

import fiftyone.operators as foo
import fiftyone.operators.executor as foe
from app_support import write_photos
from database import PLUGIN
from support import form, labels, run

import fiftyone as fo
from image_dedup import pixel_embeddings, threshold_preview

FIND = "find_approximate_duplicate_images"


@pytest.fixture(scope="module")
def photo_dataset(tmp_path_factory):
    """app_support's 12 photos (4 copies) in a pixel index "pixels"."""
    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=p) for p in write_photos(tmp_path_factory.mktemp("photos"))])
    pixel_embeddings.compute_pixel_similarity(dataset, brain_key="pixels")
    yield dataset
    dataset.delete()


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
    assert "Distance to the nearest reference" == shown["histogram"]["view"]["layout"]["title"]["text"]
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


def _fraction_preview(shown: dict) -> tuple:
    """``(samples removed, threshold)`` of the fraction preview's notice."""
    found = re.fullmatch(r"Fraction [\d.]+ removes about (\d+) samples: threshold ≈ ([\d.e-]+)",
                         shown["preview"]["view"]["label"])
    assert found, shown["preview"]["view"]["label"]
    return int(found[1]), float(found[2])


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_fraction_mode_previews_the_threshold_the_find_settles_on(near_dataset, fraction):
    params = dict(sim_choices="sim", method_choices="fraction", dup_fraction=fraction)
    shown = form(FIND, near_dataset, show_histogram=True, **params)
    assert shown["dup_fraction"]["view"]["label"] == "Fraction of duplicates"
    assert shown["dup_fraction"]["view"]["name"] == "View"  # a number field that shows its value
    num_dups, threshold = _fraction_preview(shown)
    assert shown["histogram"]["view"]["layout"]["shapes"][0]["x0"] == pytest.approx(threshold, rel=1e-3)
    result = run(FIND, near_dataset, **params).result
    assert (num_dups, threshold) == (result["num_dups"], result["threshold"])  # both to 4 digits
    assert num_dups == round(fraction * 10)


def test_fraction_preview_on_a_pixel_index_of_photos(photo_dataset):
    params = dict(sim_choices="pixels", method_choices="fraction", dup_fraction=0.25)
    num_dups, threshold = _fraction_preview(form(FIND, photo_dataset, show_histogram=True, **params))
    result = run(FIND, photo_dataset, **params).result
    assert num_dups == 3 and threshold == result["threshold"]
    assert result["num_dups"] <= num_dups  # verification may confirm fewer


def outputs(dataset, result: dict, **params) -> dict:
    """The find's output panel for ``params`` and its ``result``, as the App asks for it."""
    request = dict(dataset_name=dataset.name, params=params, results=result, target="outputs")
    prop = asyncio.run(foe.resolve_type(foo.OperatorRegistry(), f"{PLUGIN}/{FIND}", request))
    return prop.to_json()["type"]["properties"]


def test_a_new_index_shows_its_histogram_in_the_finds_output(near_dataset):
    params = dict(index_source="pixels", new_brain_key="px", verify=False, threshold_value=0.3,
                  show_histogram=True)
    assert "histogram" not in form(FIND, near_dataset, **params)  # no index to search yet
    result = run(FIND, near_dataset, **params).result
    plot = outputs(near_dataset, result, **params)["histogram"]["view"]
    assert plot["layout"]["title"]["text"] == "Distance to the nearest other sample"
    assert plot["layout"]["xaxis"]["title"]["text"] == "distance to nearest neighbour"
    assert plot["layout"]["yaxis"]["title"]["text"] == "samples"
    assert plot["layout"]["shapes"][0]["x0"] == result["threshold"] == 0.3
    assert sum(plot["data"][0]["y"]) == 10
    existing = dict(params, index_source="existing", sim_choices="px")
    assert "histogram" not in outputs(near_dataset, result, **existing)  # the form showed it
