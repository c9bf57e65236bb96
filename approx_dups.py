"""Approximate (near) duplicates from any FiftyOne similarity index: the find,
the fields it writes and the saved views.

The embeddings are taken from the index (:mod:`similarity`) and searched by
:mod:`neighbors`, so every backend works the same way, with the grouping rule
of ``SimilarityIndex.find_duplicates`` in fiftyone-brain.
"""

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

import fiftyone as fo
from fiftyone import ViewField as F

from . import similarity
from .neighbors import Groups, search_duplicates
from .progress import Progress
from .results import (
    GroupCounts,
    Result,
    SampleCollection,
    Workflow,
    replace_fields,
    require_samples,
    root_dataset,
    write_values,
)

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
DEFAULT_FRACTION = 0.1
GROUP_FIELD = "approx_dup_group_id"
DIST_FIELD = "approx_dup_dist"
APPROX_DUP_VIEW = "approx_dup_view"
APPROX_DUP_GROUPS_VIEW = "approx_dup_groups_view"
FIND_LABEL = "Dedup: Find approximate duplicates"
METHODS = ("threshold", "fraction")

WORKFLOW = Workflow(
    name="approximate",
    find_label=FIND_LABEL,
    view_name=APPROX_DUP_VIEW,
    group_field=GROUP_FIELD,
    group_order=DIST_FIELD,
    result_fields=(GROUP_FIELD, DIST_FIELD),
)


@dataclass
class ApproxFindResult(Result):
    """What a find run found."""

    num_images_with_approx_dups: int
    num_dups: int
    num_groups: int
    threshold: Optional[float]
    num_not_indexed: int


def validate_criteria(method: str, threshold: Optional[float], fraction: Optional[float],
                      metric: str) -> None:
    """Raises ValueError, naming the parameter, unless ``method`` and its
    value can be searched in ``metric``."""
    if method == "threshold":
        similarity.validate_threshold(threshold, metric)
    elif method == "fraction":
        if fraction is None or not 0.0 <= fraction < 1.0:
            raise ValueError(f"dup_fraction must be at least 0 and below 1, got {fraction}")
    else:
        raise ValueError(f"method_choices must be one of {METHODS}, got '{method}'")


def find_approximate_duplicates(
    samples: SampleCollection,
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
    dataset = root_dataset(samples)
    config = similarity.similarity_config(dataset, brain_key)
    validate_criteria(method, threshold, fraction, config.metric)
    require_samples(samples)
    rows = similarity.index_rows(dataset, brain_key, set(samples.values("id")), config)
    if not rows.sample_ids:
        raise ValueError(f"None of the samples are in similarity index '{brain_key}'")
    found = search_duplicates(
        rows.embeddings,
        rows.metric,
        threshold=threshold if method == "threshold" else None,
        fraction=fraction if method == "fraction" else None,
        progress=progress,
    )
    counts = _save_groups(dataset, rows.sample_ids, found)
    logger.info("Found %d images in %d near-duplicate groups", *counts)
    return ApproxFindResult(
        num_images_with_approx_dups=counts.num_in_groups,
        num_dups=counts.num_dups,
        num_groups=counts.num_groups,
        threshold=found.threshold,
        num_not_indexed=len(samples) - len(rows.sample_ids),
    )


def _save_groups(dataset: fo.Dataset, ids: list, found: Groups) -> GroupCounts:
    """Replaces the stored groups with ``found`` and saves both views."""
    replace_fields(dataset, ((GROUP_FIELD, fo.StringField), (DIST_FIELD, fo.FloatField)))
    members = np.nonzero(found.rep >= 0)[0]
    write_values(
        dataset,
        {GROUP_FIELD: [ids[r] for r in found.rep[members]], DIST_FIELD: found.dist[members].tolist()},
        [ids[k] for k in members],
    )
    dataset.save_view(APPROX_DUP_VIEW, approx_dup_view(dataset), overwrite=True)
    dataset.save_view(APPROX_DUP_GROUPS_VIEW, WORKFLOW.groups_view(dataset), overwrite=True)
    return GroupCounts(len(members), int((found.rep[members] == members).sum()))


def approx_dup_view(dataset: fo.Dataset) -> fo.DatasetView:
    """Grouped samples, ordered by group, representative first, then by
    distance. A match and a sort: constant size at any dataset size."""
    is_member = F("_id").to_string() != F(GROUP_FIELD)
    return dataset.exists(GROUP_FIELD).sort_by(
        [(GROUP_FIELD, 1), (is_member, 1), (DIST_FIELD, 1)]
    )


def approx_dup_groups_view(dataset: fo.Dataset) -> fo.DatasetView:
    """The saved ``approx_dup_groups_view``: dynamic groups for the App.

    Raises:
        ValueError: if find has not been run
    """
    return WORKFLOW.groups_view(dataset)
