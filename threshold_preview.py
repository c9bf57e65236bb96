"""The find form's threshold preview: each sample's nearest-neighbour
distance as a histogram, and what a threshold would find, cached between
form updates so that typing another threshold costs no new search.
"""

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np

import fiftyone as fo

from . import leakage, similarity
from .neighbors import Pairs, find_pairs, greedy_duplicates, nearest_neighbor_distances
from .results import SampleCollection, dataset_name, root_dataset

HISTOGRAM_BINS = 40
CACHE_SIZE = 4


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


class _CachedSearch:
    """What a preview keeps between form updates: the nearest distances, and
    the pairs within the largest threshold asked so far."""

    def __init__(self, nearest: np.ndarray):
        self.nearest = nearest
        self.pairs: Optional[Pairs] = None
        self.max_dist = -1.0


_CACHE: "OrderedDict[tuple, _CachedSearch]" = OrderedDict()


def _fingerprint(samples: Optional[SampleCollection]) -> tuple:
    if samples is None:
        return ()
    stages = [] if isinstance(samples, fo.Dataset) else samples._serialize()
    stages = [{k: v for k, v in stage.items() if k != "_uuid"} for stage in stages]
    return dataset_name(samples), json.dumps(stages, sort_keys=True, default=str), len(samples)


def threshold_preview(
    samples: SampleCollection,
    brain_key: str,
    threshold: float,
    references: Optional[SampleCollection] = None,
) -> ThresholdPreview:
    """The nearest-neighbour distance histogram of ``samples`` (to each
    other, or to ``references``) and the counts at ``threshold``.

    The search is cached per brain run, scope and size (the last
    :data:`CACHE_SIZE`): typing another threshold re-counts in memory; only
    a larger threshold than any before searches pairs again.

    Raises:
        ValueError: on a bad brain key
    """
    dataset = root_dataset(samples)
    run_time = str(dataset.get_brain_info(brain_key).timestamp)
    key = (brain_key, run_time, _fingerprint(samples), _fingerprint(references))
    search = _CACHE.pop(key, None)
    embeddings = None
    if search is None:
        embeddings, metric = _preview_embeddings(samples, brain_key, references)
        search = _CachedSearch(nearest_neighbor_distances(embeddings[0], metric, references=embeddings[1]))
    _CACHE[key] = search
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
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
        rows = similarity.load_index_embeddings(samples, brain_key)
        return (rows.embeddings, None), rows.metric
    scope = leakage.check_scope(samples, references)
    rows = leakage.leak_embeddings(samples, references, brain_key, scope)
    return (rows.queries, rows.references), rows.metric
