"""Exact duplicates: a stable content hash of every media file, stored in the
``filehash`` field, and the saved view of samples whose hash occurs twice
(``exact_dup_view``, marker ``is_exact_dup``). :mod:`leakage` uses the same
hashes to compare against a reference collection.

A sample's hash is the BLAKE3 digest of its file's bytes (a cryptographic
hash, 2.5x faster than sha256 here), so it is the same in every process and on
every machine (unlike ``fiftyone.core.utils.compute_filehash``
with its default method, which uses Python's salted ``hash()``).

Next to each hash, ``filehash_stat`` records what it was computed from (like
git's stat cache): the file path, size and modification time, and the start
of the digest it belongs to. A find hashes again every sample whose record no
longer matches its file, and every hash this plugin did not write.
"""

import gc
import logging
import math
import os
import re
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator, NamedTuple, Optional

from bson import ObjectId
from pymongo import UpdateOne

import fiftyone as fo
import fiftyone.core.stages as fos
from fiftyone import ViewField as F

from . import review_marks
from .progress import Progress
from .results import (GroupCounts, Result, SampleCollection, Workflow, replace_fields, require_samples,
                      new_run, root_dataset)

try:
    from blake3 import blake3
except ImportError:  # the plugin still loads; a find says what to install
    blake3 = None

logger = logging.getLogger(__name__)

FILEHASH_FIELD = "filehash"
STAT_FIELD = "filehash_stat"
MARKER_FIELD = "is_exact_dup"
EXACT_DUP_VIEW = "exact_dup_view"
RUN_FIELD = "exact_dup_run"
FIND_LABEL = "Dedup: Find exact duplicates"
HASH_BATCH = 2000
CHUNK_SIZE = 1 << 22
RECORD_TIE = 16  # hex digits of a digest that start its stat record
EMPTY_DIGEST = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # BLAKE3 of no bytes
_OWN_DIGEST = "[0-9a-f]{64}"  # a BLAKE3 hex digest
_OWN_DIGEST_RE = re.compile(_OWN_DIGEST)
MAX_LISTED_FAILURES = 5
MAX_READERS = 32  # reader threads an automatic choice can reach
POOL_CHUNK = 8  # files per task when several threads read
PROBE_FILES = 32  # the automatic choice times up to this many first reads,
PROBE_SECONDS = 0.05  # stopping after this long
WAIT_SHARE = 0.5  # and adds readers if waiting took at least this share of the time
MIN_WAIT_PER_FILE = 0.0005  # and at least this long per file (s)
MISSING_BLAKE3 = (
    "Hashing files needs the blake3 package: run "
    "`fiftyone plugins requirements @fo-dedup/image-dedup --install` (or `pip install blake3`)"
)

FOREIGN_FILEHASH = (
    "The existing filehash field does not hold this plugin's BLAKE3 hex digests (the "
    "original plugin stored Python's salted hash(), which differs between processes): "
    "a find replaces it and hashes every file"
)
FOREIGN_STRINGS = (
    "{} a filehash this plugin did not write (another hash method, or written "
    "before this plugin recorded each file's size and time): a find hashes them again"
)
NOT_IMAGES = "An exact find works on images: pick the dataset or a view of its samples, not a {} view"

BY_HASH = [(FILEHASH_FIELD, 1), ("created_at", 1), ("_id", 1)]  # groups together, first added first


@dataclass
class ExactFindResult(Result):
    """What a find run did and found.

    Attributes:
        num_images_with_exact_dups: samples in groups
        num_dups: what a deduplicate would remove (all but one per group)
        num_empty: empty (zero-byte) files, never grouped
        num_hashed: files read in this run
        num_changed: of those, files whose path, size or modification time
            changed since they were hashed
        num_unreadable: files that could not be read (left ungrouped)
        unreadable_paths: the first few of them
        num_kept_apart: pairs of copies the review marked "not duplicates"
    """

    num_images_with_exact_dups: int
    num_dups: int
    num_empty: int
    num_hashed: int
    num_changed: int
    num_unreadable: int
    unreadable_paths: list
    num_kept_apart: int


class Hashed(NamedTuple):
    """What a hashing run did: how many files it read, and the paths of
    those it could not read."""

    num_hashed: int
    unreadable_paths: list


