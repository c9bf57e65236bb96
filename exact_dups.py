"""Exact duplicates: a stable content hash of every media file, stored in the
``filehash`` field, and the saved view of samples whose hash occurs twice
(``exact_dup_view``, marker ``is_exact_dup``). :mod:`leakage` uses the same
hashes to compare against a reference collection.

A sample's hash is the BLAKE3 digest of its file's bytes (a cryptographic
hash, 2.5x faster than sha256 here), so it is the same in every process and on
every machine (unlike ``fiftyone.core.utils.compute_filehash``
with its default method, which uses Python's salted ``hash()``).
"""

import gc
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Optional

import fiftyone as fo
from fiftyone import ViewField as F

from .progress import Progress
from .results import GroupCounts, Result, SampleCollection, Workflow, replace_fields, require_samples, root_dataset

try:
    from blake3 import blake3
except ImportError:  # the plugin still loads; a find says what to install
    blake3 = None

logger = logging.getLogger(__name__)

FILEHASH_FIELD = "filehash"
MARKER_FIELD = "is_exact_dup"
EXACT_DUP_VIEW = "exact_dup_view"
FIND_LABEL = "Dedup: Find exact duplicates"
HASH_BATCH = 2000
MAX_LISTED_FAILURES = 5
MISSING_BLAKE3 = (
    "Hashing files needs the blake3 package: run "
    "`fiftyone plugins requirements @fo-dedup/image-dedup --install` (or `pip install blake3`)"
)

FOREIGN_FILEHASH = (
    "The existing filehash field does not hold this plugin's BLAKE3 hex digests (the "
    "original plugin stored Python's salted hash(), which differs between processes): "
    "a find replaces it and hashes every file"
)

WORKFLOW = Workflow(
    name="exact",
    find_label=FIND_LABEL,
    view_name=EXACT_DUP_VIEW,
    group_field=FILEHASH_FIELD,
    group_order="created_at",
    result_fields=(MARKER_FIELD,),
)


@dataclass
class ExactFindResult(Result):
    """What a find run did and found."""

    num_images_with_exact_dups: int
    num_dups: int
    num_hashed: int
    num_unreadable: int
    unreadable_paths: list


class Hashed(NamedTuple):
    """What a hashing run did: how many files it read, and the paths of
    those it could not read."""

    num_hashed: int
    unreadable_paths: list


def _require_blake3() -> None:
    if blake3 is None:
        raise ImportError(MISSING_BLAKE3)


def hash_file(path: str, chunk_size: int = 1 << 22) -> str:
    """Returns the hex BLAKE3 digest of a file's bytes, read unbuffered in
    chunks (one read for most images; bounded memory for large videos)."""
    _require_blake3()
    digest = blake3()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_or_none(path: str) -> Optional[str]:
    try:
        return hash_file(path)
    except OSError:
        return None


def _hash_batch(paths: list) -> tuple:
    return paths, [_hash_or_none(p) for p in paths]


def _slices(items: list) -> list:
    return [items[start : start + HASH_BATCH] for start in range(0, len(items), HASH_BATCH)]


def hash_files(paths: list) -> Iterator[tuple]:
    """Hashes files slice by slice in one background thread, so that the
    caller can store a slice while the next one is read (BLAKE3 releases the
    GIL). One thread: reading files from two threads is slower here.

    Args:
        paths: local file paths

    Returns:
        an iterator over ``(slice, digests)`` for successive ``HASH_BATCH``
        slices of ``paths``: the hex digest of each path, None where the file
        can't be read
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield from pool.map(_hash_batch, _slices(paths))


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
    plugin's strings (the original plugin's ints)."""
    field = dataset.get_field(FILEHASH_FIELD)
    return field is not None and not isinstance(field, fo.StringField)


