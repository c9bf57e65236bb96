"""Approximate (near) duplicates from any FiftyOne similarity index.

The embeddings are taken from the index (``get_embeddings()``) and searched
by :mod:`neighbors`, so every backend works the same way, with the grouping
rule of ``SimilarityIndex.find_duplicates`` in fiftyone-brain.

Distances are in the index's metric (cosine distance = 1 - cosine similarity).
Like the brain's sklearn backend, sklearn indexes are mean-centered first.
"""

from dataclasses import asdict, dataclass
from typing import Callable, Optional

import numpy as np

import fiftyone as fo
from fiftyone import ViewField as F

from . import groups
from .neighbors import Groups, search_duplicates

DEFAULT_THRESHOLD = 0.5
DEFAULT_FRACTION = 0.1
GROUP_FIELD = "approx_dup_group_id"
DIST_FIELD = "approx_dup_dist"
APPROX_DUP_VIEW = "approx_dup_view"
APPROX_DUP_GROUPS_VIEW = "approx_dup_groups_view"
FIND_LABEL = "Dedup: Find approximate duplicates"
SUPPORTED_METRICS = ("cosine", "euclidean")
NO_INDEX_MESSAGE = (
    "This dataset has no similarity index. Create one first, for example "
    "fiftyone.brain.compute_similarity(dataset, embeddings='my_embeddings', "
    "brain_key='sim'), or with a model"
)

Progress = Optional[Callable[[float, str], None]]


@dataclass
class ApproxFindResult:
    """What a find run found."""

    num_images_with_approx_dups: int
    num_dups: int
    num_groups: int
    threshold: Optional[float]
    num_not_indexed: int

    def to_dict(self) -> dict:
        return asdict(self)


def similarity_brain_keys(dataset: fo.Dataset) -> list:
    """The brain keys of the dataset's sample-level similarity indexes."""
    return [
        key
        for key in dataset.list_brain_runs(type="similarity")
        if dataset.get_brain_info(key).config.patches_field is None
    ]


def load_index_embeddings(samples: fo.core.collections.SampleCollection, brain_key: str) -> tuple:
    """Loads the embeddings of ``samples`` from a similarity index.

    Args:
        samples: the dataset or view to search
        brain_key: the key of a sample-level similarity index

    Returns:
        ``(embeddings, sample_ids, metric)``: float32 embeddings in index
        order (mean-centered for sklearn indexes), restricted to ``samples``

    Raises:
        ValueError: if ``brain_key`` is not a usable similarity index
    """
    dataset = groups.root_dataset(samples)
    config = _similarity_config(dataset, brain_key)
    index = dataset.load_brain_results(brain_key)
    if index is None:
        raise ValueError(f"Similarity index '{brain_key}' has no results; compute it again")
    embeddings, sample_ids, _ = index.get_embeddings()
    wanted = set(samples.values("id"))
    in_scope = np.fromiter((i in wanted for i in sample_ids), bool, len(sample_ids))
    embeddings = np.asarray(embeddings[in_scope], dtype=np.float32)
    if config.method == "sklearn" and len(embeddings):
        embeddings -= embeddings.mean(axis=0, dtype=np.float64).astype(np.float32)
    return embeddings, list(np.asarray(sample_ids)[in_scope]), config.metric


def _similarity_config(dataset: fo.Dataset, brain_key: Optional[str]):
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


def _validate(method: str, threshold, fraction, metric: str) -> None:
    if method == "threshold":
        limit = 2.0 if metric == "cosine" else np.inf
        if threshold is None or not 0.0 <= threshold <= limit:
            raise ValueError(
                f"threshold_value must be between 0 and {limit} for metric '{metric}', got {threshold}"
            )
    elif method == "fraction":
        if fraction is None or not 0.0 <= fraction < 1.0:
            raise ValueError(f"dup_fraction must be at least 0 and below 1, got {fraction}")
    else:
        raise ValueError(f"method_choices must be 'threshold' or 'fraction', got '{method}'")


