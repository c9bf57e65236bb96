"""The four exact-duplicate operators, run through execute_operator as a user would."""

import gc
import os
import subprocess
import sys

import pytest

import fiftyone as fo
import fiftyone.core.utils as fou
import fiftyone.operators as foo
from database import PLUGIN
from support import copy_file, deleted, form, labels, run, write_image

from image_dedup import exact_dups, file_hashes

FIND = "find_exact_duplicate_images"
DISPLAY = "display_exact_duplicate_groups"
REMOVE = "remove_all_exact_duplicates"
DEDUP = "deduplicate_exact_duplicates"


@pytest.fixture
def images(tmp_path):
    """Five distinct images; image 0 has two byte-identical copies, image 1 one."""
    paths = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(5)]
    paths.append(copy_file(paths[0], tmp_path / "copy0a.png"))
    paths.append(copy_file(paths[0], tmp_path / "copy0b.png"))
    paths.append(copy_file(paths[1], tmp_path / "copy1.png"))
    return paths


@pytest.fixture
def dup_dataset(dataset, images):
    dataset.add_samples([fo.Sample(filepath=p) for p in images])
    return dataset


def test_all_operators_and_the_panel_are_registered():
    uris = {op.uri for op in foo.list_operators() if op.plugin_name == PLUGIN}
    names = {u.rsplit("/", 1)[1] for u in uris}
    assert names == {
        "find_exact_duplicate_images", "display_exact_duplicate_groups",
        "remove_all_exact_duplicates", "deduplicate_exact_duplicates",
        "find_approximate_duplicate_images", "display_approximate_duplicate_groups",
        "remove_all_approximate_duplicates", "deduplicate_approximate_duplicates",
        "open_review_panel", "review_duplicates",
    }
    labels = {foo.get_operator(u).config.label for u in uris}
    assert "Dedup: Find exact duplicates" in labels
    assert "Dedup: Deduplicate approximate duplicates" in labels


def test_find_reports_groups_and_saves_view(dup_dataset, images):
    result = run(FIND, dup_dataset).result
    assert result["num_images_with_exact_dups"] == 5  # img0 x3, img1 x2
    assert result["num_dups"] == 3
    assert result["num_hashed"] == 8 and result["num_unreadable"] == 0

    view = dup_dataset.load_saved_view("exact_dup_view")
    hashes = view.values("filehash")
    assert hashes == sorted(hashes) and len(set(hashes)) == 2
    assert set(view.values("filepath")) == {images[i] for i in (0, 1, 5, 6, 7)}
    assert file_hashes.hash_file(images[0]) == file_hashes.hash_file(images[5])


def test_saved_view_definition_has_no_ids(dup_dataset):
    run(FIND, dup_dataset)
    stages = dup_dataset.load_saved_view("exact_dup_view")._serialize()
    text = repr(stages)
    assert all(sample_id not in text for sample_id in dup_dataset.values("id"))
    assert all(h not in text for h in dup_dataset.values("filehash"))


