"""A binary cache of the embeddings a similarity index stores in its results.

An sklearn similarity index keeps its embeddings in the brain run's results,
as JSON: FiftyOne's loader (``bson.json_util``) takes seconds per 10,000 x 512
embeddings. Two things make the plugin's reads fast:

-   the first read of a stored run parses the raw results file itself
    (:func:`read_stored_results`) in a pipeline: a thread reads the next
    block from the database while this one is cut into chunks of whole rows,
    which worker threads parse with Apache Arrow's CSV reader (pyarrow);
    the rest is parsed by orjson. Both parse
    numbers correctly rounded, as Python's ``float()`` does, so the arrays are
    identical to FiftyOne's. Without pyarrow, FiftyOne's own loader reads
    the run; without orjson, it parses the rest;
-   that read keeps a binary copy in an uncompressed ``.npz`` file per brain
    run, which later reads load at disk speed. It is written in a background
    thread while the find goes on.

An entry is keyed to the stored run: the run document's id, the id of its
results file and the run's timestamp. Recomputing the index changes all
three; ``remove_from_index`` (or ``add_to_index``) followed by ``save()``
writes a new results file. A changed run is read afresh, and its old entry
is replaced; each write also removes the entries of brain runs and datasets
no longer in the database. Indexes that keep their embeddings elsewhere (a
sample field, another backend) and small indexes are not cached.

The cache lives in ``$FIFTYONE_DEDUP_CACHE_DIR`` if set, else in
``dedup_cache`` next to FiftyOne's config file (``~/.fiftyone/dedup_cache``).
It may be deleted at any time.
"""

import contextlib
import glob
import hashlib
import logging
import os
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Optional

import numpy as np
from bson import json_util
from pymongo.errors import PyMongoError

import fiftyone as fo
import fiftyone.core.brain as fobr
import fiftyone.core.config as foc
import fiftyone.core.odm as foo

try:
    import orjson
except ImportError:  # optional: FiftyOne's loader reads the same results
    orjson = None
try:
    import pyarrow
    import pyarrow.csv as pyarrow_csv
except ImportError:  # optional: FiftyOne's loader reads the same results
    pyarrow = pyarrow_csv = None

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "FIFTYONE_DEDUP_CACHE_DIR"
# below this many values, reading the JSON results is about as fast
MIN_CACHED_VALUES = 1_000_000
# bytes of the stored results read at a time (about 20 bytes per value): while
# one block is cut into lines, the next is read and earlier ones are parsed
ROWS_CHUNK_BYTES = 8 << 20
PARSE_THREADS = 2
MAX_PENDING_CHUNKS = 8  # parsed chunks the text may run ahead of: bounds memory
_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dedup-cache-write")
_writes: list = []  # their futures
_EMBEDDINGS_KEY = b'"embeddings": '
# "[[0.5, 1.5], [" -> "  0.5\n 1.5\n\n  ": one number per line (Arrow skips the
# spaces), rows apart by empty lines; no byte is removed, so offsets stay
_ROW_TABLE = bytes.maketrans(b"[],", b" \n\n")


def cache_dir() -> str:
    """The directory of the cache files."""
    default = os.path.join(os.path.dirname(foc.locate_config()), "dedup_cache")
    return os.environ.get(CACHE_DIR_ENV) or default


def index_embeddings(dataset: fo.Dataset, brain_key: str) -> tuple:
    """All embeddings of a similarity index and their sample ids, in index
    order, from the cache when it holds the stored run.

    An index already loaded in this process is used as it is, and not
    cached: it may hold changes that are not saved.

    Args:
        dataset: the dataset of the index
        brain_key: the key of a similarity index

    Returns:
        ``(embeddings, sample_ids)``: an ``n x d`` array and an array of
        ``n`` ids

    Raises:
        ValueError: if the run has no results
    """
    loaded = fobr.BrainMethod.has_cached_run_results(dataset, brain_key)
    path = None if loaded else _entry_path(dataset, brain_key)
    cached = _read(path) if path else None
    if cached is not None:
        return cached
    stored = read_stored_results(dataset, brain_key) if path else None
    if stored is not None:
        embeddings, sample_ids = stored
        if embeddings.size >= MIN_CACHED_VALUES:
            _write_soon(path, embeddings, sample_ids)
        return embeddings, sample_ids
    index = dataset.load_brain_results(brain_key)
    if index is None:
        raise ValueError(f"Similarity index '{brain_key}' has no results; compute it again")
    embeddings, sample_ids, _ = index.get_embeddings()
    if path and embeddings.size >= MIN_CACHED_VALUES:
        _write_soon(path, embeddings, sample_ids)
    return embeddings, np.asarray(sample_ids)


