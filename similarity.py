"""Similarity indexes as the approximate workflow uses them: which brain runs
qualify, checks that name what is wrong, and loading an index's embeddings
for a set of samples.

Distances are in the index's metric (cosine distance = 1 - cosine
similarity). Like the brain's sklearn backend, sklearn indexes are
mean-centered first.
"""

import logging
from typing import NamedTuple, Optional

import numpy as np

import fiftyone as fo

from . import embedding_cache
from .results import SampleCollection, root_dataset

logger = logging.getLogger(__name__)

SUPPORTED_METRICS = ("cosine", "euclidean")
NO_INDEX_MESSAGE = (
    "This dataset has no similarity index. Create one first, for example "
    "fiftyone.brain.compute_similarity(dataset, embeddings='my_embeddings', "
    "brain_key='sim'), or with a model"
)


class IndexRows(NamedTuple):
    """Embeddings of some samples of an index, in index order.

    Attributes:
        embeddings: ``n x d`` float32, mean-centered for sklearn indexes
        sample_ids: the ``n`` sample ids
        metric: the index's metric
        mean: the float64 mean that was subtracted (0 if none)
    """

    embeddings: np.ndarray
    sample_ids: list
    metric: str
    mean: np.ndarray


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


def validate_threshold(threshold: Optional[float], metric: str) -> None:
    """Raises ValueError unless ``threshold`` is a distance of ``metric``."""
    limit = 2.0 if metric == "cosine" else np.inf
    if threshold is None or not 0.0 <= threshold <= limit:
        raise ValueError(
            f"threshold_value must be between 0 and {limit} for metric '{metric}', got {threshold}"
        )


def index_rows(dataset: fo.Dataset, brain_key: str, wanted: set, config=None) -> IndexRows:
    """The embeddings of the samples of ``dataset`` whose ids are in
    ``wanted``, mean-centered on those samples for sklearn indexes.

    Args:
        dataset: the dataset of the index
        brain_key: a sample-level similarity index
        wanted: sample ids
        config: the index's config, if already looked up

    Raises:
        ValueError: if ``brain_key`` is not a usable similarity index
    """
    config = config or similarity_config(dataset, brain_key)
    embeddings, sample_ids = embedding_cache.index_embeddings(dataset, brain_key)
    in_scope = np.fromiter((i in wanted for i in sample_ids), bool, len(sample_ids))
    embeddings = np.asarray(embeddings[in_scope], dtype=np.float32)
    mean = np.float64(0.0)
    if config.method == "sklearn" and len(embeddings):
        mean = embeddings.mean(axis=0, dtype=np.float64)
        embeddings -= mean.astype(np.float32)
    logger.info("Loaded %d embeddings of similarity index '%s'", len(embeddings), brain_key)
    return IndexRows(embeddings, list(np.asarray(sample_ids)[in_scope]), config.metric, mean)


def load_index_embeddings(samples: SampleCollection, brain_key: str) -> IndexRows:
    """The embeddings of ``samples`` in a similarity index (see :func:`index_rows`).

    Raises:
        ValueError: if ``brain_key`` is not a usable similarity index
    """
    return index_rows(root_dataset(samples), brain_key, set(samples.values("id")))
