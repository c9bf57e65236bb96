"""Similarity indexes as the approximate workflow uses them: which brain runs
qualify, checks that name what is wrong, and loading an index's embeddings
for a set of samples.

Distances are in the index's metric (cosine distance = 1 - cosine
similarity). Like the brain's sklearn backend, sklearn indexes are
mean-centered first: on the mean of the whole index (of its finite, non-zero
rows), whatever the scope, so that a scope of a few samples, or of identical
ones, keeps its duplicates. All-zero rows stay zero (the search leaves them
out), and a NaN or inf in the scope is an error.
"""

import logging
from typing import NamedTuple, Optional

import numpy as np

import fiftyone as fo
import fiftyone.core.brain as fobr

from . import embedding_cache
from .neighbor_search import PAIR_CHUNK, degenerate_rows, row_norms
from .results import SampleCollection, root_dataset

logger = logging.getLogger(__name__)

SUPPORTED_METRICS = ("cosine", "euclidean")
# recorded on the brain runs this plugin builds (see index_sources)
KIND_ATTRIBUTE = "dedup_index_kind"
# kinds whose distances must not depend on the rest of the dataset: never centred
UNCENTRED_KINDS = ("pixels",)
NO_INDEX_MESSAGE = (
    "This dataset has no similarity index. Create one first, for example "
    "fiftyone.brain.compute_similarity(dataset, embeddings='my_embeddings', "
    "brain_key='sim'), or with a model"
)
MAX_LISTED_IDS = 3  # sample ids an error message names


class IndexRows(NamedTuple):
    """Embeddings of some samples of an index, in index order.

    Attributes:
        embeddings: ``n x d`` float32, mean-centered for sklearn indexes;
            degenerate rows are all zero
        sample_ids: the ``n`` sample ids
        metric: the index's metric
        mean: the float64 mean that was subtracted (0 if none)
        degenerate: ``n`` booleans, True for rows that were (about) all zero
    """

    embeddings: np.ndarray
    sample_ids: list
    metric: str
    mean: np.ndarray
    degenerate: Optional[np.ndarray] = None


def similarity_brain_keys(dataset: fo.Dataset) -> list:
    """The brain keys of the dataset's sample-level similarity indexes."""
    return [
        key
        for key in dataset.list_brain_runs(type="similarity")
        if dataset.get_brain_info(key).config.patches_field is None
    ]


def similarity_config(dataset: fo.Dataset, brain_key: Optional[str]):
    """The config of a usable similarity index.

    Raises:
        ValueError: if ``brain_key`` is missing, not a similarity index, an
            index of object patches, or of an unsupported metric
    """
    if not brain_key or brain_key not in dataset.list_brain_runs():
        if not similarity_brain_keys(dataset):
            raise ValueError(NO_INDEX_MESSAGE)
        raise ValueError(f"Dataset '{dataset.name}' has no brain run '{brain_key}'")
    config = dataset.get_brain_info(brain_key).config
    if config.type != "similarity":
        raise ValueError(
            f"Brain run '{brain_key}' is a '{config.type}' run, not a similarity index"
        )
    if config.patches_field is not None:
        raise ValueError(
            f"Similarity index '{brain_key}' indexes object patches; pick an image-level index"
        )
    if config.metric not in SUPPORTED_METRICS:
        raise ValueError(
            f"Similarity index '{brain_key}' uses metric '{config.metric}'; "
            f"supported metrics are {SUPPORTED_METRICS}"
        )
    return config


def index_kind(config) -> Optional[str]:
    """The source that built an index, if this plugin built it (e.g. "pixels")."""
    return getattr(config, KIND_ATTRIBUTE, None)


def record_index_kind(samples: SampleCollection, brain_key: str, kind: str) -> None:
    """Records on the brain run which source built its index (see
    :func:`index_kind`), so every later find applies that kind's defaults."""
    dataset = root_dataset(samples)
    config = dataset.get_brain_info(brain_key).config
    setattr(config, KIND_ATTRIBUTE, kind)
    fobr.BrainMethod.update_run_config(dataset, brain_key, config)


