"""Approximate (near) duplicates from any FiftyOne similarity index.

The embeddings are taken from the index (``get_embeddings()``) and searched
by :mod:`neighbors`, so every backend works the same way, with the grouping
rule of ``SimilarityIndex.find_duplicates`` in fiftyone-brain.

Distances are in the index's metric (cosine distance = 1 - cosine similarity).
Like the brain's sklearn backend, sklearn indexes are mean-centered first.
"""

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

import fiftyone as fo
import fiftyone.brain as fob
import fiftyone.zoo as foz
from fiftyone import ViewField as F

from . import embedding_cache, groups, pixel_embeddings
from .neighbors import (
    Groups,
    Pairs,
    find_pairs,
    greedy_duplicates,
    nearest_neighbor_distances,
    search_duplicates,
)

DEFAULT_THRESHOLD = 0.5
DEFAULT_FRACTION = 0.1
GROUP_FIELD = "approx_dup_group_id"
DIST_FIELD = "approx_dup_dist"
APPROX_DUP_VIEW = "approx_dup_view"
APPROX_DUP_GROUPS_VIEW = "approx_dup_groups_view"
LEAK_REF_FIELD = "approx_leak_ref_id"
LEAK_DIST_FIELD = "approx_leak_dist"
APPROX_LEAK_VIEW = "approx_leak_view"
INDEX_SOURCES = ("existing", "pixels", "model")
HISTOGRAM_BINS = 40
PREVIEW_CACHE_SIZE = 4
FIND_LABEL = "Dedup: Find approximate duplicates"
SUPPORTED_METRICS = ("cosine", "euclidean")
NO_INDEX_MESSAGE = (
    "This dataset has no similarity index. Create one first, for example "
    "fiftyone.brain.compute_similarity(dataset, embeddings='my_embeddings', "
    "brain_key='sim'), or with a model"
)
MODEL_HELP = (
    "a FiftyOne zoo model name (fiftyone.zoo.list_zoo_models()), e.g. "
    "'clip-vit-base32-torch'; its weights are downloaded on first use"
)

Progress = Optional[Callable[[float, str], None]]


@dataclass
class ApproxFindResult(groups.Result):
    """What a find run found."""

    num_images_with_approx_dups: int
    num_dups: int
    num_groups: int
    threshold: Optional[float]
    num_not_indexed: int


@dataclass
class ApproxLeakResult(groups.Result):
    """What a leakage check found."""

    num_leaked: int
    num_references: int
    threshold: float
    num_not_indexed: int


@dataclass
class ThresholdPreview:
    """Each sample's nearest-neighbour distance as a histogram, and what a
    threshold would find.

    Attributes:
        bin_edges: ``HISTOGRAM_BINS + 1`` edges (empty if no sample has a
            neighbour)
        counts: samples per bin
        num_within: samples whose nearest neighbour is within the threshold
        num_dups: samples a deduplicate would remove at the threshold (the
            greedy rule); in a leakage check, the samples that leak
    """

    bin_edges: list
    counts: list
    num_within: int
    num_dups: int


@dataclass(frozen=True)
class NewIndex:
    """A similarity index a find creates first (see :func:`create_similarity_index`)."""

    source: str
    brain_key: str = pixel_embeddings.DEFAULT_BRAIN_KEY
    model_name: Optional[str] = None


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
    return _index_rows(groups.root_dataset(samples), brain_key, set(samples.values("id")))[:3]


def _index_rows(dataset: fo.Dataset, brain_key: str, wanted: set) -> tuple:
    """:func:`load_index_embeddings` for the samples of ``dataset`` whose ids
    are in ``wanted``, plus the float64 mean it subtracted (0 if none)."""
    config = _similarity_config(dataset, brain_key)
    embeddings, sample_ids = embedding_cache.index_embeddings(dataset, brain_key)
    in_scope = np.fromiter((i in wanted for i in sample_ids), bool, len(sample_ids))
    embeddings = np.asarray(embeddings[in_scope], dtype=np.float32)
    mean = np.float64(0.0)
    if config.method == "sklearn" and len(embeddings):
        mean = embeddings.mean(axis=0, dtype=np.float64)
        embeddings -= mean.astype(np.float32)
    return embeddings, list(np.asarray(sample_ids)[in_scope]), config.metric, mean


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


