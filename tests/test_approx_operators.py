"""The four approximate-duplicate operators, through execute_operator, on real
sklearn similarity indexes built from numpy embeddings."""

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
import fiftyone.operators as foo
from support import deleted, run, write_image

FIND = "find_approximate_duplicate_images"
DISPLAY = "display_approximate_duplicate_groups"
REMOVE = "remove_all_approximate_duplicates"
DEDUP = "deduplicate_approximate_duplicates"


def find(dataset, **params):
    return run(FIND, dataset, sim_choices="sim", **params).result


def group_of(dataset):
    """{filepath index: representative filepath index} for grouped samples."""
    index = {p: int(p.rsplit("img", 1)[1][:-4]) for p in dataset.values("filepath")}
    by_id = dict(zip(dataset.values("id"), dataset.values("filepath")))
    return {
        index[p]: index[by_id[g]]
        for p, g in zip(*dataset.exists("approx_dup_group_id").values(["filepath", "approx_dup_group_id"]))
    }


def test_find_threshold_groups_and_outputs(near_dataset):
    result = find(near_dataset, method_choices="threshold", threshold_value=0.2)
    assert result["num_images_with_approx_dups"] == 5
    assert result["num_dups"] == 3 and result["num_groups"] == 2
    assert result["threshold"] == 0.2
    assert group_of(near_dataset) == {0: 0, 4: 0, 5: 0, 1: 1, 6: 1}


def test_saved_views_are_ordered_and_small(near_dataset):
    find(near_dataset, threshold_value=0.2)
    view = near_dataset.load_saved_view("approx_dup_view")
    ids, groups, dists = view.values(["id", "approx_dup_group_id", "approx_dup_dist"])
    assert groups == sorted(groups)
    for k, (sample_id, group) in enumerate(zip(ids, groups)):
        if k == 0 or groups[k - 1] != group:
            assert sample_id == group and dists[k] == 0  # representative first
        else:  # then the other members, nearest first
            assert sample_id != group and dists[k] >= dists[k - 1]
    grouped = near_dataset.load_saved_view("approx_dup_groups_view")
    assert sorted(len(g) for g in grouped.iter_dynamic_groups()) == [2, 3]
    for name in ("approx_dup_view", "approx_dup_groups_view"):
        text = repr(near_dataset.load_saved_view(name)._serialize())
        assert not any(i in text for i in near_dataset.values("id"))


def test_find_fraction_tunes_threshold(near_dataset):
    result = find(near_dataset, method_choices="fraction", dup_fraction=0.3)
    assert result["num_dups"] == 3
    assert result["threshold"] > 0
    assert group_of(near_dataset) == {0: 0, 4: 0, 5: 0, 1: 1, 6: 1}


def test_rerun_replaces_previous_result(near_dataset):
    find(near_dataset, threshold_value=0.2)
    result = find(near_dataset, threshold_value=0.0)
    assert result["num_images_with_approx_dups"] == 0
    assert near_dataset.exists("approx_dup_group_id").count() == 0
    assert near_dataset.exists("approx_dup_dist").count() == 0
    assert len(near_dataset.load_saved_view("approx_dup_view")) == 0


def test_display_sets_grouped_view(near_dataset):
    find(near_dataset, threshold_value=0.2)
    requests = run(DISPLAY, near_dataset).executor.to_json()["requests"]
    assert [r["operator_uri"] for r in requests] == ["set_view", "notify"]  # the notice names the review panel
    shown = fo.DatasetView._build(near_dataset, requests[0]["params"]["view"])
    assert sorted(len(g) for g in shown.iter_dynamic_groups()) == [2, 3]


def test_remove_all_deletes_every_grouped_sample(near_dataset):
    find(near_dataset, threshold_value=0.2)
    assert run(REMOVE, near_dataset).result == deleted(5)
    assert len(near_dataset) == 5
    assert len(near_dataset.load_saved_view("approx_dup_view")) == 0