def _entry_path(dataset: fo.Dataset, brain_key: str) -> Optional[str]:
    """The cache file of the run as stored now, or None if it is not cacheable."""
    run_doc = dataset._doc.brain_methods[brain_key]
    config = dataset.get_brain_info(brain_key).config
    if config.method != "sklearn" or config.embeddings_field is not None or not run_doc.results:
        return None
    # milliseconds: the database keeps no more, so a reloaded run_doc agrees
    stamp = run_doc.timestamp.isoformat(timespec="milliseconds")
    version = f"{run_doc.id}-{run_doc.results.grid_id}-{stamp}"
    digest = hashlib.sha1(version.encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), f"{_run_name(dataset._doc.id, brain_key)}-{digest}.npz")


def _run_name(dataset_id, brain_key: str) -> str:
    """The part of an entry's file name that names its run (brain keys are
    identifiers: "-" separates the parts unambiguously)."""
    return f"{dataset_id}-{brain_key}"


def _run_of(entry: str) -> str:
    """The :func:`_run_name` of an entry's file."""
    return os.path.basename(entry).rsplit("-", 1)[0]


def _read(path: str) -> Optional[tuple]:
    """The entry at ``path``, or None if it is missing or unreadable."""
    try:
        with np.load(path) as entry:
            return entry["embeddings"], entry["sample_ids"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def wait_for_writes() -> None:
    """Returns once the entries being written are on disk (the interpreter
    waits for them too before it exits)."""
    while _writes:
        _writes.pop().result()


def _write_soon(path: str, embeddings: np.ndarray, sample_ids) -> None:
    """Writes an entry in a background thread: the find goes on meanwhile
    (the arrays are never changed in place)."""
    _writes[:] = [write for write in _writes if not write.done()]
    _writes.append(_writer.submit(_write, path, embeddings, sample_ids))


def _write(path: str, embeddings: np.ndarray, sample_ids) -> None:
    """Writes an entry atomically and removes outdated ones; a
    cache that can't be written (a full disk) only costs speed, and leaves
    no partial file behind."""
    partial = None
    try:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        _remove_outdated_entries(folder, path)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
            partial = f.name
            np.savez(f, embeddings=embeddings, sample_ids=np.asarray(sample_ids, dtype=str))
        os.replace(partial, path)
    except (OSError, PyMongoError) as e:
        if partial:
            with contextlib.suppress(OSError):
                os.remove(partial)
        logger.warning("Could not write the embedding cache %s: %s", path, e)


def _remove_outdated_entries(folder: str, path: str) -> None:
    """Removes the older entries of ``path``'s run and those of brain runs no
    longer in the database (a deleted run or dataset), which nothing else
    would remove. A folder shared with another database loses its entries
    too, which only costs speed."""
    # listed before the runs are read: an entry another process writes meanwhile has its run in the database
    entries = glob.glob(os.path.join(glob.escape(folder), "*.npz"))
    runs = {_run_name(doc["_id"], key) for doc in foo.get_db_conn().datasets.find({}, {"brain_methods": 1})
            for key in doc.get("brain_methods") or {}}
    for entry in entries:
        if entry != path and (_run_of(entry) == _run_of(path) or _run_of(entry) not in runs):
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry)


def read_stored_results(dataset: fo.Dataset, brain_key: str) -> Optional[tuple]:
    """The embeddings and sample ids of an sklearn similarity index, parsed
    from the brain run's raw results file without FiftyOne's JSON loader.

    The arrays are identical (values, dtype, order) to what
    ``dataset.load_brain_results(brain_key).get_embeddings()`` returns for the
    stored run; an index loaded in this process with unsaved changes is not
    seen.

    Args:
        dataset: the dataset of the index
        brain_key: the key of a similarity index

    Returns:
        ``(embeddings, sample_ids)`` (a float64 ``n x d`` array and an
        array of ``n`` id strings), or None if the run is not an sklearn
        index whose embeddings are in its results, pyarrow is missing, or
        the results are not in the expected form (integers only, strings...)
    """
    run_doc = dataset._doc.brain_methods.get(brain_key)
    config = dataset.get_brain_info(brain_key).config
    if (
        run_doc is None
        or not run_doc.results
        or config.method != "sklearn"
        or config.embeddings_field is not None
        or config.patches_field is not None
        or pyarrow_csv is None
    ):
        return None
    try:
        stream = run_doc.results.get()
        stream.seek(0)
        return _parse_results(_blocks(stream))
    except Exception as e:  # any surprise: FiftyOne's loader decides
        logger.debug("Fast read of brain run '%s' failed (%s); using FiftyOne's", brain_key, e)
        return None