def find(
    samples: fo.core.collections.SampleCollection,
    brain_key: Optional[str],
    new_index: Optional[NewIndex] = None,
    references: Optional[fo.core.collections.SampleCollection] = None,
    method: str = "threshold",
    threshold: float = DEFAULT_THRESHOLD,
    fraction: float = DEFAULT_FRACTION,
    progress: Progress = None,
) -> groups.Result:
    """What the find operator runs: optionally creates a similarity index,
    then groups near duplicates, or checks leakage against ``references``.

    Args:
        samples: the dataset or view to search
        brain_key: an existing similarity index (ignored with ``new_index``)
        new_index: the index to create first, over the whole dataset
        references: compare against these instead (leakage check; method
            "threshold" only)
        method: "threshold" or "fraction"
        threshold: distance threshold
        fraction: fraction of duplicates, for method "fraction"
        progress: optional ``callback(fraction, label)``

    Returns:
        an :class:`ApproxFindResult`, or an :class:`ApproxLeakResult`

    Raises:
        ValueError: on bad input, before anything is changed
    """
    if references is not None and method != "threshold":
        raise ValueError("method_choices must be 'threshold' when comparing against references")
    if new_index is not None:
        _validate(method, threshold, fraction, "cosine")
        if len(samples) == 0:
            raise ValueError("There are no samples to search for duplicates")
        dataset = groups.root_dataset(samples)
        create_similarity_index(dataset, new_index.source, new_index.brain_key, new_index.model_name)
        brain_key = new_index.brain_key
    if references is not None:
        return find_approximate_leaks(samples, references, brain_key, threshold, progress)
    return find_approximate_duplicates(samples, brain_key, method, threshold, fraction, progress)


def _save_groups(dataset: fo.Dataset, ids: list, found: Groups) -> tuple:
    """Replaces the stored groups with ``found`` and saves both views."""
    groups.replace_fields(dataset, ((GROUP_FIELD, fo.StringField), (DIST_FIELD, fo.FloatField)))
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
    """How many samples a remove (or a deduplicate) would delete or tag now."""
    view = load_approx_dup_view(dataset)
    return groups.count_to_delete(view, GROUP_FIELD, keep_representative)


def clean_duplicates(dataset: fo.Dataset, cleanup: groups.Cleanup) -> int:
    """Deletes or tags every grouped sample, or all but one representative
    per group (see :class:`groups.Cleanup`; rule "search" keeps the
    representative the search chose).

    Returns:
        the number of samples deleted or tagged
    """
    view = load_approx_dup_view(dataset)
    return groups.apply_cleanup(dataset, view, GROUP_FIELD, (GROUP_FIELD, DIST_FIELD), cleanup)


def create_similarity_index(
    dataset: fo.Dataset, source: str, brain_key: str, model_name: Optional[str] = None
) -> None:
    """Indexes the whole dataset as a regular sklearn similarity brain run.

    Args:
        dataset: the dataset
        source: "pixels" (:mod:`pixel_embeddings`: no model, no download) or
            "model" (a FiftyOne zoo model)
        brain_key: the new brain key
        model_name: the zoo model, for source "model"

    Raises:
        ValueError: if the key is taken, the model is unknown or can't be
            loaded (e.g. offline), or an image can't be read; no brain run
            is left behind then
    """
    if not brain_key or brain_key in dataset.list_brain_runs():
        raise ValueError(f"new_brain_key '{brain_key}' is empty or already used; pick another")
    if source == "pixels":
        pixel_embeddings.compute_pixel_similarity(dataset, brain_key)
        return
    if source != "model":
        raise ValueError(f"index_source must be one of {INDEX_SOURCES}, got '{source}'")
    if model_name not in foz.list_zoo_models():
        raise ValueError(f"model_name '{model_name}' is not {MODEL_HELP}")
    try:
        fob.compute_similarity(dataset, model=model_name, brain_key=brain_key, backend="sklearn")
    except (OSError, ImportError) as e:
        if brain_key in dataset.list_brain_runs():
            dataset.delete_brain_run(brain_key)
        raise ValueError(
            f"Could not compute embeddings with zoo model '{model_name}' ({e}). Its weights are "
            "downloaded on first use, which needs internet; offline, use index_source='pixels'"
        ) from e


