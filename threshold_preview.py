"""The find form's threshold preview: each sample's nearest-neighbour
distance as a histogram, and what a threshold would find, cached between
form updates so that typing another threshold costs no new search.
"""

import json
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import numpy as np

import fiftyone as fo

from . import leakage, similarity
from .neighbors import (Pairs, degenerate_rows, find_pairs, greedy_duplicates, max_norm,
                        nearest_neighbor_distances, row_norms, tune_threshold)
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
    the pairs within the largest distance asked so far."""

    def __init__(self, nearest: np.ndarray, diameter: float, num_degenerate: int):
        self.nearest = nearest
        self.diameter = diameter  # the largest possible distance
        self.num_degenerate = num_degenerate
        self.pairs: Optional[Pairs] = None
        self.max_dist = -1.0


_CACHE: "OrderedDict[tuple, _CachedSearch]" = OrderedDict()


def _fingerprint(samples: Optional[SampleCollection]) -> tuple:
    if samples is None:
        return ()
    stages = [] if isinstance(samples, fo.Dataset) else samples._serialize()
    stages = [{k: v for k, v in stage.items() if k != "_uuid"} for stage in stages]
    return dataset_name(samples), json.dumps(stages, sort_keys=True, default=str), len(samples)


class _Scope:
    """The samples a preview is about, their cached search, and their
    embeddings, loaded only when a search has to run."""

    def __init__(self, samples: SampleCollection, brain_key: str,
                 references: Optional[SampleCollection] = None):
        self.samples, self.brain_key, self.references = samples, brain_key, references
        run_time = str(root_dataset(samples).get_brain_info(brain_key).timestamp)
        key = (brain_key, run_time, _fingerprint(samples), _fingerprint(references))
        self.search = _CACHE.pop(key, None) or self._new_search()
        _CACHE[key] = self.search
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)

    @cached_property
    def embeddings(self) -> tuple:
        """``((queries, references or None), metric)``."""
        return _preview_embeddings(self.samples, self.brain_key, self.references)

    def _new_search(self) -> _CachedSearch:
        (queries, refs), metric = self.embeddings
        diameter = 2.0 * (1.0 if metric == "cosine" else max_norm(queries))  # within queries
        num_degenerate = int(degenerate_rows(row_norms(queries)).sum())
        return _CachedSearch(nearest_neighbor_distances(queries, metric, references=refs),
                             diameter, num_degenerate)

    def pairs_within(self, dist: float) -> Pairs:
        """The pairs within ``dist`` at least; searches only beyond the
        largest distance searched so far."""
        if dist > self.search.max_dist:
            (queries, _), metric = self.embeddings
            self.search.pairs = find_pairs(queries, metric, dist)
            self.search.max_dist = dist
        return self.search.pairs


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
    scope = _Scope(samples, brain_key, references)
    nearest = scope.search.nearest
    within = nearest <= threshold
    if references is not None:
        num_dups = int(within.sum())
    else:
        num_dups = int(greedy_duplicates(len(within), scope.pairs_within(threshold), threshold).sum())
    finite = nearest[np.isfinite(nearest)]
    counts, edges = (np.histogram(finite, bins=HISTOGRAM_BINS) if len(finite) else ([], []))
    return ThresholdPreview(list(map(float, edges)), list(map(int, counts)), int(within.sum()), num_dups)


def fraction_threshold(samples: SampleCollection, brain_key: str, fraction: float) -> Optional[float]:
    """The threshold a find in fraction mode settles on: the brain's
    bisection (:func:`neighbors.tune_threshold`) on the cached pairs, widened
    until more than the wanted duplicates are within reach. None when the
    fraction asks for no duplicates. A verified find may then confirm fewer.

    Raises:
        ValueError: on a bad brain key
    """
    scope = _Scope(samples, brain_key)
    search = scope.search
    n = len(search.nearest)
    m = n - search.num_degenerate
    aim = min(m - round((1.0 - fraction) * m), max(m - 1, 0))  # as the find counts
    if aim <= 0:
        return None
    dist = _first_guess(search, aim)
    while True:
        pairs = scope.pairs_within(dist)
        if dist >= search.diameter or greedy_duplicates(n, pairs, dist).sum() > aim:
            return tune_threshold(n, pairs, n - aim, dist)
        dist = min(2.0 * dist, search.diameter)


def _first_guess(search: _CachedSearch, num_dups: int) -> float:
    """The distance within which ``2 * num_dups`` samples have their nearest
    neighbour (duplicates come in groups of two or more)."""
    finite = np.sort(search.nearest[np.isfinite(search.nearest)])
    if not len(finite):
        return search.diameter
    guess = float(finite[min(2 * num_dups, len(finite)) - 1])
    return min(max(guess, 1e-6 * search.diameter), search.diameter)


def _preview_embeddings(samples, brain_key: str, references) -> tuple:
    """``((queries, references or None), metric)`` for a preview."""
    if references is None:
        rows = similarity.load_index_embeddings(samples, brain_key)
        return (rows.embeddings, None), rows.metric
    scope = leakage.check_scope(samples, references)
    rows = leakage.leak_embeddings(samples, references, brain_key, scope)
    return (rows.queries, rows.references), rows.metric
