"""Reading and hashing files: the BLAKE3 digest of a file's bytes and the
stat record of what it was computed from, for many files at once, read by a
pool of threads sized for the storage.

A digest is the same in every process and on every machine (unlike
``fiftyone.core.utils.compute_filehash`` with its default method, which uses
Python's salted ``hash()``); BLAKE3 is a cryptographic hash, 2.5x faster
than sha256 here. Nothing here touches the database: :mod:`exact_dups`
stores what this module reads.
"""

import gc
import logging
import math
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from typing import Iterator, Optional

try:
    from blake3 import blake3
except ImportError:  # the plugin still loads; a find says what to install
    blake3 = None

logger = logging.getLogger(__name__)

HASH_BATCH = 2000
CHUNK_SIZE = 1 << 22
RECORD_TIE = 16  # hex digits of a digest that start its stat record
EMPTY_DIGEST = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # BLAKE3 of no bytes
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


def require_blake3() -> None:
    if blake3 is None:
        raise ImportError(MISSING_BLAKE3)


def _digest(f, chunk_size: int) -> str:
    require_blake3()
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


def batches_of(items: list) -> list:
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


def check_readers(num_readers: Optional[int]) -> None:
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
    check_readers(num_readers)
    slices, digests, records = batches_of(paths), [], []
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
def older_objects_frozen() -> Iterator[None]:
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
