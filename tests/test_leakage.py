"""Leakage checks: both find operators report only target samples that
duplicate a sample of a reference collection (a tag, a saved view, another
dataset); reference samples are never marked, searched or deleted."""

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
from support import copy_file, deleted, files, form, run, write_image

EXACT = "find_exact_duplicate_images"
APPROX = "find_approximate_duplicate_images"


@pytest.fixture
def splits(dataset, tmp_path):
    """train: t0-t3 and t3 copy; test: a byte copy of t0, a near copy of t1
    (other bytes, close in the index) and an unrelated image."""
    train = [write_image(tmp_path / f"t{i}.png", seed=i) for i in range(4)]
    train.append(copy_file(train[3], tmp_path / "t3copy.png"))
    test = [copy_file(train[0], tmp_path / "test_t0.png"),
            write_image(tmp_path / "test_t1.png", seed=11), write_image(tmp_path / "test_x.png", seed=12)]
    dataset.add_samples([fo.Sample(filepath=p, tags=["train"]) for p in train]
                        + [fo.Sample(filepath=p, tags=["test"]) for p in test])
    directions = [0, 1, 2, 3, 3, 0, 1, 4]
    emb = np.eye(5)[directions] + np.random.default_rng(0).normal(0, 0.01, (8, 5))
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    return dataset


def test_exact_leaks_against_a_tag(splits):
    result = run(EXACT, splits, compare_to="tag", reference_tag="test").result
    assert result["num_leaked"] == 1 and result["num_references"] == 3
    leaks = splits.load_saved_view("exact_leak_view")
    assert files(leaks) == ["t0.png"]
    assert splits.match_tags("test").exists("is_exact_leak").count() == 0
    text = repr(leaks._serialize())
    assert not any(i in text for i in splits.values("id"))
    assert "exact_dup_view" not in splits.list_saved_views()  # a leak check is not a dedup


def test_exact_leaks_against_a_saved_view_from_the_current_view(splits):
    splits.save_view("test_split", splits.match_tags("test"))
    result = run(EXACT, view=splits.match_tags("train"), view_target="CURRENT_VIEW",
                 compare_to="saved_view", reference_view="test_split").result
    assert result["num_leaked"] == 1
    assert files(splits.load_saved_view("exact_leak_view")) == ["t0.png"]


def test_exact_leaks_against_another_dataset(splits, tmp_path):
    other = fo.Dataset()
    t2 = splits.match(fo.ViewField("filepath").ends_with("t2.png")).first().filepath
    other.add_sample(fo.Sample(filepath=copy_file(t2, tmp_path / "elsewhere.png")))
    try:
        result = run(EXACT, splits, compare_to="dataset", reference_dataset=other.name).result
        assert result["num_leaked"] == 1 and result["num_references"] == 1
        assert files(splits.load_saved_view("exact_leak_view")) == ["t2.png"]
        assert "is_exact_leak" not in other.get_field_schema()
    finally:
        other.delete()


def test_approximate_leaks_against_a_tag(splits):
    result = run(APPROX, splits, sim_choices="sim", threshold_value=0.2,
                 compare_to="tag", reference_tag="test").result
    assert result == dict(num_leaked=2, num_references=3, threshold=0.2, num_not_indexed=0,
                          saved_view="approx_leak_view", next_step=result["next_step"])
    leaks = splits.load_saved_view("approx_leak_view")
    assert files(leaks) == ["t0.png", "t1.png"]
    by_path = dict(zip(splits.values("id"), splits.values("filepath")))
    refs = {p.rsplit("/", 1)[1]: by_path[r].rsplit("/", 1)[1]
            for p, r in zip(*leaks.values(["filepath", "approx_leak_ref_id"]))}
    assert refs == {"t0.png": "test_t0.png", "t1.png": "test_t1.png"}
    assert all(0 <= d <= 0.2 for d in leaks.values("approx_leak_dist"))
    assert splits.match_tags("test").exists("approx_leak_ref_id").count() == 0
    assert "approx_dup_view" not in splits.list_saved_views()
    assert not any(i in repr(leaks._serialize()) for i in splits.values("id"))