def find_approximate_duplicates(
    samples: fo.core.collections.SampleCollection,
    brain_key: str,
    method: str = "threshold",
    threshold: float = DEFAULT_THRESHOLD,
    fraction: float = DEFAULT_FRACTION,
    progress: Progress = None,
) -> ApproxFindResult:
    """Groups the near duplicates among ``samples`` and saves the result views.

    Writes ``approx_dup_group_id`` (the representative's sample id) and
    ``approx_dup_dist`` (distance to the representative) on grouped samples,
    replacing any previous result, and saves ``approx_dup_view`` and
    ``approx_dup_groups_view``.

    Args:
        samples: the dataset or view to search
        brain_key: a sample-level similarity index of the dataset
        method: "threshold" or "fraction"
        threshold: distance threshold, for method "threshold"
        fraction: fraction of samples to mark as duplicates, for "fraction"
        progress: optional ``callback(fraction, label)``

    Returns:
        an :class:`ApproxFindResult`

    Raises:
        ValueError: on a bad brain key, a bad parameter or no samples;
            nothing is changed then
    """
    dataset = groups.root_dataset(samples)
    metric = _similarity_config(dataset, brain_key).metric
    _validate(method, threshold, fraction, metric)
    if len(samples) == 0:
        raise ValueError("There are no samples to search for duplicates")
    embeddings, ids, metric = load_index_embeddings(samples, brain_key)
    if not ids:
        raise ValueError(f"None of the samples are in similarity index '{brain_key}'")
    found = search_duplicates(
        embeddings,
        metric,
        threshold=threshold if method == "threshold" else None,
        fraction=fraction if method == "fraction" else None,
        progress=progress,
    )
    num_in_groups, num_groups = _save_groups(dataset, ids, found)
    return ApproxFindResult(
        num_images_with_approx_dups=num_in_groups,
        num_dups=num_in_groups - num_groups,
        num_groups=num_groups,
        threshold=found.threshold,
        num_not_indexed=len(samples) - len(ids),
    )


def _save_groups(dataset: fo.Dataset, ids: list, found: Groups) -> tuple:
    """Replaces the stored groups with ``found`` and saves both views."""
    for field, ftype in ((GROUP_FIELD, fo.StringField), (DIST_FIELD, fo.FloatField)):
        if dataset.has_sample_field(field):
            dataset.exists(field).clear_sample_field(field)
        else:
            dataset.add_sample_field(field, ftype)
    members = np.nonzero(found.rep >= 0)[0]
    member_ids = [ids[k] for k in members]
    dataset.set_values(
        GROUP_FIELD, dict(zip(member_ids, (ids[r] for r in found.rep[members]))), key_field="id"
    )
    dataset.set_values(
        DIST_FIELD, dict(zip(member_ids, found.dist[members].tolist())), key_field="id"
    )
    dataset.save_view(APPROX_DUP_VIEW, approx_dup_view(dataset), overwrite=True)
    dataset.save_view(APPROX_DUP_GROUPS_VIEW, _grouped(approx_dup_view(dataset)), overwrite=True)
    return len(members), int((found.rep[members] == members).sum())


def approx_dup_view(dataset: fo.Dataset) -> fo.DatasetView:
    """Grouped samples, ordered by group, representative first, then by
    distance. A match and a sort: constant size at any dataset size."""
    is_member = F("_id").to_string() != F(GROUP_FIELD)
    return dataset.exists(GROUP_FIELD).sort_by(
        [(GROUP_FIELD, 1), (is_member, 1), (DIST_FIELD, 1)]
    )


def _grouped(view: fo.DatasetView) -> fo.DatasetView:
    return view.group_by(GROUP_FIELD, order_by=DIST_FIELD)


def load_approx_dup_view(dataset: fo.Dataset) -> fo.DatasetView:
    """The saved ``approx_dup_view``.

    Raises:
        ValueError: if find has not been run
    """
    return groups.load_result_view(dataset, APPROX_DUP_VIEW, FIND_LABEL)


def approx_dup_groups_view(dataset: fo.Dataset) -> fo.DatasetView:
    """The saved ``approx_dup_groups_view``: dynamic groups for the App."""
    return groups.load_result_view(dataset, APPROX_DUP_GROUPS_VIEW, FIND_LABEL)


def count_to_delete(dataset: fo.Dataset, keep_representative: bool) -> int:
    """How many samples a remove (or a deduplicate) would delete now."""
    view = load_approx_dup_view(dataset)
    return groups.count_to_delete(view, GROUP_FIELD, keep_representative)


def delete_duplicates(dataset: fo.Dataset, keep_representative: bool) -> int:
    """Deletes every grouped sample, or all but each group's representative,
    in one bulk delete.

    Returns:
        the number of samples deleted
    """
    view = load_approx_dup_view(dataset)
    return groups.delete_duplicates(
        dataset, view, GROUP_FIELD, (GROUP_FIELD, DIST_FIELD), keep_representative
    )