class HashPlan(NamedTuple):
    """The samples a hashing run reads, and how many of them are read again
    because their file changed since it was hashed."""

    ids: list
    paths: list
    num_changed: int


class ExactCounts(NamedTuple):
    """The groups a find marked, and what it left out of them: empty files,
    and pairs the review kept apart."""

    groups: GroupCounts
    num_empty: int
    num_kept_apart: int


def _require_blake3() -> None:
    if blake3 is None:
        raise ImportError(MISSING_BLAKE3)


def _digest(f, chunk_size: int) -> str:
    _require_blake3()
    digest = blake3()
    while chunk := f.read(chunk_size):
        digest.update(chunk)
    return digest.hexdigest()


def hash_file(path: str, chunk_size: int = CHUNK_SIZE) -> str:
    """Returns the hex BLAKE3 digest of a file's bytes, read unbuffered in
    chunks (one read for most images; bounded memory for large videos).

    Args:
        path: a local file path
        chunk_size: bytes per read

    Returns:
        64 lowercase hex digits
    """
    with open(path, "rb", buffering=0) as f:
        return _digest(f, chunk_size)


def stat_record(digest: str, stat: os.stat_result, path: str) -> str:
    """What a hash was computed from, as stored in ``filehash_stat``.

    Args:
        digest: the file's hex digest
        stat: the file's ``os.stat`` (or ``os.fstat``) result
        path: the sample's ``filepath``

    Returns:
        ``"<first RECORD_TIE digits of digest>:<size>:<mtime ns>:<path>"``
    """
    return f"{digest[:RECORD_TIE]}:{stat.st_size}:{stat.st_mtime_ns}:{path}"


def _hash_with_record(path: str) -> tuple:
    """``(digest, stat record)`` of a file, ``(None, None)`` if it can't be
    read. The stat is taken before the read, so a write during the read makes
    the record out of date and the next find reads the file again."""
    try:
        with open(path, "rb", buffering=0) as f:
            stat = os.fstat(f.fileno())
            digest = _digest(f, CHUNK_SIZE)
    except OSError:
        return None, None
    return digest, stat_record(digest, stat, path)


def _hash_batch(paths: list) -> tuple:
    digests, records = zip(*map(_hash_with_record, paths))
    return paths, list(digests), list(records)


def _slices(items: list) -> list:
    return [items[start : start + HASH_BATCH] for start in range(0, len(items), HASH_BATCH)]


def readers_for(num_files: int, wall: float, cpu: float) -> int:
    """The reader pool size for files whose reads took ``wall`` seconds in
    all, ``cpu`` of them on the reading thread's CPU (the rest is waiting:
    on a disk, a network filesystem or a cloud mount).

    One reader while the wait per file is short (a warm local disk: more
    threads only contend for the GIL and the page cache); else about as many
    readers as there are reads waiting while one file is hashed (``wall /
    cpu``), up to ``MAX_READERS``.

    Args:
        num_files: how many files were read
        wall: their read time, in seconds
        cpu: the reading thread's CPU time over the same reads

    Returns:
        1 to ``MAX_READERS``
    """
    wait = max(0.0, wall - cpu)
    if not num_files or wait < WAIT_SHARE * wall or wait / num_files < MIN_WAIT_PER_FILE:
        return 1
    return max(2, min(MAX_READERS, math.ceil(wall / max(cpu, 1e-9))))


def _probe(paths: list) -> tuple:
    """Hashes the first files one by one (at most ``PROBE_FILES``, until
    ``PROBE_SECONDS`` have passed), timing the wall clock against this
    thread's CPU clock.

    Returns:
        ``(readers_for(...), digests, records)`` of the files read
    """
    digests, records = [], []
    start, start_cpu = time.perf_counter(), time.thread_time()
    for path in paths[:PROBE_FILES]:
        digest, record = _hash_with_record(path)
        digests.append(digest)
        records.append(record)
        if time.perf_counter() - start >= PROBE_SECONDS:
            break
    wall, cpu = time.perf_counter() - start, time.thread_time() - start_cpu
    readers = readers_for(len(digests), wall, cpu)
    logger.debug("%d files read in %.4f s (%.4f s CPU): %d readers", len(digests), wall, cpu, readers)
    return readers, digests, records


