"""An exact find never groups two files that are not byte-identical now:
hashes follow the files they were computed from, foreign hashes are not
trusted, empty files are not copies of each other, and a view that hides
the field (or is not a view of images) neither breaks a find nor leaves a
stray field behind."""

import hashlib
import os

import pytest

import fiftyone as fo
import fiftyone.core.utils as fou
import fiftyone.operators as foo
from fiftyone import ViewField as F
from support import copy_file, files, run, write_image

from image_dedup import exact_dups, file_hashes

FIND = "find_exact_duplicate_images"
DEDUP = "deduplicate_exact_duplicates"
FIND_FIELDS = ("filehash", "filehash_stat", "is_exact_dup")
NOT_IMAGES = "works on images: pick the dataset or a view of its samples"


@pytest.fixture
def copies(dataset, tmp_path):
    """a, b, c distinct; a2 a copy of a, b2 a copy of b; "a" files tagged "left"."""
    paths = {name: write_image(tmp_path / f"{name}.png", seed=k) for k, name in enumerate("abc")}
    paths["a2"] = copy_file(paths["a"], tmp_path / "a2.png")
    paths["b2"] = copy_file(paths["b"], tmp_path / "b2.png")
    dataset.add_samples([fo.Sample(filepath=p, tags=["left"] if name.startswith("a") else [])
                         for name, p in paths.items()])
    return dataset


def path_of(dataset, name: str) -> str:
    return next(p for p in dataset.values("filepath") if p.endswith(f"/{name}.png"))


def grouped(dataset) -> list:
    return files(dataset.load_saved_view("exact_dup_view"))


def overwrite_with_another_image(path: str) -> None:
    write_image(path, seed=99)


def overwrite_same_size_later_mtime(path: str) -> None:
    """Other bytes of the same length, and a later modification time."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    stat = os.stat(path)
    data[-20] ^= 0xFF
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert os.path.getsize(path) == stat.st_size


@pytest.mark.parametrize("change", [overwrite_with_another_image, overwrite_same_size_later_mtime])
def test_a_copy_changed_on_disk_is_hashed_again_and_leaves_its_group(copies, change):
    assert run(FIND, copies).result["num_dups"] == 2
    change(path_of(copies, "a2"))

    result = run(FIND, copies).result
    assert result.get("num_changed") == 1 and result["num_hashed"] == 1
    assert result["num_dups"] == 1
    assert grouped(copies) == ["b.png", "b2.png"]
    assert run(DEDUP, copies).result["num_deleted"] == 1
    assert files(copies) == ["a.png", "a2.png", "b.png", "c.png"]


def test_a_sample_pointed_at_another_file_is_hashed_again(copies, tmp_path):
    run(FIND, copies)
    sample = copies[path_of(copies, "a2")]
    sample.filepath = path_of(copies, "c")  # a2 now shows c: a copy of c, no longer of a
    sample.save()

    result = run(FIND, copies).result
    assert result.get("num_changed") == 1 and result["num_hashed"] == 1
    assert grouped(copies) == ["b.png", "b2.png", "c.png", "c.png"]
    assert copies[sample.id].filehash == file_hashes.hash_file(path_of(copies, "c"))


def test_a_file_deleted_after_a_find_leaves_its_group(copies):
    run(FIND, copies)
    os.remove(path_of(copies, "b2"))
    result = run(FIND, copies).result
    assert result.get("num_changed") == 1 and result["num_unreadable"] == 1
    assert grouped(copies) == ["a.png", "a2.png"]


def test_unchanged_files_are_not_read_again(copies):
    run(FIND, copies)
    result = run(FIND, copies).result
    assert result["num_hashed"] == 0 and result.get("num_changed") == 0
    assert result["num_dups"] == 2


def test_rehash_reads_a_change_that_kept_size_and_time(copies):
    """Like git's stat cache, a rewrite that restores the size and the
    modification time is not seen; ``rehash`` reads every file."""
    run(FIND, copies)
    path = path_of(copies, "a2")
    stat = os.stat(path)
    overwrite_same_size_later_mtime(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run(FIND, copies).result["num_hashed"] == 0

    result = run(FIND, copies, rehash=True).result
    assert result["num_hashed"] == 5 and result.get("num_changed") == 0
    assert grouped(copies) == ["b.png", "b2.png"]


class AppendOnFirstRead:
    """A file opened for hashing that grows while it is read."""

    def __init__(self, f):
        self.f = f
        self.appended = False

    def read(self, size=-1):
        data = self.f.read(size)
        if not self.appended:
            self.appended = True
            with open(self.f.name, "ab") as other:
                other.write(b"appended while read")
        return data

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_file_changed_while_it_is_read_is_hashed_again_next_time(copies, monkeypatch):
    """The file's size and time are taken before it is read: a write during
    the read leaves the stored record out of date, so the next find reads it."""
    target = path_of(copies, "c")

    def growing_open(path, *args, **kwargs):
        f = open(path, *args, **kwargs)
        return AppendOnFirstRead(f) if str(path) == target else f

    size = os.path.getsize(target)
    monkeypatch.setitem(file_hashes.__dict__, "open", growing_open)
    exact_dups.find_exact_duplicates(copies)
    monkeypatch.undo()
    assert os.path.getsize(target) == size + len(b"appended while read")

    result = exact_dups.find_exact_duplicates(copies)
    assert result.num_changed == 1 and result.num_hashed == 1
    assert copies[target].filehash == file_hashes.hash_file(target)


def md5_hex(path: str) -> str:
    return fou.compute_filehash(path, method="md5")


def same_string(path: str) -> str:
    return "x"  # a non-unique string: every sample would look like a copy


def sha256_hex(path: str) -> str:
    """64 hex digits, like this plugin's digests, but another hash."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def own_digest_without_record(path: str) -> str:
    """What this plugin wrote before it recorded each file's size and time."""
    return file_hashes.hash_file(path)