def _leak_embeddings(samples, references, brain_key: str) -> tuple:
    """Index embeddings of the ``samples`` outside ``references`` and of
    ``references``, centered on their common mean for sklearn indexes (as one
    search over both would be). Another dataset needs its own index under the
    same brain key.

    Returns:
        ``(queries, query_ids, refs, ref_ids, metric, num_targets)``, where
        ``num_targets`` counts the samples outside ``references``
    """
    dataset = groups.root_dataset(samples)
    shared = groups.shared_reference_ids(samples, references)
    targets = groups.ids_outside(samples, shared)
    if shared is not None:
        embeddings, ids, metric, _ = _index_rows(dataset, brain_key, targets | shared)
        is_ref = np.fromiter((i in shared for i in ids), bool, len(ids))
        ids = np.asarray(ids)
        return (embeddings[~is_ref], list(ids[~is_ref]), embeddings[is_ref], list(ids[is_ref]),
                metric, len(targets))
    queries, query_ids, metric, query_mean = _index_rows(dataset, brain_key, targets)
    refs, ref_ids, ref_metric, ref_mean = _index_rows(
        groups.root_dataset(references), brain_key, set(references.values("id"))
    )
    if metric != ref_metric or queries.shape[1:] != refs.shape[1:]:
        raise ValueError(
            f"Similarity index '{brain_key}' of '{groups.dataset_name(references)}' is not "
            "comparable with this dataset's (other metric or embedding size)"
        )
    mean = (len(queries) * query_mean + len(refs) * ref_mean) / max(1, len(queries) + len(refs))
    queries += (query_mean - mean).astype(np.float32)
    refs += (ref_mean - mean).astype(np.float32)
    return queries, query_ids, refs, ref_ids, metric, len(targets)


def find_approximate_leaks(
    samples: fo.core.collections.SampleCollection,
    references: fo.core.collections.SampleCollection,
    brain_key: str,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Progress = None,
) -> ApproxLeakResult:
    """Marks the samples of ``samples`` within ``threshold`` of a sample of
    ``references`` (e.g. train images near a test image) and saves
    ``approx_leak_view`` (sorted by distance).

    Writes ``approx_leak_ref_id`` (the nearest reference's sample id) and
    ``approx_leak_dist`` on leaking samples, replacing any previous check.
    Only ``samples`` is written; reference samples also in ``samples`` are
    not searched.

    Args:
        samples: the dataset or view to check
        references: a view of the same dataset or another dataset with a
            similarity index under the same ``brain_key``
        brain_key: a sample-level similarity index
        threshold: distance threshold in the index's metric
        progress: optional ``callback(fraction, label)``

    Returns:
        an :class:`ApproxLeakResult`

    Raises:
        ValueError: on a bad brain key or threshold, or nothing to compare;
            nothing is changed then
    """
    dataset = groups.root_dataset(samples)
    _validate("threshold", threshold, None, _similarity_config(dataset, brain_key).metric)
    queries, ids, refs, ref_ids, metric, num_targets = _leak_embeddings(samples, references, brain_key)
    if num_targets == 0:
        raise ValueError("There are no samples outside the references to check for leaks")
    if not ids or not ref_ids:
        raise ValueError(f"Samples or references are missing from similarity index '{brain_key}'")
    pairs = find_pairs(queries, metric, threshold, progress, references=refs)
    order = np.lexsort((pairs.j, pairs.dist, pairs.i))
    first = order[np.unique(pairs.i[order], return_index=True)[1]]
    leaked = [ids[k] for k in pairs.i[first]]
    groups.replace_fields(
        dataset, ((LEAK_REF_FIELD, fo.StringField), (LEAK_DIST_FIELD, fo.FloatField))
    )
    dataset.set_values(
        LEAK_REF_FIELD, dict(zip(leaked, (ref_ids[k] for k in pairs.j[first]))), key_field="id"
    )
    dataset.set_values(LEAK_DIST_FIELD, dict(zip(leaked, pairs.dist[first].tolist())), key_field="id")
    leak_view = dataset.exists(LEAK_REF_FIELD).sort_by([(LEAK_DIST_FIELD, 1), ("_id", 1)])
    dataset.save_view(APPROX_LEAK_VIEW, leak_view, overwrite=True)
    return ApproxLeakResult(
        num_leaked=len(leaked),
        num_references=len(references),
        threshold=threshold,
        num_not_indexed=num_targets - len(ids),
    )