def _one_reader(slices: list) -> Iterator[tuple]:
    """Each slice read by one background thread while the caller stores the
    previous one (BLAKE3 releases the GIL)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield from pool.map(_hash_batch, slices)


def _gather(paths: list, parts: list) -> tuple:
    digests, records = [], []
    for part in parts:
        _, part_digests, part_records = part.result()
        digests += part_digests
        records += part_records
    return paths, digests, records


def _many_readers(slices: list, num_readers: int) -> Iterator[tuple]:
    """Each slice read by ``num_readers`` threads, up to ``POOL_CHUNK`` files
    per task, while the caller stores the previous slice: the next slice is
    queued before a slice is awaited, so the readers never run dry, and no
    more than two slices are queued at a time."""
    pool = ThreadPoolExecutor(max_workers=num_readers, thread_name_prefix="dedup-reader")
    queued = deque()
    try:
        for paths in slices:
            size = max(1, min(POOL_CHUNK, len(paths) // num_readers))  # every reader busy
            chunks = [paths[k : k + size] for k in range(0, len(paths), size)]
            queued.append((paths, [pool.submit(_hash_batch, c) for c in chunks]))
            if len(queued) > 1:
                yield _gather(*queued.popleft())
        while queued:
            yield _gather(*queued.popleft())
    finally:  # closed early (a failed write): drop what is queued
        pool.shutdown(wait=True, cancel_futures=True)


def _check_readers(num_readers: Optional[int]) -> None:
    if num_readers is not None and (type(num_readers) is not int or num_readers < 1):
        raise ValueError(f"num_readers must be a whole number of at least 1, or None; got {num_readers!r}")


def hash_files(paths: list, num_readers: Optional[int] = None) -> Iterator[tuple]:
    """Hashes files slice by slice in background threads, so that the caller
    can store a slice while the next one is read.

    The reader pool is sized for the storage: one thread on a warm local
    disk, where a read costs CPU rather than waiting (a second reader only
    competes with the database writes for the cores), up to
    ``MAX_READERS`` where each read mostly waits (network filesystems,
    cloud-mounted buckets, a cold disk). With ``num_readers`` None, the
    first files are read one by one and timed (:func:`readers_for`).

    Args:
        paths: local file paths
        num_readers: threads that read files, or None to choose

    Returns:
        an iterator over ``(slice, digests, records)`` for successive
        ``HASH_BATCH`` slices of ``paths``: the hex digest and the
        :func:`stat_record` of each path, None where the file can't be read,
        in the order of ``paths`` whatever the pool size

    Raises:
        ValueError: if ``num_readers`` is less than 1
    """
    _check_readers(num_readers)
    slices, digests, records = _slices(paths), [], []
    if num_readers is None and paths:
        num_readers, digests, records = _probe(slices[0])
        logger.info("Reading files with %d thread%s", num_readers, "" if num_readers == 1 else "s")
    rest = [s[len(digests) :] if k == 0 else s for k, s in enumerate(slices)]
    if rest and not rest[0]:  # the probe read the whole first slice
        yield slices[0], digests, records
        rest, slices, digests, records = rest[1:], slices[1:], [], []
    reading = _one_reader(rest) if num_readers in (None, 1) else _many_readers(rest, num_readers)
    with closing(reading):
        for k, (_, batch_digests, batch_records) in enumerate(reading):
            if k == 0:
                batch_digests, batch_records = digests + batch_digests, records + batch_records
            yield slices[k], batch_digests, batch_records


@contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Keeps Python's garbage collector to the objects made inside the block.

    The write buffers of each slice live long enough to reach the oldest
    generation, so a full collection runs about once per 20,000 samples and,
    over FiftyOne's ~300,000 objects, stalls both threads for ~150 ms (a third
    of the hashing time). ``gc.unfreeze`` gives the older objects back to the
    collector afterwards. A freeze made by someone else (a server before it
    forks, or another hashing) is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def has_foreign_filehash(dataset: fo.Dataset) -> bool:
    """Whether ``dataset`` has a ``filehash`` field of another type than this
    plugin's strings (the original plugin's ints).

    Args:
        dataset: a dataset

    Returns:
        True if a find will replace the field
    """
    field = dataset.get_field(FILEHASH_FIELD)
    return field is not None and not isinstance(field, fo.StringField)


def _own_hash_expr() -> fo.core.expressions.ViewExpression:
    """True on samples whose ``filehash`` this plugin wrote: a BLAKE3 hex
    digest whose stat record starts with it (see :func:`_is_own`)."""
    digest, record = F(FILEHASH_FIELD), F(STAT_FIELD)
    return digest.re_match(f"^{_OWN_DIGEST}$") & (
        record.substr(count=RECORD_TIE + 1) == digest.substr(count=RECORD_TIE).concat(":")
    )


def _is_own(digest, record) -> bool:
    """Whether a sample's ``filehash`` and ``filehash_stat`` are a digest this
    plugin wrote and its record (:func:`_own_hash_expr` in Python)."""
    return (isinstance(digest, str) and _OWN_DIGEST_RE.fullmatch(digest) is not None
            and isinstance(record, str) and record.startswith(f"{digest[:RECORD_TIE]}:"))


def foreign_filehash_message(dataset: fo.Dataset) -> Optional[str]:
    """What a find will do about ``filehash`` values this plugin did not
    write, for the find form: one count in the database, no scan in Python.

    Args:
        dataset: a dataset

    Returns:
        a message, or None if every ``filehash`` (if any) is this plugin's
    """
    if has_foreign_filehash(dataset):
        return FOREIGN_FILEHASH
    if not dataset.has_sample_field(FILEHASH_FIELD):
        return None
    count = dataset.exists(FILEHASH_FIELD).match(~_own_hash_expr()).count()
    if not count:
        return None
    return FOREIGN_STRINGS.format("1 sample has" if count == 1 else f"{count} samples have")


def hashable_samples(samples: SampleCollection) -> SampleCollection:
    """``samples`` with every field in sight: a view's ``select_fields`` and
    ``exclude_fields`` stages are left out (the other stages kept, so the
    same samples), so that hashes can be read and written through it.

    Args:
        samples: a dataset or a view of its samples

    Returns:
        ``samples``, or the same view without its field selection

    Raises:
        ValueError: on a patches, frames or clips view, whose samples are
            not the dataset's images
    """
    if samples._is_generated:
        kind = "patches" if samples._is_patches else "frames" if samples._is_frames else "clips"
        raise ValueError(NOT_IMAGES.format(kind))
    selection = (fos.SelectFields, fos.ExcludeFields)
    if isinstance(samples, fo.Dataset) or not any(isinstance(s, selection) for s in samples._stages):
        return samples
    view = samples._base_view
    for stage in samples._stages:
        if not isinstance(stage, selection):
            view = view.add_stage(stage)
    return view


def _prepare_fields(dataset: fo.Dataset) -> None:
    """Adds the string fields ``filehash`` and ``filehash_stat``, replacing
    a field of another type."""
    for field in (FILEHASH_FIELD, STAT_FIELD):
        existing = dataset.get_field(field)
        if existing is not None and not isinstance(existing, fo.StringField):
            dataset.delete_sample_field(field)
            existing = None
        if existing is None:
            dataset.add_sample_field(field, fo.StringField)


def _is_fresh(path: str, digest, record) -> Optional[bool]:
    """True if the sample's hash is this plugin's and its file is unchanged,
    False if its file changed since it was hashed, None if it has no hash of
    this plugin's."""
    if not _is_own(digest, record):
        return None
    try:
        return stat_record(digest, os.stat(path), path) == record
    except OSError:
        return False