@pytest.mark.parametrize("foreign", [md5_hex, same_string, sha256_hex, own_digest_without_record])
def test_a_filehash_this_plugin_did_not_write_is_hashed_again(copies, foreign):
    paths = copies.values("filepath")
    copies.set_values("filehash", [foreign(p) for p in paths])
    message = exact_dups.foreign_filehash_message(copies)
    assert message and "5 samples have" in message

    result = run(FIND, copies).result
    assert result["num_hashed"] == 5 and result["num_dups"] == 2
    assert copies.values("filehash") == [file_hashes.hash_file(p) for p in paths]
    assert grouped(copies) == ["a.png", "a2.png", "b.png", "b2.png"]
    assert exact_dups.foreign_filehash_message(copies) is None


def test_a_filehash_overwritten_after_a_find_is_not_trusted(copies):
    run(FIND, copies)
    copies.set_values("filehash", [sha256_hex(p) for p in copies.values("filepath")])
    assert "5 samples have" in exact_dups.foreign_filehash_message(copies)
    assert run(FIND, copies).result["num_hashed"] == 5
    assert exact_dups.foreign_filehash_message(copies) is None


def test_foreign_message_for_the_original_plugins_ints_and_for_no_field(copies):
    assert exact_dups.foreign_filehash_message(copies) is None
    copies.set_values("filehash", list(range(5)))
    assert exact_dups.foreign_filehash_message(copies) == exact_dups.FOREIGN_FILEHASH


def test_empty_files_are_not_duplicates_of_each_other(copies, tmp_path):
    empty = [str(tmp_path / f"empty{k}.png") for k in range(3)]
    for path in empty:
        open(path, "wb").close()
    copies.add_samples([fo.Sample(filepath=p) for p in empty])

    result = run(FIND, copies).result
    assert result.get("num_empty") == 3
    assert result["num_dups"] == 2 and result["num_images_with_exact_dups"] == 4
    assert grouped(copies) == ["a.png", "a2.png", "b.png", "b2.png"]
    assert copies.match(F("filepath").is_in(empty)).exists("is_exact_dup").count() == 0
    assert run(DEDUP, copies).result["num_deleted"] == 2
    assert len(copies.match(F("filepath").is_in(empty))) == 3


@pytest.mark.parametrize(
    "hide", [lambda v: v.select_fields(), lambda v: v.exclude_fields(["filehash", "is_exact_dup"])],
    ids=["select_fields", "exclude_fields"],
)
def test_find_on_a_view_that_hides_the_fields_works_in_its_scope(copies, tmp_path, hide):
    copies.add_sample_field("filehash", fo.StringField)  # so that it can be excluded
    copies.add_sample_field("is_exact_dup", fo.BooleanField)
    view = hide(copies.match_tags("left", bool=False))

    result = run(FIND, view=view, view_target="CURRENT_VIEW").result
    assert result["num_hashed"] == 3 and result["num_dups"] == 1
    assert grouped(copies) == ["b.png", "b2.png"]
    assert len(copies.exists("filehash")) == 3  # a and a2 are outside the view

    copies.add_sample(fo.Sample(filepath=copy_file(path_of(copies, "c"), tmp_path / "c2.png")))
    result = run(FIND, view=hide(copies.match_tags("left", bool=False)), view_target="CURRENT_VIEW").result
    assert result["num_hashed"] == 1 and result["num_dups"] == 2
    assert grouped(copies) == ["b.png", "b2.png", "c.png", "c2.png"]


def test_find_on_a_view_that_hides_the_field_adds_it(copies):
    run(FIND, view=copies.select_fields(), view_target="CURRENT_VIEW")
    assert {"filehash", "is_exact_dup"} <= set(copies.get_field_schema())
    assert grouped(copies) == ["a.png", "a2.png", "b.png", "b2.png"]


def test_find_on_patches_is_a_clear_error_and_adds_no_field(copies):
    for sample in copies:
        sample["gt"] = fo.Detections(detections=[fo.Detection(label="x", bounding_box=[0.1, 0.1, 0.5, 0.5])])
        sample.save()
    patches = copies.to_patches("gt")
    with pytest.raises(foo.executor.ExecutionError, match=NOT_IMAGES):
        run(FIND, view=patches, view_target="CURRENT_VIEW")
    with pytest.raises(ValueError, match="patches"):
        exact_dups.find_exact_duplicates(patches)
    assert not set(FIND_FIELDS) & set(copies.get_field_schema())
    assert not set(FIND_FIELDS) & set(patches.get_field_schema())


def test_find_on_clips_is_a_clear_error_and_adds_no_field(dataset, tmp_path):
    video = str(tmp_path / "video.mp4")
    open(video, "wb").close()
    sample = fo.Sample(filepath=video)
    sample["events"] = fo.TemporalDetections(detections=[fo.TemporalDetection(label="e", support=[1, 3])])
    dataset.add_sample(sample)
    with pytest.raises(ValueError, match=NOT_IMAGES):
        exact_dups.find_exact_duplicates(dataset.to_clips("events"))
    assert not set(FIND_FIELDS) & set(dataset.get_field_schema())
