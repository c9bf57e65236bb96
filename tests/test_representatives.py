"""Which sample a deduplicate keeps: first added (exact default), the
search's representative (approximate default), highest resolution, largest
file, or the highest/lowest value of a numeric field; ties to the first added."""

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
from support import copy_file, deleted, files, form, run, write_image


@pytest.fixture
def exact(dataset, tmp_path):
    """Three byte-identical copies (scores 0.2, 0.9, 0.9) and two (None, 5)."""
    a = write_image(tmp_path / "a.png", seed=1)
    b = write_image(tmp_path / "b.png", seed=2)
    paths = [a, copy_file(a, tmp_path / "a2.png"), copy_file(a, tmp_path / "a3.png"),
             b, copy_file(b, tmp_path / "b2.png")]
    scores = [0.2, 0.9, 0.9, None, 5.0]
    dataset.add_samples([fo.Sample(filepath=p, score=s) for p, s in zip(paths, scores)])
    run("find_exact_duplicate_images", dataset)
    return dataset


@pytest.mark.parametrize(
    "params, kept",
    [
        ({}, ["a.png", "b.png"]),  # first added
        (dict(representative="field_max", representative_field="score"), ["a2.png", "b2.png"]),
        (dict(representative="field_min", representative_field="score"), ["a.png", "b2.png"]),
        # byte-identical files: same size, so the tie goes to the first added
        (dict(representative="largest_file"), ["a.png", "b.png"]),
    ],
)
def test_exact_rules(exact, params, kept):
    assert run("deduplicate_exact_duplicates", exact, **params).result == deleted(3)
    assert files(exact) == kept


@pytest.fixture
def sizes(dataset, tmp_path):
    """One scene at three sizes (added small, large, medium), near each other
    in an index built in reverse order of addition; and an unrelated image."""
    shapes = {"small": (32, 24), "large": (96, 72), "medium": (64, 48)}
    paths = [write_image(tmp_path / f"{name}.png", seed=3, size=size) for name, size in shapes.items()]
    paths.append(write_image(tmp_path / "other.png", seed=4))
    dataset.add_samples([fo.Sample(filepath=p, rank=r) for p, r in zip(paths, [2, 1, 1, 0])])
    emb = np.eye(4)[[0, 0, 0, 1]] + np.random.default_rng(0).normal(0, 0.01, (4, 4))
    newest_first = dataset.sort_by("created_at", reverse=True)
    fob.compute_similarity(newest_first, embeddings=emb[::-1], backend="sklearn", brain_key="sim")
    run("find_approximate_duplicate_images", dataset, sim_choices="sim", threshold_value=0.2)
    return dataset


@pytest.mark.parametrize(
    "params, kept",
    [
        ({}, "medium.png"),  # the search walked the index newest first
        (dict(representative="first_added"), "small.png"),
        (dict(representative="highest_resolution"), "large.png"),
        (dict(representative="largest_file"), "large.png"),
        (dict(representative="field_max", representative_field="rank"), "small.png"),
        (dict(representative="field_min", representative_field="rank"), "large.png"),  # tie: first added
    ],
)
def test_approximate_rules(sizes, params, kept):
    assert sizes.exists("metadata").count() == 0
    assert run("deduplicate_approximate_duplicates", sizes, **params).result == deleted(2)
    assert files(sizes) == sorted([kept, "other.png"])
    if params.get("representative") in ("highest_resolution", "largest_file"):
        assert sizes.exists("metadata").count() == 1  # computed for the group, in bulk


def test_form_defaults_and_field_choices(sizes):
    shown = form("deduplicate_approximate_duplicates", sizes)
    rule = shown["representative"]
    assert rule["default"] == "search"
    assert rule["view"]["choices"][0]["label"].startswith("Kept by the search")
    exact_rules = form("deduplicate_exact_duplicates", sizes)
    assert "representative" not in exact_rules  # find exact has not run: the form says so
    field = form("deduplicate_approximate_duplicates", sizes, representative="field_max")
    assert field["representative_field"]["type"]["values"] == ["approx_dup_dist", "rank"]
    assert "representative" not in form("remove_all_approximate_duplicates", sizes)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(representative="newest"), "Invalid enum"),
        (dict(representative="field_max"), "representative_field. Reason: Required"),
        (dict(representative="field_max", representative_field="filepath"), "Invalid enum"),
    ],
)
def test_bad_rule_changes_nothing(exact, params, message):
    with pytest.raises(fo.operators.executor.ExecutionError, match=message):
        run("deduplicate_exact_duplicates", exact, **params)
    assert len(exact) == 5


def test_library_names_the_numeric_fields(exact):
    from image_dedup import cleanup, exact_dups

    request = cleanup.Cleanup(keep_representative=True, rule="field_max", field="filepath")
    with pytest.raises(ValueError, match=r"numeric sample field .* numeric fields: \['score'\]"):
        cleanup.apply_cleanup(exact, exact_dups.WORKFLOW, request)
    assert len(exact) == 5