def test_deduplicate_keeps_each_representative(near_dataset):
    find(near_dataset, threshold_value=0.2)
    keep = set(near_dataset.values("filepath")) - {
        p for p in near_dataset.values("filepath") if p.endswith(("img4.png", "img5.png", "img6.png"))
    }
    assert run(DEDUP, near_dataset).result == deleted(3)
    assert set(near_dataset.values("filepath")) == keep


def test_changes_since_find_never_widen_a_delete(near_dataset, tmp_path):
    find(near_dataset, threshold_value=0.2)
    # the representative of {1, 6} is deleted; a new, ungrouped sample arrives
    near_dataset.delete_samples(near_dataset.match(fo.ViewField("filepath").ends_with("img1.png")))
    near_dataset.add_sample(fo.Sample(filepath=write_image(tmp_path / "new.png", seed=50)))
    assert run(REMOVE, near_dataset).result == deleted(3)  # only 0, 4, 5
    left = {p.rsplit("/", 1)[1] for p in near_dataset.values("filepath")}
    assert {"img6.png", "new.png"} <= left


def test_deduplicate_keeps_a_member_when_representative_is_gone(near_dataset):
    find(near_dataset, threshold_value=0.2)
    near_dataset.delete_samples(near_dataset.match(fo.ViewField("filepath").ends_with("img0.png")))
    assert run(DEDUP, near_dataset).result == deleted(2)  # one of 4, 5; and 6
    left = {p.rsplit("/", 1)[1] for p in near_dataset.values("filepath")}
    assert len(left & {"img4.png", "img5.png"}) == 1 and "img1.png" in left


def test_without_index_the_form_explains_and_execution_fails(dataset, tmp_path):
    dataset.add_sample(fo.Sample(filepath=write_image(tmp_path / "a.png", seed=1)))
    with pytest.raises(foo.executor.ExecutionError, match="no similarity index"):
        run(FIND, dataset, sim_choices="sim")
    assert "approx_dup_group_id" not in dataset.get_field_schema()


def test_non_similarity_brain_run_is_rejected(near_dataset):
    emb = np.random.default_rng(1).normal(size=(10, 8))
    fob.compute_visualization(near_dataset, embeddings=emb, method="pca", brain_key="viz")
    with pytest.raises(foo.executor.ExecutionError, match="sim_choices. Reason: Invalid enum"):
        run(FIND, near_dataset, sim_choices="viz")
    from image_dedup import approx_dups, similarity

    with pytest.raises(ValueError, match="'visualization' run, not a similarity index"):
        approx_dups.find_approximate_duplicates(near_dataset, "viz")
    assert similarity.similarity_brain_keys(near_dataset) == ["sim"]


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(threshold_value=-0.1), "between 0 and 2.0"),
        (dict(threshold_value=2.5), "between 0 and 2.0"),
        (dict(method_choices="fraction", dup_fraction=1.5), "less than"),
        (dict(method_choices="nearest"), "Invalid enum"),
    ],
)
def test_bad_parameters_change_nothing(near_dataset, params, message):
    with pytest.raises(foo.executor.ExecutionError, match=message):
        find(near_dataset, **params)
    assert "approx_dup_group_id" not in near_dataset.get_field_schema()


@pytest.mark.parametrize("uri", [REMOVE, DEDUP])
def test_before_find_is_a_clear_error(near_dataset, uri):
    with pytest.raises(
        foo.executor.ExecutionError, match="run 'Dedup: Find approximate duplicates' first"
    ):
        run(uri, near_dataset)
    assert len(near_dataset) == 10


def test_display_before_find_says_which_find_to_run(near_dataset):
    shown = run(DISPLAY, near_dataset).result
    assert shown["num_groups"] == 0
    assert "run 'Dedup: Find approximate duplicates' first" in shown["message"]


def test_empty_view_is_a_clear_error(near_dataset):
    empty = near_dataset.limit(0)
    with pytest.raises(foo.executor.ExecutionError, match="no samples"):
        run(FIND, view=empty, sim_choices="sim", view_target="CURRENT_VIEW")