def plan_hashing(samples: SampleCollection, rehash: bool = False) -> HashPlan:
    """Which samples a hashing run reads: those without a hash, with one this
    plugin did not write, or whose file's path, size or modification time
    changed since it was hashed (all of them if ``rehash``). One ``values()``
    read and one ``os.stat`` per hashed file.

    Args:
        samples: a dataset or view with the ``filehash`` and
            ``filehash_stat`` fields
        rehash: read every file

    Returns:
        a :class:`HashPlan`
    """
    ids, paths, digests, records = samples.values(["id", "filepath", FILEHASH_FIELD, STAT_FIELD])
    fresh = [_is_fresh(*row) for row in zip(paths, digests, records)]
    todo = [k for k, state in enumerate(fresh) if rehash or not state]
    num_changed = fresh.count(False)
    if num_changed:
        logger.info("%d files changed since they were hashed: hashing them again", num_changed)
    return HashPlan([ids[k] for k in todo], [paths[k] for k in todo], num_changed)


def _write_hashes(dataset: fo.Dataset, ids: list, digests: list, records: list) -> None:
    """Sets ``filehash`` and ``filehash_stat`` of the samples ``ids`` in one
    bulk write, as ``set_values`` does for one field: a ``set_values`` per
    field doubled the database's work (measured: mongod CPU 0.27 s -> 0.53 s
    per 10,000 samples; one write: 0.28 s)."""
    now = datetime.now(timezone.utc)
    ops = [UpdateOne({"_id": ObjectId(i)},
                     {"$set": {FILEHASH_FIELD: d, STAT_FIELD: r, "last_modified_at": now}})
           for i, d, r in zip(ids, digests, records)]
    dataset._bulk_write(ops, ids=ids)


