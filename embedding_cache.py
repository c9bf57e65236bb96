"""A binary cache of the embeddings a similarity index stores in its results.

An sklearn similarity index keeps its embeddings in the brain run's results,
as JSON: loading them in a new process takes seconds per 10,000 x 512
embeddings. This cache keeps a copy in an uncompressed ``.npz`` file per
brain run, which loads at disk speed.

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

import fiftyone as fo
import fiftyone.core.brain as fobr
import fiftyone.core.config as foc

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "FIFTYONE_DEDUP_CACHE_DIR"
# below this many values, reading the JSON results is about as fast
MIN_CACHED_VALUES = 1_000_000


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
