"""Every destructive operator says what it will do before it runs, and can
tag the would-be-deleted samples for review instead of deleting them."""

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
from support import blocking, copy_file, deleted, files, form, labels, run, write_image

EXACT = ("find_exact_duplicate_images", {}, "exact")
APPROX = ("find_approximate_duplicate_images", dict(sim_choices="sim", threshold_value=0.2), "approximate")


@pytest.fixture
def copies(dataset, tmp_path):
    """Image 0 with two copies, image 1 with one, image 2 alone."""
    paths = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(3)]
    paths += [copy_file(paths[0], tmp_path / "img0b.png"), copy_file(paths[0], tmp_path / "img0c.png"),
              copy_file(paths[1], tmp_path / "img1b.png")]
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    emb = np.eye(3)[[0, 1, 2, 0, 0, 1]] + np.random.default_rng(0).normal(0, 0.01, (6, 3))
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    return dataset


@pytest.mark.parametrize("find, params, kind", [EXACT, APPROX])
@pytest.mark.parametrize("operator, count", [("remove_all", 5), ("deduplicate", 3)])
def test_form_shows_count_and_warning_before_running(copies, find, params, kind, operator, count):
    run(find, copies, **params)
    name = f"{operator}_{kind}_duplicates"
    shown = form(name, copies)
    warning = next(text for text in labels(shown) if text.startswith("This permanently deletes"))
    assert warning.startswith(f"This permanently deletes {count} samples from the dataset")
    if operator == "remove_all":  # says that originals go too, and what deduplicate would do
        assert "originals included" in warning and "Deduplicate (it would delete 3)" in warning
    assert shown["action"]["default"] == "delete" and not blocking(shown)
    tagged = form(name, copies, action="tag", tag="review")
    assert f"This tags {count} samples 'review'" in labels(tagged)
    assert len(copies) == 6


@pytest.mark.parametrize("find, params, kind", [EXACT, APPROX])
def test_tag_twice_then_delete(copies, find, params, kind):
    run(find, copies, **params)
    dedup = f"deduplicate_{kind}_duplicates"
    for _ in range(2):
        assert run(dedup, copies, action="tag").result == {"num_tagged": 3, "tag": "duplicate"}
    assert len(copies) == 6
    assert files(copies.match_tags("duplicate")) == ["img0b.png", "img0c.png", "img1b.png"]
    assert copies.count_sample_tags() == {"duplicate": 3}  # no double tags
    # reviewed: now delete the same samples
    assert run(dedup, copies).result == deleted(3)
    assert files(copies) == ["img0.png", "img1.png", "img2.png"]


def test_remove_all_tags_every_copy_with_a_custom_tag(copies):
    run(*EXACT[:1], copies)
    assert run("remove_all_exact_duplicates", copies, action="tag", tag="dup-review").result[
        "num_tagged"] == 5
    assert copies.count_sample_tags() == {"dup-review": 5}
    assert files(copies.match_tags("dup-review", bool=False)) == ["img2.png"]


@pytest.mark.parametrize("params, message", [(dict(action="archive"), "Invalid enum"),
                                             (dict(action="tag", tag=""), "non-empty")])
def test_bad_action_changes_nothing(copies, params, message):
    run(*EXACT[:1], copies)
    with pytest.raises(fo.operators.executor.ExecutionError, match=message):
        run("deduplicate_exact_duplicates", copies, **params)
    assert len(copies) == 6 and copies.count_sample_tags() == {}


def test_nothing_to_delete_blocks_the_form(dataset, tmp_path):
    dataset.add_samples([fo.Sample(filepath=write_image(tmp_path / f"i{i}.png", seed=i)) for i in range(2)])
    run(*EXACT[:1], dataset)
    shown = form("deduplicate_exact_duplicates", dataset, action="tag")
    assert blocking(shown) == ["nothing"]
