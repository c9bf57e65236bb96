"""The exact find's reader pool: one thread on fast local files, more when
each read waits (simulated here by an ``open`` that sleeps, patched into the
module in this test process only); the same hashes, in the same order, and
unreadable files None whatever the pool size."""

import builtins
import logging
import os
import threading
import time

import pytest

import fiftyone as fo
from support import copy_file, write_image

from image_dedup import exact_dups, file_hashes


class SlowOpen:
    """``open`` that sleeps first: ``delay(path)`` seconds. Counts the
    opens and the most that were waiting at once."""

    def __init__(self, delay):
        self.delay, self.opened, self.waiting, self.most_waiting = delay, 0, 0, 0
        self.lock = threading.Lock()

    def __call__(self, path, *args, **kwargs):
        with self.lock:
            self.opened += 1
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
        try:
            time.sleep(self.delay(str(path)))
        finally:
            with self.lock:
                self.waiting -= 1
        return builtins.open(path, *args, **kwargs)


@pytest.fixture
def local_files(tmp_path):
    """64 files of 100 KB (so the probe times 32 real reads), every eighth a
    copy of the one before, a missing file and a directory (unreadable)."""
    paths = []
    for k in range(64):
        path = tmp_path / f"f{k:03d}.bin"
        if k % 8 == 7:
            paths.append(copy_file(paths[-1], path))
        else:
            path.write_bytes(os.urandom(100 * 1024))
            paths.append(str(path))
    os.mkdir(tmp_path / "folder.jpg")
    paths.insert(10, str(tmp_path / "missing.jpg"))
    paths.insert(40, str(tmp_path / "folder.jpg"))
    return paths


@pytest.fixture
def image_dataset(dataset, tmp_path):
    """40 images (every fifth a copy of the one before) and a missing file."""
    paths = []
    for k in range(40):
        path = tmp_path / f"img{k:02d}.png"
        paths.append(copy_file(paths[-1], path) if k % 5 == 4 else write_image(path, seed=k))
    paths.append(str(tmp_path / "gone.png"))
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    return dataset


@pytest.fixture
def small_slices(monkeypatch):
    """Slices of 7 files, 3 files per pool task: many slice and task edges."""
    monkeypatch.setattr(file_hashes, "HASH_BATCH", 7)
    monkeypatch.setattr(file_hashes, "POOL_CHUNK", 3)


def slow_reads(monkeypatch, delay) -> SlowOpen:
    slow = SlowOpen(delay)
    monkeypatch.setattr(file_hashes, "open", slow, raising=False)
    return slow


def expected(paths):
    digests = []
    for path in paths:
        try:
            digests.append(file_hashes.hash_file(path))
        except OSError:
            digests.append(None)
    return digests


def flatten(batches):
    """Paths, digests and records of all slices, checking each slice is the
    next HASH_BATCH paths."""
    paths, digests, records = [], [], []
    for batch_paths, batch_digests, batch_records in batches:
        assert len(batch_paths) == len(batch_digests) == len(batch_records)
        paths += batch_paths
        digests += batch_digests
        records += batch_records
    return paths, digests, records


def readers_logged(caplog) -> list:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Reading files with")]


def test_size_rule_one_reader_unless_reads_wait():
    assert file_hashes.readers_for(32, wall=0.0015, cpu=0.0014) == 1  # warm local disk
    assert file_hashes.readers_for(32, wall=0.006, cpu=0.001) == 1  # preempted by a busy machine
    assert file_hashes.readers_for(3, wall=0.06, cpu=0.0003) == file_hashes.MAX_READERS  # 20 ms a read
    assert file_hashes.readers_for(32, wall=0.032, cpu=0.008) == 4  # 1 ms a read, a quarter CPU
    assert file_hashes.readers_for(0, wall=0.0, cpu=0.0) == 1


def test_automatic_size_stays_one_on_local_files(local_files, caplog):
    caplog.set_level(logging.INFO, logger=file_hashes.logger.name)
    sizes = [file_hashes._probe(local_files)[0] for _ in range(5)]
    assert sizes == [1] * 5
    list(file_hashes.hash_files(local_files))
    assert readers_logged(caplog) == ["Reading files with 1 thread"]


def test_automatic_size_grows_when_reads_wait(local_files, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=file_hashes.logger.name)
    slow = slow_reads(monkeypatch, lambda path: 0.02)
    readers, digests, _ = file_hashes._probe(local_files)
    assert readers > 1 and len(digests) < file_hashes.PROBE_FILES  # the probe stopped early
    assert slow.most_waiting == 1  # the probe reads one file at a time

    slow.most_waiting = 0
    start = time.perf_counter()
    _, digests, _ = flatten(file_hashes.hash_files(local_files))
    seconds = time.perf_counter() - start
    assert digests == expected(local_files)
    assert readers_logged(caplog) == [f"Reading files with {file_hashes.MAX_READERS} threads"]
    assert slow.most_waiting > 16  # reads wait side by side
    assert seconds < 0.5 * 0.02 * len(local_files)  # serial reads would take 1.3 s