def _blocks(stream) -> Iterator[bytes]:
    """The rest of ``stream`` in blocks of :data:`ROWS_CHUNK_BYTES`; the next
    block is read in a thread while the caller parses the current one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(stream.read, ROWS_CHUNK_BYTES)
        while True:
            block = pending.result()
            if not block:
                return
            pending = pool.submit(stream.read, ROWS_CHUNK_BYTES)
            yield block


def _parse_results(blocks: Iterable[bytes]) -> Optional[tuple]:
    """``(embeddings, sample_ids)`` from the JSON that FiftyOne stores for an
    sklearn index (``json_util.dumps`` of its ``serialize()``), given in
    consecutive blocks of bytes, or None.

    Args:
        blocks: the stored file's bytes, in order, cut anywhere

    Returns:
        ``(embeddings, sample_ids)`` as :func:`read_stored_results`, or None
        if the text is not in the expected form
    """
    blocks = iter(blocks)
    text, key = b"", -1
    while key < 0 or len(text) < key + len(_EMBEDDINGS_KEY) + 2:
        block = next(blocks, None)
        if block is None:
            return None
        text += block
        key = text.find(_EMBEDDINGS_KEY)
    start = key + len(_EMBEDDINGS_KEY)
    if text[start : start + 2] != b"[[":
        return None
    parsed = _parse_rows(text[start:], blocks)
    if parsed is None:
        return None
    rows, tail = parsed
    rest = _loads(text[:start] + b"null" + tail + b"".join(blocks))
    if not isinstance(rest, dict) or "embeddings" not in rest or rest["embeddings"] is not None:
        return None
    if rest.get("label_ids") is not None:
        return None
    sample_ids = np.array(rest["sample_ids"])
    if len(rows) != len(sample_ids):
        return None
    return rows, sample_ids


def _parse_rows(text: bytes, blocks: Iterator[bytes]) -> Optional[tuple]:
    """The list of rows that ``text`` starts with (then continued by
    ``blocks``), cut into chunks of whole rows that worker threads parse
    while the next chunk is cut; ``(rows, the text after the list)``, or
    None if the rows are not all fractional numbers of one length."""
    chunks, dim, fractional = [], None, False
    with ThreadPoolExecutor(max_workers=PARSE_THREADS) as pool:
        while True:
            # rows hold only numbers: the "]]" after the last "], [" closes the
            # list of rows (searched from there only: "]" ends every row; should
            # another list follow, the text taken as rows has quotes and is declined)
            last = text.rfind(b"], [")
            end = text.find(b"]]", max(last, 0))
            cut = end + 2 if end >= 0 else last + 2  # after "],"
            if cut > 1:  # at least one whole row
                if dim is None:
                    dim = text.count(b",", 0, text.find(b"]")) + 1
                fractional = fractional or any(text.find(c, 0, cut) >= 0 for c in (b".", b"e", b"E"))
                # the translation keeps offsets: the rows are a view of it, not a copy.
                # Anything but numbers (quotes, NaN as {"$numberDouble": "NaN"}) fails
                # Arrow's parse: declined, FiftyOne's loader reads it
                chunk, text = memoryview(text.translate(_ROW_TABLE))[:cut], text[cut:]
                if len(chunks) >= MAX_PENDING_CHUNKS and not chunks[-MAX_PENDING_CHUNKS].done():
                    chunks[-MAX_PENDING_CHUNKS].result()
                chunks.append(pool.submit(_arrow_rows, chunk, dim))
            if end >= 0:
                break
            block = next(blocks, None)
            if block is None:
                return None
            text += block
        rows = [chunk.result() for chunk in chunks]
    if not fractional or any(r is None for r in rows):
        return None  # integers only: FiftyOne's loader gives int64
    return (rows[0] if len(rows) == 1 else np.concatenate(rows)), text


def _loads(text: bytes):
    """FiftyOne's ``json_util.loads``, by orjson when the text has no BSON
    extended types (``{"$oid": ...}`` and such) for it to miss."""
    if orjson is not None and b'"$' not in text:
        return orjson.loads(text)
    return json_util.loads(text.decode())


def _arrow_rows(text: memoryview, dim: int) -> Optional[np.ndarray]:
    """Rows of ``dim`` numbers, one number per line and rows apart by empty
    lines, parsed by Arrow's CSV reader as one column (correctly rounded,
    like Python's ``float()``) into a float64 ``rows x dim`` array; None if
    a row does not hold ``dim`` numbers. (One column parses in a third of
    the time of a column per dimension, and needs no transposing copy.)"""
    column = pyarrow_csv.read_csv(
        pyarrow.py_buffer(text),
        read_options=pyarrow_csv.ReadOptions(column_names=["v"], block_size=len(text) + 1,
                                             use_threads=False),
        parse_options=pyarrow_csv.ParseOptions(quote_char=False, double_quote=False, escape_char=False,
                                               ignore_empty_lines=False),
        convert_options=pyarrow_csv.ConvertOptions(column_types={"v": pyarrow.float64()}, null_values=[""]),
    ).column(0)
    present = column.is_valid().to_numpy(zero_copy_only=False)
    edges = np.flatnonzero(np.diff(present, prepend=False, append=False))
    if dim < 1 or not np.all(edges[1::2] - edges[::2] == dim):
        return None
    return column.drop_null().to_numpy().reshape(-1, dim)
