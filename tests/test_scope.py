"""Both find operators act on the dataset, the current view or the selected
samples; groups, saved views and deletes stay within that scope."""

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
from fiftyone import ViewField as F
from support import copy_file, deleted, run, write_image

APPROX = dict(sim_choices="sim", threshold_value=0.2)


@pytest.fixture
def pairs(dataset, tmp_path):
    """Three pairs of copies: a/a2, b/b2, c/c2 (byte-identical and, in the
    index, near each other); "a" pairs are tagged "left"."""
    paths = []
    for k, name in enumerate("abc"):
        original = write_image(tmp_path / f"{name}.png", seed=k)
        paths += [original, copy_file(original, tmp_path / f"{name}2.png")]
    dataset.add_samples([fo.Sample(filepath=p, tags=["left"] if "/a" in p else []) for p in paths])
    emb = np.repeat(np.eye(4)[:3], 2, axis=0) + np.random.default_rng(0).normal(0, 0.01, (6, 4))
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    return dataset


def names(view):
    return sorted(p.rsplit("/", 1)[1][:-4] for p in view.values("filepath"))


@pytest.mark.parametrize(
    "find, params, view_name, delete",
    [
        ("find_exact_duplicate_images", {}, "exact_dup_view", "remove_all_exact_duplicates"),
        ("find_approximate_duplicate_images", APPROX, "approx_dup_view",
         "remove_all_approximate_duplicates"),
    ],
)
def test_current_view_scopes_groups_and_deletes(pairs, find, params, view_name, delete):
    view = pairs.match_tags("left", bool=False)
    result = run(find, view=view, view_target="CURRENT_VIEW", **params).result
    assert result["num_dups"] == 2
    assert names(pairs.load_saved_view(view_name)) == ["b", "b2", "c", "c2"]
    assert run(delete, pairs).result == deleted(4)
    assert names(pairs) == ["a", "a2"]


@pytest.mark.parametrize(
    "find, params, view_name, dedup",
    [
        ("find_exact_duplicate_images", {}, "exact_dup_view", "deduplicate_exact_duplicates"),
        ("find_approximate_duplicate_images", APPROX, "approx_dup_view",
         "deduplicate_approximate_duplicates"),
    ],
)
def test_selected_samples_scope(pairs, find, params, view_name, dedup):
    # b, b2 and c are selected: c's copy is outside the scope
    selected = pairs.match(F("filepath").re_match(r".*/(b|b2|c)\.png$")).values("id")
    result = run(find, pairs, view=pairs.view(), selected=selected,
                 view_target="SELECTED_SAMPLES", **params).result
    assert result["num_dups"] == 1
    assert names(pairs.load_saved_view(view_name)) == ["b", "b2"]
    assert run(dedup, pairs).result == deleted(1)
    assert names(pairs) == ["a", "a2", "b", "c", "c2"]


def test_a_new_scope_replaces_the_previous_result(pairs):
    run("find_exact_duplicate_images", pairs)
    assert len(pairs.load_saved_view("exact_dup_view")) == 6
    run("find_exact_duplicate_images", view=pairs.match_tags("left"), view_target="CURRENT_VIEW")
    assert names(pairs.load_saved_view("exact_dup_view")) == ["a", "a2"]
    assert pairs.count_values("is_exact_dup") == {True: 2, None: 4}