@pytest.mark.parametrize("num_readers", [None, 1, 2, 5, 64])
def test_same_digests_in_the_same_order_whatever_the_pool(local_files, small_slices, monkeypatch,
                                                          num_readers):
    # later files answer first, so that a pool finishes them out of order
    rank = {path: k for k, path in enumerate(local_files)}
    slow_reads(monkeypatch, lambda path: 0.004 * (len(local_files) - rank[path]) / len(local_files))
    batches = list(file_hashes.hash_files(local_files, num_readers))
    assert [b[0] for b in batches] == file_hashes.batches_of(local_files)
    paths, digests, records = flatten(batches)
    assert paths == local_files
    assert digests == expected(local_files)
    assert digests[10] is None and digests[40] is None  # missing file, directory
    assert [r is None for r in records] == [d is None for d in digests]
    for path, digest, record in zip(paths, digests, records):
        if digest is not None:
            assert record == file_hashes.stat_record(digest, os.stat(path), path)


def test_probe_reading_a_whole_first_slice(local_files, small_slices):
    """A first slice shorter than the probe: the probe's digests are that
    slice, and the next slices come from the pool."""
    batches = list(file_hashes.hash_files(local_files))
    assert [b[0] for b in batches] == file_hashes.batches_of(local_files)
    assert flatten(batches)[1] == expected(local_files)
    assert list(file_hashes.hash_files(local_files[:3])) == [
        (local_files[:3], expected(local_files[:3]), [
            file_hashes.stat_record(d, os.stat(p), p) for p, d in zip(local_files[:3], expected(local_files[:3]))
        ])
    ]
    assert list(file_hashes.hash_files([])) == []


@pytest.mark.parametrize("num_readers", [None, 1, 4])
def test_find_results_identical_whatever_the_pool(image_dataset, small_slices, monkeypatch, num_readers):
    slow_reads(monkeypatch, lambda path: 0.002)
    result = exact_dups.find_exact_duplicates(image_dataset, num_readers=num_readers)
    paths = image_dataset.values("filepath")
    assert image_dataset.values("filehash") == expected(paths)
    assert result.num_hashed == 41 and result.num_unreadable == 1
    assert result.unreadable_paths == [paths[-1]]
    assert result.num_images_with_exact_dups == 16 and result.num_dups == 8
    stamps = image_dataset.values(exact_dups.STAT_FIELD)
    assert stamps[-1] is None and all(stamps[:-1])

    again = exact_dups.find_exact_duplicates(image_dataset, rehash=True, num_readers=3)
    assert image_dataset.values(exact_dups.STAT_FIELD) == stamps
    assert again.to_dict() == result.to_dict()


def test_compute_filehashes_takes_num_readers(image_dataset, monkeypatch):
    slow = slow_reads(monkeypatch, lambda path: 0.01)
    assert exact_dups.compute_filehashes(image_dataset, num_readers=6) == (41, [image_dataset.values("filepath")[-1]])
    assert 1 < slow.most_waiting <= 6


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4"])
def test_bad_num_readers_changes_nothing(image_dataset, bad):
    with pytest.raises(ValueError, match="num_readers"):
        exact_dups.find_exact_duplicates(image_dataset, num_readers=bad)
    with pytest.raises(ValueError, match="num_readers"):
        exact_dups.compute_filehashes(image_dataset, num_readers=bad)
    assert not image_dataset.has_sample_field(exact_dups.FILEHASH_FIELD)


def test_a_failed_write_stops_the_readers(image_dataset, small_slices, monkeypatch):
    slow = slow_reads(monkeypatch, lambda path: 0.005)
    writes = []
    write = exact_dups._write_hashes

    def fail_second(*args):
        writes.append(1)
        if len(writes) == 2:
            raise RuntimeError("database gone")
        write(*args)

    monkeypatch.setattr(exact_dups, "_write_hashes", fail_second)
    with pytest.raises(RuntimeError, match="database gone"):
        exact_dups.compute_filehashes(image_dataset, num_readers=2)
    opened = slow.opened
    time.sleep(0.1)
    assert slow.opened == opened < 41  # queued reads were dropped, no reader still running
    assert not any(t.name.startswith("dedup-reader") for t in threading.enumerate())
