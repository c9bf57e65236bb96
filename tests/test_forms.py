"""The flows a newcomer walks in the forms: a find after a display searches
the dataset, a find says what it replaces, results say where they are."""

import pytest

import fiftyone as fo
from support import form, labels, run, threshold_field

FIND = "find_approximate_duplicate_images"
DISPLAY = "display_approximate_duplicate_groups"


def displayed_view(dataset):
    requests = run(DISPLAY, dataset).executor.to_json()["requests"]
    return fo.DatasetView._build(dataset, requests[0]["params"]["view"])


def test_a_find_on_the_displayed_groups_searches_the_dataset(near_dataset):
    first = run(FIND, near_dataset, sim_choices="sim", threshold_value=0.2).result
    shown = displayed_view(near_dataset)
    assert form(FIND, near_dataset, view=shown, sim_choices="sim")["view_target"]["default"] == "DATASET"
    assert first["num_images_with_approx_dups"] == 5
    loose = run(FIND, near_dataset, view=shown, sim_choices="sim", threshold_value=2.0).result
    assert loose["num_images_with_approx_dups"] == 10  # all ten, not the 5 shown


def test_a_find_says_what_it_replaces(near_dataset):
    assert not any("replaces" in text for text in labels(form(FIND, near_dataset, sim_choices="sim")))
    run(FIND, near_dataset, sim_choices="sim", threshold_value=0.2)
    notices = labels(form(FIND, near_dataset, sim_choices="sim"))
    assert "This find replaces the current result: 5 images in 2 groups" in notices


def test_outputs_name_the_saved_view_and_the_next_step(near_dataset):
    result = run(FIND, near_dataset, sim_choices="sim", threshold_value=0.2).result
    assert result["saved_view"] == "approx_dup_view"
    assert "Dedup: Review duplicates" in result["next_step"]
    assert "Dedup: Review duplicates" in run(DISPLAY, near_dataset).result["review"]


def test_the_leakage_tag_preselects_a_reference_not_the_targets_own(near_dataset):
    near_dataset.take(3, seed=1).tag_samples("alpha")  # sorts first, but is no split name
    train = near_dataset.match_tags("train")
    shown = form(FIND, near_dataset, view=train, view_target="CURRENT_VIEW", compare_to="tag",
                 sim_choices="sim")
    assert shown["reference_tag"]["default"] == "test"


def test_the_threshold_is_checked_while_typing(near_dataset):
    shown = form(FIND, near_dataset, sim_choices="sim", threshold_value=None)
    assert threshold_field(shown)["invalid"] is True
    assert threshold_field(shown)["type"]["max"] == 2.0  # cosine distances end at 2
    with pytest.raises(fo.operators.executor.ExecutionError, match="between 0 and 2.0"):
        run(FIND, near_dataset, sim_choices="sim", threshold_value=3.0)


def test_the_palette_lists_the_two_finds_first():
    """The App's operator browser ranks operators by the first letter of their
    description (recently used ones first): the finds are the first step."""
    import image_dedup
    configs = [op().config for op in image_dedup.OPERATORS + (image_dedup.OpenReviewPanel,)]
    ranked = sorted(configs, key=lambda c: ord((c.description or c.label)[0]))
    assert all(c.description for c in configs)
    assert {c.name for c in ranked[:2]} == {"find_exact_duplicate_images", "find_approximate_duplicate_images"}
    assert [c.name.split("_")[0] for c in ranked[2:4]] == ["display", "display"]
