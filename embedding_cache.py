"""A binary cache of the embeddings a similarity index stores in its results.

An sklearn similarity index keeps its embeddings in the brain run's results,
as JSON: FiftyOne's loader (``bson.json_util``) takes seconds per 10,000 x 512
embeddings. Two things make the plugin's reads fast:

-   the first read of a stored run parses the raw results file itself
    (:func:`read_stored_results`): the embedding rows with Apache Arrow's
    multi-threaded CSV reader (pyarrow), the rest with orjson; both parse
    numbers correctly rounded, as Python's ``float()`` does, so the arrays are
    identical to FiftyOne's. Without pyarrow the rows go through orjson,
    without orjson through FiftyOne's own loader;
-   that read keeps a binary copy in an uncompressed ``.npz`` file per brain
    run, which later reads load at disk speed.

An entry is keyed to the stored run: the run document's id, the id of its
results file and the run's timestamp. Recomputing the index changes all
three; ``remove_from_index`` (or ``add_to_index``) followed by ``save()``
writes a new results file. A changed run is read afresh, and its old entry
is replaced. Indexes that keep their embeddings elsewhere (a sample field,
another backend) and small indexes are not cached.

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
from typing import Optional

import numpy as np
from bson import json_util

import fiftyone as fo
import fiftyone.core.brain as fobr
import fiftyone.core.config as foc

try:
    import orjson
except ImportError:  # optional: FiftyOne's loader reads the same results
    orjson = None
try:
    import pyarrow
    import pyarrow.csv as pyarrow_csv
except ImportError:  # optional: the rows are parsed by orjson instead
    pyarrow = pyarrow_csv = None

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "FIFTYONE_DEDUP_CACHE_DIR"
# below this many values, reading the JSON results is about as fast
MIN_CACHED_VALUES = 1_000_000
# bytes of JSON rows parsed at a time: bounds the text copies next to the
# raw results (about 20 bytes per value)
ROWS_CHUNK_BYTES = 64 << 20
_EMBEDDINGS_KEY = b'"embeddings": '
_NUMBER_BYTES = b"0123456789+-.eE,\n"
_ROW_TABLE = bytes.maketrans(b"[", b"\n")


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
            _write(path, embeddings, sample_ids)
        return embeddings, sample_ids
    index = dataset.load_brain_results(brain_key)
    if index is None:
        raise ValueError(f"Similarity index '{brain_key}' has no results; compute it again")
    embeddings, sample_ids, _ = index.get_embeddings()
    if path and embeddings.size >= MIN_CACHED_VALUES:
        _write(path, embeddings, sample_ids)
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
    # brain keys are identifiers: "-" separates the parts unambiguously
    return os.path.join(cache_dir(), f"{dataset._doc.id}-{brain_key}-{digest}.npz")


def _read(path: str) -> Optional[tuple]:
    """The entry at ``path``, or None if it is missing or unreadable."""
    try:
        with np.load(path) as entry:
            return entry["embeddings"], entry["sample_ids"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _write(path: str, embeddings: np.ndarray, sample_ids) -> None:
    """Writes an entry atomically and removes the run's older entries; a
    cache that can't be written only costs speed."""
    try:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        for old in glob.glob(glob.escape(path.rsplit("-", 1)[0]) + "-*.npz"):
            if old != path:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(old)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
            np.savez(f, embeddings=embeddings, sample_ids=np.asarray(sample_ids, dtype=str))
        os.replace(f.name, path)
    except OSError as e:
        logger.warning("Could not write the embedding cache %s: %s", path, e)


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
        ``(embeddings, sample_ids)`` (float64 ``n x d`` array unless the
        stored values are all integers, and an array of ``n`` id strings),
        or None if the run is not an sklearn index whose embeddings are in
        its results, or its results are not in the expected form
    """
    run_doc = dataset._doc.brain_methods.get(brain_key)
    config = dataset.get_brain_info(brain_key).config
    if (
        run_doc is None
        or not run_doc.results
        or config.method != "sklearn"
        or config.embeddings_field is not None
        or config.patches_field is not None
    ):
        return None
    run_doc.results.seek(0)
    raw = run_doc.results.read()
    try:
        return _parse_results(raw)
    except Exception as e:  # any surprise: FiftyOne's loader decides
        logger.debug("Fast read of brain run '%s' failed (%s); using FiftyOne's", brain_key, e)
        return None


def _parse_results(raw: bytes) -> Optional[tuple]:
    """``(embeddings, sample_ids)`` from the JSON that FiftyOne stores for an
    sklearn index (``json_util.dumps`` of its ``serialize()``), or None."""
    key = raw.find(_EMBEDDINGS_KEY)
    start = key + len(_EMBEDDINGS_KEY)
    if key < 0 or raw[start : start + 2] != b"[[":
        return None
    # rows hold only numbers: the first "]]" closes the list of rows
    end = raw.find(b"]]", start) + 2
    rest = _loads(raw[:start] + b"null" + raw[end:])
    if not isinstance(rest, dict) or "embeddings" not in rest or rest["embeddings"] is not None:
        return None
    if rest.get("label_ids") is not None:
        return None
    sample_ids = np.array(rest["sample_ids"])
    embeddings = _parse_rows(raw, start, end, len(sample_ids))
    if embeddings is None or len(embeddings) != len(sample_ids):
        return None
    return embeddings, sample_ids


def _loads(text: bytes):
    """FiftyOne's ``json_util.loads``, by orjson when the text has no BSON
    extended types (``{"$oid": ...}`` and such) for it to miss."""
    if orjson is not None and b'"$' not in text:
        return orjson.loads(text)
    return json_util.loads(text.decode())


def _parse_rows(raw: bytes, start: int, end: int, n: int) -> Optional[np.ndarray]:
    """The ``n`` rows of numbers in ``raw[start:end]`` (``[[a, b], [c, d]]``),
    as ``np.array`` makes them from the parsed lists (float64), or None if
    they are not plain decimal numbers with at least one fraction or
    exponent (``NaN``, ``Infinity``, integers only: FiftyOne's loader reads
    those)."""
    if pyarrow_csv is None:
        rows = np.array(_loads(raw[start:end]))
        return rows if rows.dtype == np.float64 else None
    dim = raw.count(b",", start, raw.find(b"]", start)) + 1
    out = np.empty((n, dim), dtype=np.float64)
    row, pos, fractional = 0, start, False
    while pos < end:
        cut = raw.find(b"], [", min(pos + ROWS_CHUNK_BYTES, end), end)
        cut = end if cut < 0 else cut + 3  # after "], ": the chunk's rows end with ","
        # "[a, b], [c, d]]" -> "\na,b,\nc,d" (+ ","): one row per line, each
        # ending with an empty field, so that Arrow rejects ragged rows
        text = raw[pos:cut].translate(_ROW_TABLE, b" ]") + (b"," if cut == end else b"")
        if text.translate(None, _NUMBER_BYTES):
            return None
        fractional = fractional or b"." in text or b"e" in text or b"E" in text
        rows = _arrow_rows(text, dim)
        if row + len(rows) > n:
            return None
        out[row : row + len(rows)] = rows
        row, pos = row + len(rows), cut
    return out if row == n and fractional else None


def _arrow_rows(text: bytes, dim: int) -> np.ndarray:
    """Lines of ``dim`` comma-separated numbers and a trailing comma, parsed
    by Arrow's CSV reader (correctly rounded, like Python's ``float()``)."""
    names = [f"c{k}" for k in range(dim + 1)]
    table = pyarrow_csv.read_csv(
        pyarrow.py_buffer(text),
        read_options=pyarrow_csv.ReadOptions(column_names=names, block_size=16 << 20),
        convert_options=pyarrow_csv.ConvertOptions(
            column_types={name: pyarrow.float64() for name in names[:dim]},
            include_columns=names[:dim],
            null_values=[],
            strings_can_be_null=False,
        ),
    )
    rows = np.empty((table.num_rows, dim), dtype=np.float64)
    for k, column in enumerate(table.columns):
        rows[:, k] = column.to_numpy()
    return rows