def test_approximate_leaks_against_another_dataset(splits, tmp_path):
    other = fo.Dataset()
    other.add_samples([fo.Sample(filepath=write_image(tmp_path / f"o{i}.png", seed=20 + i)) for i in range(3)])
    emb = np.eye(5)[[2, 4, 4]] + np.random.default_rng(1).normal(0, 0.01, (3, 5))
    fob.compute_similarity(other, embeddings=emb, backend="sklearn", brain_key="sim")
    try:
        train = splits.match_tags("train")
        result = run(APPROX, view=train, view_target="CURRENT_VIEW", sim_choices="sim",
                     threshold_value=0.3, compare_to="dataset", reference_dataset=other.name).result
        assert result["num_leaked"] == 1
        assert files(splits.load_saved_view("approx_leak_view")) == ["t2.png"]
    finally:
        other.delete()


@pytest.mark.parametrize("find, params, dedup", [
    (EXACT, {}, "deduplicate_exact_duplicates"),
    (APPROX, dict(sim_choices="sim", threshold_value=0.2), "deduplicate_approximate_duplicates"),
])
def test_deletes_never_touch_references(splits, find, params, dedup):
    train = splits.match_tags("train")
    run(find, view=train, view_target="CURRENT_VIEW", **params)  # t3 + its copy
    run(find, splits, compare_to="tag", reference_tag="test", **params)
    assert run(dedup, splits).result == deleted(1)
    remove = dedup.replace("deduplicate", "remove_all")
    with pytest.raises(fo.operators.executor.ExecutionError, match="no duplicates to delete"):
        run(remove, splits)
    assert len(splits.match_tags("test")) == 3


@pytest.mark.parametrize("find, params, message", [
    (EXACT, dict(compare_to="tag", reference_tag="nope"), "reference_tag. Reason: Invalid enum"),
    (EXACT, dict(compare_to="saved_view", reference_view="nope"), "reference_view. Reason: Invalid"),
    (EXACT, dict(compare_to="dataset", reference_dataset="nope"), "reference_dataset. Reason: Inv"),
    (EXACT, dict(compare_to="dataset"), "reference_dataset. Reason: Required"),
    (APPROX, dict(sim_choices="sim", compare_to="tag", reference_tag="test", method_choices="fraction"),
     "must be 'threshold' when comparing"),
    (APPROX, dict(sim_choices="sim", view_target="DATASET", compare_to="tag", reference_tag="test",
                  threshold_value=3.0), "between 0 and 2.0"),
])
def test_bad_references_change_nothing(splits, find, params, message):
    with pytest.raises(fo.operators.executor.ExecutionError, match=message):
        run(find, splits, **params)
    schema = splits.get_field_schema()
    assert not {"filehash", "is_exact_leak", "approx_leak_ref_id"} & set(schema)


def test_library_explains_unusable_references(splits):
    from image_dedup import leakage

    splits.save_view("empty", splits.match_tags("nothing"))
    with pytest.raises(ValueError, match="The saved_view 'empty' has no samples"):
        leakage.reference_collection(splits, "saved_view", "empty")
    with pytest.raises(ValueError, match="No dataset named 'nope'"):
        leakage.reference_collection(splits, "dataset", "nope")


def test_every_target_sample_is_a_reference(splits):
    with pytest.raises(fo.operators.executor.ExecutionError, match="no samples outside the references"):
        run(EXACT, view=splits.match_tags("test"), view_target="CURRENT_VIEW",
            compare_to="tag", reference_tag="test")


def test_form_offers_the_tags_and_blocks_an_unknown_name(splits):
    shown = form(EXACT, splits, compare_to="tag")
    assert shown["reference_tag"]["type"]["values"] == ["test", "train"]
    unknown = form(EXACT, splits, compare_to="saved_view", reference_view="nope")
    assert unknown["bad_reference"]["invalid"] is True


@pytest.mark.parametrize("find, params, view", [
    (EXACT, {}, "exact_leak_view"),
    (APPROX, dict(sim_choices="sim", threshold_value=0.2), "approx_leak_view"),
])
def test_leak_marks_merged_from_another_dataset_are_not_this_datasets(splits, tmp_path, find, params,
                                                                     view):
    assert run(find, splits, compare_to="tag", reference_tag="test", **params).result["num_leaked"]
    other = fo.Dataset()
    try:
        other.add_samples([fo.Sample(filepath=write_image(tmp_path / f"o{i}.png", seed=40 + i),
                                     tags=["train" if i else "test"]) for i in range(3)])
        fob.compute_similarity(other, embeddings=np.eye(3), backend="sklearn", brain_key="sim")
        assert run(find, other, compare_to="tag", reference_tag="test", **params).result["num_leaked"] == 0
        other.add_collection(splits)  # brings the leak marks of splits' own check
        assert len(other.load_saved_view(view)) == 0
    finally:
        other.delete()
