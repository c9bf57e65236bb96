"""Exact duplicates: a stable content hash of every media file, stored in the
``filehash`` field, and the saved view of samples whose hash occurs twice
(``exact_dup_view``, marker ``is_exact_dup``). :mod:`leakage` uses the same
hashes to compare against a reference collection.

A sample's hash is the BLAKE3 digest of its file's bytes, read by
:mod:`file_hashes`; this module plans which samples to read, stores what was
read, and marks the groups.

Next to each hash, ``filehash_stat`` records what it was computed from (like
git's stat cache): the file path, size and modification time, and the start
of the digest it belongs to. A find hashes again every sample whose record no
longer matches its file, and every hash this plugin did not write.
"""

import logging
import os
import re
from contextlib import closing
from dataclasses import dataclass
from typing import NamedTuple, Optional


import fiftyone as fo
import fiftyone.core.stages as fos
from fiftyone import ViewField as F

from . import review_marks
from .file_hashes import (EMPTY_DIGEST, RECORD_TIE, check_readers, files_match, hash_files,
                          older_objects_frozen, require_blake3, batches_of, stat_record)
from .progress import Progress
from .results import (GroupCounts, Result, SampleCollection, Workflow, replace_fields, require_samples,
                      new_run, root_dataset, write_values)

logger = logging.getLogger(__name__)

FILEHASH_FIELD = "filehash"
STAT_FIELD = "filehash_stat"
MARKER_FIELD = "is_exact_dup"
EXACT_DUP_VIEW = "exact_dup_view"
RUN_FIELD = "exact_dup_run"
FIND_LABEL = "Dedup: Find exact duplicates"
_OWN_DIGEST = "[0-9a-f]{64}"  # a BLAKE3 hex digest
_OWN_DIGEST_RE = re.compile(_OWN_DIGEST)
MAX_LISTED_FAILURES = 5

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
    bulk write (:func:`results.write_values`)."""
    write_values(dataset, {FILEHASH_FIELD: digests, STAT_FIELD: records}, ids)


def _store_hashes(dataset: fo.Dataset, plan: HashPlan, progress: Progress,
                  num_readers: Optional[int] = None) -> Hashed:
    """Hashes the planned files and stores each slice's hashes and stat
    records (one bulk write) while the next slice is read."""
    unreadable, done, total = [], 0, len(plan.ids)
    with closing(hash_files(plan.paths, num_readers)) as hashed:  # a failed write stops the hashing too
        for batch_ids, (batch_paths, digests, records) in zip(batches_of(plan.ids), hashed):
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
    require_blake3()
    samples = hashable_samples(samples)
    dataset = root_dataset(samples)
    _prepare_fields(dataset)
    with older_objects_frozen():
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
    check_readers(num_readers)
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
    check_readers(num_readers)
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