def _store_hashes(dataset: fo.Dataset, plan: HashPlan, progress: Progress,
                  num_readers: Optional[int] = None) -> Hashed:
    """Hashes the planned files and stores each slice's hashes and stat
    records (one bulk write) while the next slice is read."""
    unreadable, done, total = [], 0, len(plan.ids)
    with closing(hash_files(plan.paths, num_readers)) as hashed:  # a failed write stops the hashing too
        for batch_ids, (batch_paths, digests, records) in zip(_slices(plan.ids), hashed):
            _write_hashes(dataset, batch_ids, digests, records)
            unreadable += [p for p, h in zip(batch_paths, digests) if h is None]
            done += len(digests)
            if progress:
                progress(done / total, f"hashed {done}/{total} files")
    logger.info("Hashed %d files (%d unreadable)", total, len(unreadable))
    return Hashed(total, unreadable)


def _hash(samples: SampleCollection, rehash: bool, progress: Progress,
          num_readers: Optional[int] = None) -> tuple:
    """:func:`compute_filehashes`, returning its :class:`HashPlan` too."""
    _require_blake3()
    samples = hashable_samples(samples)
    dataset = root_dataset(samples)
    _prepare_fields(dataset)
    with _older_objects_frozen():
        plan = plan_hashing(samples, rehash)
        return plan, _store_hashes(dataset, plan, progress, num_readers)


def compute_filehashes(
    samples: SampleCollection,
    rehash: bool = False,
    progress: Progress = None,
    num_readers: Optional[int] = None,
) -> Hashed:
    """Stores the BLAKE3 hash of each sample's file in ``filehash`` and what
    it was computed from in ``filehash_stat``: one bulk write per slice of
    both, while the next slice is hashed.

    Reads the samples :func:`plan_hashing` picks: a sample whose hash is
    this plugin's and whose file is unchanged is not read again unless
    ``rehash``. Unreadable files are left with ``filehash`` None. A
    ``filehash`` field of another type (see :func:`has_foreign_filehash`)
    is replaced.

    Args:
        samples: a dataset or a view of its samples (fields hidden by the
            view are still written)
        rehash: read every file
        progress: optional ``callback(fraction, label)``
        num_readers: threads that read files (1 suits a local disk, more
            a network filesystem or cloud mount), or None to choose from
            the first reads (see :func:`hash_files`)

    Returns:
        :class:`Hashed`

    Raises:
        ValueError: on a patches, frames or clips view, or if
            ``num_readers`` is less than 1; nothing is changed
        ImportError: if the blake3 package is not installed
    """
    _check_readers(num_readers)
    return _hash(samples, rehash, progress, num_readers)[1]


def set_marker(dataset: fo.Dataset, field: str, ids: list) -> None:
    """Sets the boolean ``field`` True on ``ids`` and clears it elsewhere."""
    replace_fields(dataset, ((field, fo.BooleanField),))
    dataset.set_values(field, dict.fromkeys(ids, True), key_field="id")


def marked_view(dataset: fo.Dataset, field: str) -> fo.DatasetView:
    """The samples marked in ``field`` sorted by ``filehash``, first added
    first: a match and a sort, constant size at any dataset size."""
    return dataset.match(F(field) == True).sort_by(BY_HASH)  # noqa: E712


