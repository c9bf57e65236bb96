"""A delete never removes a sample that is not (or no longer) a copy: it
honours a tag review, and re-checks the files right before it deletes."""

import os

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
from support import copy_file, deleted, files, form, labels, run, write_image

FIND_EXACT = "find_exact_duplicate_images"
DEDUP_EXACT = "deduplicate_exact_duplicates"
REMOVE_EXACT = "remove_all_exact_duplicates"


@pytest.fixture
def copies(dataset, tmp_path):
    """img0 with copies img0b, img0c; img1 with copy img1b; img2 alone. Scores
    make img0c the highest, for the rule field_max."""
    paths = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(3)]
    paths += [copy_file(paths[0], tmp_path / "img0b.png"), copy_file(paths[0], tmp_path / "img0c.png"),
              copy_file(paths[1], tmp_path / "img1b.png")]
    scores = [0.1, 0.1, 0.1, 0.2, 0.9, 0.1]
    dataset.add_samples([fo.Sample(filepath=p, score=s) for p, s in zip(paths, scores)])
    emb = np.eye(3)[[0, 1, 2, 0, 0, 1]] + np.random.default_rng(0).normal(0, 0.01, (6, 3))
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    run(FIND_EXACT, dataset)
    return dataset


def sample(dataset, name):
    return dataset.match(fo.ViewField("filepath").ends_with("/" + name)).first()


def untag(dataset, name, tag="duplicate"):
    s = sample(dataset, name)
    s.tags.remove(tag)
    s.save()


def test_an_untagged_sample_is_kept_after_a_review(copies):
    run(DEDUP_EXACT, copies, action="tag")
    untag(copies, "img0c.png")
    assert "still tagged 'duplicate'" in " ".join(labels(form(DEDUP_EXACT, copies)))
    assert run(DEDUP_EXACT, copies).result == deleted(2)
    assert files(copies) == ["img0.png", "img0c.png", "img1.png", "img2.png"]


def test_the_reviewed_keeper_survives_a_delete_with_another_rule(copies):
    run(DEDUP_EXACT, copies, action="tag")  # keeps img0, the first added
    result = run(DEDUP_EXACT, copies, representative="field_max", representative_field="score").result
    assert result == deleted(3)  # the tagged img0b, img0c, img1b; not img0
    assert files(copies) == ["img0.png", "img1.png", "img2.png"]


def test_a_group_tagged_whole_keeps_one(copies):
    run(DEDUP_EXACT, copies, action="tag")
    copies.tag_samples("duplicate")  # the user tags every sample, originals too
    assert run(DEDUP_EXACT, copies).result == deleted(3)
    assert files(copies) == ["img0.png", "img1.png", "img2.png"]


def test_a_new_find_ends_the_review(copies):
    run(DEDUP_EXACT, copies, action="tag")
    untag(copies, "img0c.png")
    run(FIND_EXACT, copies)
    assert run(DEDUP_EXACT, copies).result == deleted(3)


def test_a_missing_file_is_not_deleted_and_is_reported(copies):
    gone = sample(copies, "img0b.png").filepath
    os.remove(gone)
    result = run(DEDUP_EXACT, copies).result
    assert result == {"num_deleted": 2, "num_skipped": 1, "skipped_paths": [gone]}
    assert files(copies) == ["img0.png", "img0b.png", "img1.png", "img2.png"]


def test_a_missing_keeper_passes_the_group_to_another_member(copies):
    os.remove(sample(copies, "img0.png").filepath)
    assert run(DEDUP_EXACT, copies).result["num_deleted"] == 2  # img0c and img1b
    assert files(copies) == ["img0.png", "img0b.png", "img1.png", "img2.png"]


def test_remove_all_keeps_a_sample_whose_only_copy_is_gone(copies):
    os.remove(sample(copies, "img1b.png").filepath)
    result = run(REMOVE_EXACT, copies).result
    assert result["num_deleted"] == 3 and result["num_skipped"] == 1  # img0, img0b, img0c
    assert files(copies) == ["img1.png", "img1b.png", "img2.png"]


@pytest.fixture
def fresh(tmp_path):
    """Another dataset: three distinct images in an index "sim"."""
    other = fo.Dataset()
    other.add_samples([fo.Sample(filepath=write_image(tmp_path / f"n{i}.png", seed=20 + i))
                       for i in range(3)])
    fob.compute_similarity(other, embeddings=np.eye(3), backend="sklearn", brain_key="sim")
    yield other
    other.delete()


@pytest.mark.parametrize("find, params, dedup", [
    (FIND_EXACT, {}, DEDUP_EXACT),
    ("find_approximate_duplicate_images", dict(sim_choices="sim", threshold_value=0.2),
     "deduplicate_approximate_duplicates"),
])
def test_samples_merged_from_another_dataset_bring_no_result(copies, fresh, find, params, dedup):
    run(find, copies, **params)  # copies' own result, in its fields
    assert run(find, fresh, **params).result["num_dups"] == 0
    fresh.add_collection(copies)  # brings copies' result fields along
    with pytest.raises(fo.operators.executor.ExecutionError, match="no duplicates to delete"):
        run(dedup, fresh)
    assert len(fresh) == 3 + len(copies)


def test_a_copy_overwritten_after_the_find_is_not_deleted(copies):
    changed = sample(copies, "img0c.png").filepath
    write_image(changed, seed=77)  # now a distinct image, though its stored hash says copy
    result = run(DEDUP_EXACT, copies).result
    assert result == {"num_deleted": 2, "num_skipped": 1, "skipped_paths": [changed]}
    assert files(copies) == ["img0.png", "img0c.png", "img1.png", "img2.png"]


def test_an_overwritten_keeper_passes_the_group_to_a_true_copy(copies):
    write_image(sample(copies, "img1.png").filepath, seed=78)
    result = run(DEDUP_EXACT, copies).result
    assert result["num_deleted"] == 2 and result["num_skipped"] == 1  # img0b, img0c; img1b alone
    assert files(copies) == ["img0.png", "img1.png", "img1b.png", "img2.png"]