def validate_threshold(threshold: Optional[float], metric: str) -> None:
    """Raises ValueError unless ``threshold`` is a distance of ``metric``."""
    limit = 2.0 if metric == "cosine" else np.inf
    if threshold is None or not 0.0 <= threshold <= limit:
        raise ValueError(
            f"threshold_value must be between 0 and {limit} for metric '{metric}', got {threshold}"
        )


def index_rows(
    dataset: fo.Dataset, brain_key: str, wanted: set, config=None, center: bool = True
) -> IndexRows:
    """The embeddings of the samples of ``dataset`` whose ids are in
    ``wanted``, in index order.

    For sklearn indexes they are centred, like the brain does, on the mean of
    the whole index's finite, non-degenerate rows (not only the wanted ones).
    Degenerate rows (about all zero, see
    :func:`neighbor_search.degenerate_rows`) are set to exactly zero.

    Args:
        dataset: the dataset of the index
        brain_key: a sample-level similarity index
        wanted: sample ids
        config: the index's config, if already looked up
        center: False to never centre (distances that do not depend on the
            other samples of the index)

    Returns:
        :class:`IndexRows`

    Raises:
        ValueError: if ``brain_key`` is not a usable similarity index, or if
            an embedding of a wanted sample holds a NaN or inf
    """
    config = config or similarity_config(dataset, brain_key)
    embeddings, sample_ids = embedding_cache.index_embeddings(dataset, brain_key)
    sample_ids = np.asarray(sample_ids)
    in_scope = np.fromiter((i in wanted for i in sample_ids), bool, len(sample_ids))
    norms = row_norms(embeddings)
    _require_finite(norms[in_scope], sample_ids[in_scope], brain_key)
    degenerate = degenerate_rows(norms)
    mean = np.float64(0.0)
    if center and config.method == "sklearn" and index_kind(config) not in UNCENTRED_KINDS:
        mean = _index_mean(embeddings, np.isfinite(norms) & ~degenerate)
    # one float32 copy, changed below (a masked copy first doubled the work
    # when all are wanted; the index's own array must stay as it is)
    rows = np.array(embeddings if in_scope.all() else embeddings[in_scope], dtype=np.float32)
    rows -= np.asarray(mean, dtype=np.float32)
    rows[degenerate[in_scope]] = 0.0
    logger.info("Loaded %d embeddings of similarity index '%s'", len(rows), brain_key)
    return IndexRows(rows, list(sample_ids[in_scope]), config.metric, mean, degenerate[in_scope])


def _require_finite(norms: np.ndarray, sample_ids: np.ndarray, brain_key: str) -> None:
    """Raises ValueError, naming a few samples, if a norm is not finite."""
    bad = sample_ids[~np.isfinite(norms)]
    if len(bad):
        has = "sample has an embedding" if len(bad) == 1 else "samples have embeddings"
        raise ValueError(
            f"{len(bad)} {has} with NaN or inf values in similarity index '{brain_key}' "
            f"(e.g. {', '.join(bad[:MAX_LISTED_IDS])}): distances to them are undefined. "
            "Recompute the index, or leave these samples out of the search"
        )


def _index_mean(embeddings: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The float64 mean of the ``usable`` rows, one chunk of rows at a time;
    0 when those rows are all equal (centring would leave only zeros)."""
    count = int(usable.sum())
    if count == 0:
        return np.float64(0.0)
    total = np.zeros(embeddings.shape[1])
    low, high = np.full_like(total, np.inf), np.full_like(total, -np.inf)
    for start in range(0, len(embeddings), PAIR_CHUNK):
        chunk = np.asarray(embeddings[start : start + PAIR_CHUNK][usable[start : start + PAIR_CHUNK]],
                           dtype=np.float64)
        total += chunk.sum(axis=0)
        np.minimum(low, chunk.min(axis=0, initial=np.inf), out=low)
        np.maximum(high, chunk.max(axis=0, initial=-np.inf), out=high)
    mean = total / count
    if np.linalg.norm(high - low) <= 1e-6 * np.linalg.norm(mean):
        return np.float64(0.0)
    return mean


def load_index_embeddings(samples: SampleCollection, brain_key: str) -> IndexRows:
    """The embeddings of ``samples`` in a similarity index (see :func:`index_rows`).

    Raises:
        ValueError: if ``brain_key`` is not a usable similarity index
    """
    return index_rows(root_dataset(samples), brain_key, set(samples.values("id")))