def mark_exact_duplicates(samples: SampleCollection) -> ExactCounts:
    """Marks the samples whose ``filehash`` occurs two or more times in
    ``samples`` (clearing any previous marks) and saves ``exact_dup_view``.
    Empty files are left out: each is a different failed download, not a copy;
    so are pairs the review marked "not duplicates".

    Args:
        samples: a dataset or a view of its samples, hashed

    Returns:
        :class:`ExactCounts`
    """
    samples = hashable_samples(samples)
    dataset = root_dataset(samples)
    ids, hashes = samples.exists(FILEHASH_FIELD).values(["id", FILEHASH_FIELD])
    num_empty = hashes.count(EMPTY_DIGEST)
    hashes = [None if h == EMPTY_DIGEST else h for h in hashes]
    groups, num_kept_apart = review_marks.split_exact_groups(samples, ids, hashes)
    marked = [i for group in groups for i in group]
    set_marker(dataset, MARKER_FIELD, marked)
    replace_fields(dataset, ((RUN_FIELD, fo.StringField),))
    run = new_run(dataset, WORKFLOW)
    dataset.set_values(RUN_FIELD, dict.fromkeys(marked, run), key_field="id")
    dataset.save_view(EXACT_DUP_VIEW, exact_dup_view(dataset, run), overwrite=True)
    return ExactCounts(GroupCounts(len(marked), len(groups)), num_empty, num_kept_apart)


def exact_dup_view(dataset: fo.Dataset, run: str) -> fo.DatasetView:
    """The samples the find ``run`` marked as exact duplicates, sorted by
    ``filehash``: a match and a sort, constant size at any dataset size."""
    return dataset.match(WORKFLOW.run_match(run)).sort_by(BY_HASH)


def find_exact_duplicates(
    samples: SampleCollection,
    rehash: bool = False,
    progress: Progress = None,
    num_readers: Optional[int] = None,
) -> ExactFindResult:
    """Hashes what is not hashed yet or changed since, and marks the samples
    that share a hash (empty files excepted).

    Args:
        samples: the dataset or a view of its samples to search
        rehash: hash every file again, even unchanged ones
        progress: optional ``callback(fraction, label)``
        num_readers: threads that read files (1 suits a local disk, more
            a network filesystem or cloud mount), or None to choose from
            the first reads (see :func:`hash_files`)

    Returns:
        an :class:`ExactFindResult`

    Raises:
        ValueError: if ``samples`` is empty, or a patches, frames or clips
            view, or ``num_readers`` is less than 1; nothing is changed then
        ImportError: if the blake3 package is not installed
    """
    _check_readers(num_readers)
    samples = hashable_samples(samples)
    require_samples(samples)
    plan, hashed = _hash(samples, rehash, progress, num_readers)
    counts = mark_exact_duplicates(samples)
    logger.info("Found %d images in %d exact-duplicate groups; %d empty files left out",
                *counts.groups, counts.num_empty)
    return ExactFindResult(
        num_images_with_exact_dups=counts.groups.num_in_groups,
        num_dups=counts.groups.num_dups,
        num_empty=counts.num_empty,
        num_hashed=hashed.num_hashed,
        num_changed=plan.num_changed,
        num_unreadable=len(hashed.unreadable_paths),
        unreadable_paths=hashed.unreadable_paths[:MAX_LISTED_FAILURES],
        num_kept_apart=counts.num_kept_apart,
    )


def exact_dup_groups_view(dataset: fo.Dataset) -> fo.DatasetView:
    """``exact_dup_view`` as dynamic groups by ``filehash``, for the App.

    Raises:
        ValueError: if find has not been run
    """
    return WORKFLOW.groups_view(dataset)


def files_match(paths: list, digests: list) -> list:
    """Whether each file, read again now, still has ``digest`` (False for a
    file that is gone or unreadable): the check right before a delete.

    Args:
        paths: local file paths
        digests: the hex digest each should have

    Returns:
        a bool per path
    """
    now = [digest for _, batch, _ in hash_files(paths) for digest in batch]
    return [a == b for a, b in zip(now, digests)]


WORKFLOW = Workflow(
    name="exact",
    find_label=FIND_LABEL,
    view_name=EXACT_DUP_VIEW,
    group_field=FILEHASH_FIELD,
    group_order="created_at",
    run_field=RUN_FIELD,
    result_fields=(MARKER_FIELD, RUN_FIELD),
    check_files=files_match,
)