def compute_filehashes(
    samples: SampleCollection,
    rehash: bool = False,
    progress: Progress = None,
) -> Hashed:
    """Stores the BLAKE3 hash of each sample's file in ``filehash``: one
    ``set_values`` per slice, written while the next slice is hashed.

    Samples that already have a hash are not read again unless ``rehash``.
    Unreadable files are left with ``filehash`` None. A ``filehash`` field of
    another type (see :func:`has_foreign_filehash`) is replaced.

    Returns:
        :class:`Hashed`
    """
    _require_blake3()
    dataset = root_dataset(samples)
    if has_foreign_filehash(dataset):
        dataset.delete_sample_field(FILEHASH_FIELD)
    if not dataset.has_sample_field(FILEHASH_FIELD):
        dataset.add_sample_field(FILEHASH_FIELD, fo.StringField)
    todo = samples if rehash else samples.exists(FILEHASH_FIELD, False)
    unreadable, done = [], 0
    with _older_objects_frozen():
        ids, paths = todo.values(["id", "filepath"])
        with closing(hash_files(paths)) as hashed:  # a failed write stops the hashing too
            for batch_ids, (batch_paths, hashes) in zip(_slices(ids), hashed):
                dataset.set_values(FILEHASH_FIELD, dict(zip(batch_ids, hashes)), key_field="id")
                unreadable += [p for p, h in zip(batch_paths, hashes) if h is None]
                done += len(hashes)
                if progress:
                    progress(done / len(ids), f"hashed {done}/{len(ids)} files")
    logger.info("Hashed %d files (%d unreadable)", len(ids), len(unreadable))
    return Hashed(len(ids), unreadable)


def set_marker(dataset: fo.Dataset, field: str, ids: list) -> None:
    """Sets the boolean ``field`` True on ``ids`` and clears it elsewhere."""
    replace_fields(dataset, ((field, fo.BooleanField),))
    dataset.set_values(field, dict.fromkeys(ids, True), key_field="id")


def marked_view(dataset: fo.Dataset, field: str) -> fo.DatasetView:
    """The samples marked in ``field`` sorted by ``filehash``, first added
    first: a match and a sort, constant size at any dataset size."""
    return dataset.match(F(field) == True).sort_by(  # noqa: E712
        [(FILEHASH_FIELD, 1), ("created_at", 1), ("_id", 1)]
    )


def mark_exact_duplicates(samples: SampleCollection) -> GroupCounts:
    """Marks the samples whose ``filehash`` occurs two or more times in
    ``samples`` (clearing any previous marks) and saves ``exact_dup_view``.

    Returns:
        :class:`GroupCounts`
    """
    dataset = root_dataset(samples)
    ids, hashes = samples.exists(FILEHASH_FIELD).values(["id", FILEHASH_FIELD])
    counts = Counter(hashes)
    set_marker(dataset, MARKER_FIELD, [i for i, h in zip(ids, hashes) if counts[h] > 1])
    dataset.save_view(EXACT_DUP_VIEW, exact_dup_view(dataset), overwrite=True)
    sizes = [c for c in counts.values() if c > 1]
    return GroupCounts(sum(sizes), len(sizes))


def exact_dup_view(dataset: fo.Dataset) -> fo.DatasetView:
    """The samples marked as exact duplicates, sorted by ``filehash``."""
    return marked_view(dataset, MARKER_FIELD)


def find_exact_duplicates(
    samples: SampleCollection,
    rehash: bool = False,
    progress: Progress = None,
) -> ExactFindResult:
    """Hashes what is not hashed yet and marks the samples that share a hash.

    Args:
        samples: the dataset or view to search
        rehash: hash every file again, even those with a ``filehash``
        progress: optional ``callback(fraction, label)``

    Returns:
        an :class:`ExactFindResult`

    Raises:
        ValueError: if ``samples`` is empty
        ImportError: if the blake3 package is not installed
    """
    require_samples(samples)
    hashed = compute_filehashes(samples, rehash, progress)
    counts = mark_exact_duplicates(samples)
    logger.info("Found %d images in %d exact-duplicate groups", *counts)
    return ExactFindResult(
        num_images_with_exact_dups=counts.num_in_groups,
        num_dups=counts.num_dups,
        num_hashed=hashed.num_hashed,
        num_unreadable=len(hashed.unreadable_paths),
        unreadable_paths=hashed.unreadable_paths[:MAX_LISTED_FAILURES],
    )


def exact_dup_groups_view(dataset: fo.Dataset) -> fo.DatasetView:
    """``exact_dup_view`` as dynamic groups by ``filehash``, for the App.

    Raises:
        ValueError: if find has not been run
    """
    return WORKFLOW.groups_view(dataset)