def test_hash_is_identical_in_two_processes(images):
    code = "import blake3,sys;print(blake3.blake3(open(sys.argv[1],'rb').read()).hexdigest())"
    plugin_code = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "import database; from image_dedup import file_hashes;"
        "print(file_hashes.hash_file(sys.argv[1]))"
    )
    tests_dir = os.path.dirname(__file__)
    outputs = {
        subprocess.run(
            [sys.executable, "-c", plugin_code, images[2], tests_dir],
            capture_output=True, text=True, check=True, env=dict(os.environ, PYTHONHASHSEED=seed),
        ).stdout.split()[-1]
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    reference = subprocess.run(
        [sys.executable, "-c", code, images[2]], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert outputs == {reference}


def test_find_replaces_the_original_plugins_salted_filehash(dup_dataset, images):
    dup_dataset.set_values("filehash", [fou.compute_filehash(p) for p in images])  # as it did
    assert isinstance(dup_dataset.get_field("filehash"), fo.IntField)
    assert exact_dups.FOREIGN_FILEHASH in labels(form(FIND, dup_dataset))

    result = run(FIND, dup_dataset).result
    assert result["num_hashed"] == 8 and result["num_images_with_exact_dups"] == 5
    assert dup_dataset.values("filehash") == [file_hashes.hash_file(p) for p in images]
    assert exact_dups.FOREIGN_FILEHASH not in labels(form(FIND, dup_dataset))


def test_a_file_read_in_many_chunks_has_the_same_hash(images):
    with open(images[2], "rb") as f:
        size = len(f.read())
    assert size > 3000
    assert file_hashes.hash_file(images[2], chunk_size=1000) == file_hashes.hash_file(images[2])


def test_an_interrupted_hashing_keeps_what_it_wrote_and_resumes(dup_dataset, monkeypatch):
    monkeypatch.setattr(file_hashes, "HASH_BATCH", 3)

    def interrupt(fraction, message):
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        exact_dups.compute_filehashes(dup_dataset, progress=interrupt)
    assert gc.get_freeze_count() == 0  # the collector has every object back
    assert len(dup_dataset.exists("filehash")) == 3

    assert exact_dups.compute_filehashes(dup_dataset) == (5, [])
    assert gc.get_freeze_count() == 0
    assert len(dup_dataset.exists("filehash")) == 8


def test_hashing_leaves_a_freeze_made_by_someone_else(dup_dataset):
    gc.freeze()  # as a server does before it forks workers
    try:
        assert exact_dups.compute_filehashes(dup_dataset) == (8, [])
        assert gc.get_freeze_count() > 0  # still frozen (less what was freed meanwhile)
    finally:
        gc.unfreeze()


def test_find_is_incremental(dup_dataset, tmp_path, images):
    run(FIND, dup_dataset)
    stamp = dup_dataset.values("filehash")
    new = dup_dataset.add_sample(fo.Sample(filepath=copy_file(images[2], tmp_path / "copy2.png")))
    result = run(FIND, dup_dataset).result
    assert result["num_hashed"] == 1 and result["num_changed"] == 0
    assert dup_dataset.values("filehash")[:8] == stamp
    assert result["num_images_with_exact_dups"] == 7
    assert new in dup_dataset.load_saved_view("exact_dup_view").values("id")

    write_image(images[3], seed=99)  # a file rewritten on disk is read again
    result = run(FIND, dup_dataset).result
    assert result["num_hashed"] == 1 and result["num_changed"] == 1
    assert dup_dataset[images[3]].filehash == file_hashes.hash_file(images[3]) != stamp[3]

    result = run(FIND, dup_dataset, rehash=True).result
    assert result["num_hashed"] == 9 and result["num_changed"] == 0


def test_unreadable_files_are_skipped_and_listed(dup_dataset, tmp_path, images):
    missing = str(tmp_path / "missing.png")
    directory = str(tmp_path / "folder.png")  # exists, but can't be read as a file
    os.mkdir(directory)
    dup_dataset.add_samples([fo.Sample(filepath=missing), fo.Sample(filepath=directory)])
    result = run(FIND, dup_dataset).result
    assert result["num_unreadable"] == 2
    assert set(result["unreadable_paths"]) == {missing, directory}
    assert result["num_images_with_exact_dups"] == 5
    assert dup_dataset.count_values("filehash")[None] == 2


def test_view_follows_added_and_deleted_samples(dup_dataset, images, tmp_path):
    run(FIND, dup_dataset)
    copies = dup_dataset.load_saved_view("exact_dup_view")
    before = len(copies)
    dup_dataset.delete_samples(dup_dataset.match(fo.ViewField("filepath") == images[7]))
    assert len(copies) == before - 1  # a deleted copy leaves the view
    dup_dataset.add_sample(fo.Sample(filepath=copy_file(images[4], tmp_path / "copy4.png")))
    result = run(FIND, dup_dataset).result
    assert result == dict(result, num_images_with_exact_dups=5, num_dups=3)
    view = dup_dataset.load_saved_view("exact_dup_view")
    assert images[1] not in view.values("filepath") and images[4] in view.values("filepath")
    assert len(copies) == 0  # a view of the replaced result shows nothing of the new one


def test_display_sets_grouped_view(dup_dataset):
    run(FIND, dup_dataset)
    result = run(DISPLAY, dup_dataset)
    requests = result.executor.to_json()["requests"]
    assert [r["operator_uri"] for r in requests] == ["set_view", "notify"]  # the notice names the review panel
    shown = fo.DatasetView._build(dup_dataset, requests[0]["params"]["view"])
    assert shown._is_dynamic_groups
    assert sorted(len(g) for g in shown.iter_dynamic_groups()) == [2, 3]


def test_remove_all_deletes_every_copy(dup_dataset, images):
    run(FIND, dup_dataset)
    result = run(REMOVE, dup_dataset)
    assert result.result == deleted(5)
    assert sorted(dup_dataset.values("filepath")) == sorted(images[2:5])
    assert len(dup_dataset.load_saved_view("exact_dup_view")) == 0


def test_deduplicate_keeps_first_added(dup_dataset, images):
    run(FIND, dup_dataset)
    assert run(DEDUP, dup_dataset).result == deleted(3)
    assert sorted(dup_dataset.values("filepath")) == sorted(images[:5])
    assert len(dup_dataset.load_saved_view("exact_dup_view")) == 0
    assert run(FIND, dup_dataset).result["num_dups"] == 0


def test_remove_never_deletes_a_sample_whose_copies_are_gone(dup_dataset, images):
    run(FIND, dup_dataset)
    dup_dataset.delete_samples(dup_dataset.match(fo.ViewField("filepath") == images[7]))
    assert run(REMOVE, dup_dataset).result == deleted(3)
    assert images[1] in dup_dataset.values("filepath")


@pytest.mark.parametrize("uri", [REMOVE, DEDUP])
def test_before_find_is_a_clear_error(dup_dataset, uri):
    with pytest.raises(foo.executor.ExecutionError, match="run 'Dedup: Find exact duplicates' first"):
        run(uri, dup_dataset)
    assert len(dup_dataset) == 8 and dup_dataset.list_saved_views() == []


def test_find_on_empty_dataset_is_a_clear_error(dataset):
    with pytest.raises(foo.executor.ExecutionError, match="no samples"):
        run(FIND, dataset)
    assert "filehash" not in dataset.get_field_schema()


def test_find_without_blake3_says_what_to_install_and_changes_nothing(dup_dataset):
    code = (
        "import sys; sys.modules['blake3'] = None; sys.path.insert(0, sys.argv[1]);"
        "import database, fiftyone as fo; from support import blocking, form, run;"
        "dataset = fo.load_dataset(sys.argv[2]);"
        f"print('blocked:', blocking(form('{FIND}', dataset)));"
        f"run('{FIND}', dataset)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, os.path.dirname(__file__), dup_dataset.name],
        capture_output=True, text=True,
    )
    assert done.returncode != 0
    assert "blocked: ['missing_blake3']" in done.stdout
    assert f"`fiftyone plugins requirements {PLUGIN} --install`" in done.stderr
    dup_dataset.reload()
    assert "filehash" not in dup_dataset.get_field_schema()


def test_nothing_to_delete_is_a_clear_error(dataset, images):
    dataset.add_samples([fo.Sample(filepath=p) for p in images[:5]])
    run(FIND, dataset)
    with pytest.raises(foo.executor.ExecutionError, match="no duplicates to delete"):
        run(DEDUP, dataset)
    shown = run(DISPLAY, dataset)  # a one-line notice, not an error dialog
    assert shown.result["num_groups"] == 0 and "nothing to display" in shown.result["message"]
    assert [r["operator_uri"] for r in shown.executor.to_json()["requests"]] == ["notify"]
    assert len(dataset) == 5


def test_display_before_find_says_which_find_to_run(dup_dataset):
    shown = run(DISPLAY, dup_dataset).result
    assert shown["num_groups"] == 0 and "run 'Dedup: Find exact duplicates' first" in shown["message"]
    assert len(dup_dataset) == 8 and dup_dataset.list_saved_views() == []