class _Search:
    """What a threshold preview keeps between form updates: the nearest
    distances, and the pairs within the largest threshold asked so far."""

    def __init__(self, nearest: np.ndarray):
        self.nearest = nearest
        self.pairs: Optional[Pairs] = None
        self.max_dist = -1.0


_PREVIEWS: "OrderedDict[tuple, _Search]" = OrderedDict()


def _fingerprint(samples: Optional[fo.core.collections.SampleCollection]) -> tuple:
    if samples is None:
        return ()
    stages = [] if isinstance(samples, fo.Dataset) else samples._serialize()
    stages = [{k: v for k, v in stage.items() if k != "_uuid"} for stage in stages]
    return groups.dataset_name(samples), json.dumps(stages, sort_keys=True, default=str), len(samples)


def threshold_preview(
    samples: fo.core.collections.SampleCollection,
    brain_key: str,
    threshold: float,
    references: Optional[fo.core.collections.SampleCollection] = None,
) -> ThresholdPreview:
    """The nearest-neighbour distance histogram of ``samples`` (to each
    other, or to ``references``) and the counts at ``threshold``, for the
    find form.

    The search is cached per brain run, scope and size (the last
    :data:`PREVIEW_CACHE_SIZE`): typing another threshold re-counts in
    memory; only a larger threshold than any before searches pairs again.

    Raises:
        ValueError: on a bad brain key
    """
    dataset = groups.root_dataset(samples)
    run_time = str(dataset.get_brain_info(brain_key).timestamp)
    key = (brain_key, run_time, _fingerprint(samples), _fingerprint(references))
    search = _PREVIEWS.pop(key, None)
    embeddings = None
    if search is None:
        embeddings, metric = _preview_embeddings(samples, brain_key, references)
        search = _Search(nearest_neighbor_distances(embeddings[0], metric, references=embeddings[1]))
    _PREVIEWS[key] = search
    while len(_PREVIEWS) > PREVIEW_CACHE_SIZE:
        _PREVIEWS.popitem(last=False)
    within = search.nearest <= threshold
    if references is not None:
        num_dups = int(within.sum())
    else:
        if threshold > search.max_dist:
            if embeddings is None:
                embeddings, metric = _preview_embeddings(samples, brain_key, None)
            search.pairs = find_pairs(embeddings[0], metric, threshold)
            search.max_dist = threshold
        num_dups = int(greedy_duplicates(len(within), search.pairs, threshold).sum())
    finite = search.nearest[np.isfinite(search.nearest)]
    counts, edges = (np.histogram(finite, bins=HISTOGRAM_BINS) if len(finite) else ([], []))
    return ThresholdPreview(list(map(float, edges)), list(map(int, counts)), int(within.sum()), num_dups)


def _preview_embeddings(samples, brain_key: str, references) -> tuple:
    """``((queries, references or None), metric)`` for a preview."""
    if references is None:
        embeddings, _, metric = load_index_embeddings(samples, brain_key)
        return (embeddings, None), metric
    queries, _, refs, _, metric, _ = _leak_embeddings(samples, references, brain_key)
    return (queries, refs), metric
