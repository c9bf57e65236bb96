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

from . import backend_search, similarity
from .neighbors import Groups, assign_groups, exact_distances, paired_only, search_duplicates
from .pair_checks import PairChecks
from .progress import Progress
from .results import (
    GroupCounts,
    Result,
    SampleCollection,
    Workflow,
    replace_fields,
    require_samples,
    new_run,
    root_dataset,
    sample_id_array,
    write_values,
)

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
DEFAULT_FRACTION = 0.1
GROUP_FIELD = "approx_dup_group_id"
DIST_FIELD = "approx_dup_dist"
SCORE_FIELD = "approx_dup_score"  # verification score with the representative (1: same photo)
RUN_FIELD = "approx_dup_run"
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
    run_field=RUN_FIELD,
    result_fields=(GROUP_FIELD, DIST_FIELD, SCORE_FIELD, RUN_FIELD),
)


@dataclass
class ApproxFindResult(Result):
    """What a find run found."""

    num_images_with_approx_dups: int
    num_dups: int
    num_groups: int
    threshold: Optional[float]
    num_not_indexed: int
    num_degenerate: int = 0  # all-zero embeddings, left out of groups
    fraction_reached: Optional[float] = None  # fraction mode: share of duplicates found
    note: str = ""  # what to know about the result: a fraction not reached, rows left out
    verified: bool = False  # candidate pairs were confirmed by comparing the images
    num_rejected: int = 0  # candidate pairs verification found to be different photos
    num_kept_apart: int = 0  # candidate pairs the review's "not duplicates" marks kept apart


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
    verify: Optional[bool] = None,
    mirror: bool = True,
    search: str = "auto",
) -> ApproxFindResult:
    """Groups the near duplicates among ``samples`` and saves the result views.

    Writes ``approx_dup_group_id`` (the representative's sample id),
    ``approx_dup_dist`` (distance to the representative) and, when verified,
    ``approx_dup_score`` on grouped samples, replacing any previous result,
    and saves ``approx_dup_view`` and ``approx_dup_groups_view``. Pairs the
    review marked "not duplicates" are never grouped.

    Args:
        samples: the dataset or view to search
        brain_key: a sample-level similarity index of the dataset
        method: "threshold" or "fraction"
        threshold: distance threshold, for method "threshold"
        fraction: fraction of samples to mark as duplicates, for "fraction"
        progress: optional ``callback(fraction, label)``
        verify: confirm each candidate pair by comparing the two images
            (:mod:`verification`); None: on for the pixel index only
        mirror: with ``verify``, a mirrored copy is the same photo
        search: where the neighbour search runs: "memory" (the vectors are
            pulled into this process), "backend" (the similarity backend
            answers batches of nearest-neighbour queries: threshold mode
            only), or "auto" (see :func:`backend_search.choose_search`)

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
    if verify is None:
        verify = similarity.index_kind(config) == "pixels"
    if _searches_in_backend(dataset, brain_key, config, search, len(samples)):
        if method != "threshold":
            raise ValueError("method_choices must be 'threshold' when the backend searches (search)")
        return _find_in_backend(samples, brain_key, threshold, progress, verify, mirror)
    rows = similarity.index_rows(dataset, brain_key, set(samples.values("id")), config)
    if not rows.sample_ids:
        raise ValueError(f"None of the samples are in similarity index '{brain_key}'")
    checks = PairChecks(samples, rows.sample_ids, verify, mirror, progress)
    found = search_duplicates(
        rows.embeddings,
        rows.metric,
        threshold=threshold if method == "threshold" else None,
        fraction=fraction if method == "fraction" else None,
        progress=progress,
        pair_filter=checks,
        nearest=checks.nearest,
    )
    found = checks.joined(found, lambda a, b: exact_distances(rows.embeddings, a, b, rows.metric))
    counts = _save_groups(dataset, rows.sample_ids, found, checks.member_scores(found.rep) if verify else None)
    logger.info("Found %d images in %d near-duplicate groups", *counts)
    return ApproxFindResult(
        num_images_with_approx_dups=counts.num_in_groups,
        num_dups=counts.num_dups,
        num_groups=counts.num_groups,
        threshold=_readable(found.threshold),
        num_not_indexed=len(samples) - len(rows.sample_ids),
        num_degenerate=found.num_degenerate,
        fraction_reached=found.fraction_reached,
        note=found.note,
        verified=verify,
        num_rejected=checks.num_rejected,
        num_kept_apart=checks.num_kept_apart,
    )


def _readable(threshold: Optional[float]) -> Optional[float]:
    """A tuned threshold to 4 significant digits, for the output."""
    return None if threshold is None else float(f"{threshold:.4g}")


def _searches_in_backend(dataset: fo.Dataset, brain_key: str, config, search: str, n: int) -> bool:
    """Whether the backend runs the search (an index of this process's own
    backends is searched in memory under "auto", without loading it)."""
    if search != "backend" and config.method in backend_search.LOCAL_BACKENDS:
        return False
    index = dataset.load_brain_results(brain_key)
    return backend_search.choose_search(search, index, n) == "backend"


def _find_in_backend(samples: SampleCollection, brain_key: str, threshold: float, progress: Progress,
                     verify: bool, mirror: bool) -> ApproxFindResult:
    """The find, with the pairs found by the similarity backend: only the
    candidate pairs come into this process, never all the vectors. (So
    groups that verified pairs link are not joined here: the distances to a
    new representative would need the vectors.)"""
    dataset = root_dataset(samples)
    index = dataset.load_brain_results(brain_key)
    all_ids = sample_id_array(samples)
    pairs = backend_search.backend_pairs(index, all_ids, threshold, progress=progress)
    members, pairs = paired_only(pairs)
    ids = [x.decode() for x in all_ids[members]]
    checks = PairChecks(samples, ids, verify, mirror, progress)
    found = assign_groups(len(ids), checks(pairs), threshold)
    counts = _save_groups(dataset, ids, found, checks.member_scores(found.rep) if verify else None)
    logger.info("Found %d images in %d near-duplicate groups (backend search)", *counts)
    return ApproxFindResult(
        num_images_with_approx_dups=counts.num_in_groups,
        num_dups=counts.num_dups,
        num_groups=counts.num_groups,
        threshold=threshold,
        num_not_indexed=max(0, len(all_ids) - index.total_index_size),
        verified=verify,
        num_rejected=checks.num_rejected,
        num_kept_apart=checks.num_kept_apart,
    )


def _save_groups(dataset: fo.Dataset, ids: list, found: Groups, scores: Optional[list] = None) -> GroupCounts:
    """Replaces the stored groups with ``found`` (and the members'
    verification ``scores``, if any) and saves both views."""
    fields = [(GROUP_FIELD, fo.StringField), (DIST_FIELD, fo.FloatField), (RUN_FIELD, fo.StringField)]
    if scores is not None or dataset.has_sample_field(SCORE_FIELD):
        fields.append((SCORE_FIELD, fo.FloatField))
    replace_fields(dataset, tuple(fields))
    run = new_run(dataset, WORKFLOW)
    members = np.nonzero(found.rep >= 0)[0]
    values = {GROUP_FIELD: [ids[r] for r in found.rep[members]], DIST_FIELD: found.dist[members].tolist(),
              RUN_FIELD: [run] * len(members)}
    if scores is not None:
        values[SCORE_FIELD] = scores
    write_values(dataset, values, [ids[k] for k in members])
    dataset.save_view(APPROX_DUP_VIEW, approx_dup_view(dataset, run), overwrite=True)
    dataset.save_view(APPROX_DUP_GROUPS_VIEW, WORKFLOW.groups_view(dataset), overwrite=True)
    return GroupCounts(len(members), int((found.rep[members] == members).sum()))


def approx_dup_view(dataset: fo.Dataset, run: str) -> fo.DatasetView:
    """The samples the find ``run`` grouped, ordered by group,
    representative first, then by distance. A match and a sort: constant
    size at any dataset size."""
    is_member = F("_id").to_string() != F(GROUP_FIELD)
    return dataset.match(WORKFLOW.run_match(run)).sort_by(
        [(GROUP_FIELD, 1), (is_member, 1), (DIST_FIELD, 1)]
    )


def approx_dup_groups_view(dataset: fo.Dataset) -> fo.DatasetView:
    """The saved ``approx_dup_groups_view``: dynamic groups for the App.

    Raises:
        ValueError: if find has not been run
    """
    return WORKFLOW.groups_view(dataset)
