"""Near-duplicate groups from candidate pairs, with the grouping rule of
fiftyone-brain's ``find_duplicates``:

-   walk the samples in index order; a sample not yet marked as a duplicate
    is kept, and every later sample within the threshold of it is marked;
-   each duplicate joins the group of its nearest kept sample, which is the
    group's representative;
-   in fraction mode the threshold is bisected, as the brain does, until the
    wanted number of samples are duplicates; the bisection runs on pairs
    found once, not on new searches.

The pairs come from :mod:`neighbor_search`. Everything here is plain numpy.
"""

from typing import NamedTuple, Optional

import numpy as np

from .neighbor_search import (  # noqa: F401  (re-exported: the search API)
    Pairs,
    PairSearch,
    choose_method,
    find_pairs,
    make_search,
    max_norm,
    nearest_neighbor_distances,
)
from .progress import Progress


class Groups(NamedTuple):
    """The grouping of ``n`` samples at one threshold.

    ``rep[k]`` is the position of the representative of sample ``k``'s group
    (``k`` itself for a representative) or -1 when ``k`` is in no group;
    ``dist[k]`` is the distance to the representative.
    """

    rep: np.ndarray
    dist: np.ndarray
    threshold: Optional[float]


def nearest_matches(pairs: Pairs) -> Pairs:
    """For each query ``i`` of a cross search, its nearest reference ``j``
    (ties: the smaller ``j``): one pair per query that has any."""
    order = np.lexsort((pairs.j, pairs.dist, pairs.i))
    first = order[np.unique(pairs.i[order], return_index=True)[1]]
    return Pairs(pairs.i[first], pairs.j[first], pairs.dist[first])


def greedy_duplicates(n: int, pairs: Pairs, threshold: float) -> np.ndarray:
    """The brain's greedy rule: in index order, a sample not yet marked is
    kept and marks every later sample within ``threshold``.

    Returns:
        a boolean array, True for duplicates
    """
    close = pairs.dist <= threshold
    i, j = pairs.i[close], pairs.j[close]
    is_dup = np.zeros(n, dtype=bool)
    sources, starts = np.unique(i, return_index=True)
    ends = np.append(starts[1:], len(i))
    for source, start, end in zip(sources.tolist(), starts.tolist(), ends.tolist()):
        if not is_dup[source]:
            is_dup[j[start:end]] = True
    return is_dup


def assign_groups(n: int, pairs: Pairs, threshold: float) -> Groups:
    """Groups each duplicate with its nearest kept sample (ties: the earlier)."""
    is_dup = greedy_duplicates(n, pairs, threshold)
    close = pairs.dist <= threshold
    dup = np.concatenate([pairs.j[close], pairs.i[close]])
    kept = np.concatenate([pairs.i[close], pairs.j[close]])
    dist = np.concatenate([pairs.dist[close], pairs.dist[close]])
    usable = is_dup[dup] & ~is_dup[kept]
    dup, kept, dist = dup[usable], kept[usable], dist[usable]
    order = np.lexsort((kept, dist, dup))
    dup, kept, dist = dup[order], kept[order], dist[order]
    first = np.unique(dup, return_index=True)[1]
    rep = np.full(n, -1, dtype=np.int64)
    rep_dist = np.zeros(n, dtype=np.float32)
    rep[dup[first]] = kept[first]
    rep_dist[dup[first]] = dist[first]
    reps = np.unique(kept[first])
    rep[reps] = reps
    return Groups(rep, rep_dist, threshold)


def tune_threshold(n: int, pairs: Pairs, num_keep: int, max_dist: float) -> float:
    """The threshold the brain's bisection settles on to keep ``num_keep`` of
    ``n`` samples, evaluated on stored pairs instead of new searches.

    Thresholds above ``max_dist`` (beyond the stored pairs) are taken to keep
    fewer than ``num_keep``, which the caller ensures for ``max_dist`` itself.
    """

    def kept(threshold):
        return n - int(greedy_duplicates(n, pairs, min(threshold, max_dist)).sum())

    threshold, low, high = 1.0, 0.0, None
    num_kept = -1
    while True:
        last, num_kept = num_kept, kept(threshold)
        if num_kept == num_keep or (
            num_kept == last and high is not None and high - low < 1e-6
        ):
            return threshold
        if num_kept < num_keep:
            high = threshold
            threshold = 0.5 * (low + threshold)
        else:
            low = threshold
            threshold = 0.5 * (threshold + high) if high is not None else 2 * threshold


def search_duplicates(
    embeddings: np.ndarray,
    metric: str,
    threshold: Optional[float] = None,
    fraction: Optional[float] = None,
    progress: Progress = None,
    method: str = "auto",
) -> Groups:
    """Groups near duplicates by a distance threshold or a wanted fraction.

    Args:
        embeddings: ``n x d`` array, in index order
        metric: "cosine" or "euclidean"
        threshold: the distance under which samples are duplicates
        fraction: instead of ``threshold``, the fraction of samples that
            should be duplicates
        progress: optional ``callback(fraction, label)``
        method: "auto", "exact" or "faiss"; see :func:`choose_method`

    Returns:
        :class:`Groups`
    """
    n = len(embeddings)
    if fraction is None:
        pairs = find_pairs(embeddings, metric, threshold, progress, method=method)
        return assign_groups(n, pairs, threshold)
    num_keep = int(round((1.0 - fraction) * n))
    if num_keep >= n:
        return Groups(np.full(n, -1), np.zeros(n, np.float32), None)
    search = make_search(embeddings, metric, None, method, progress)
    pairs, max_dist = _pairs_for_fraction(search, n - num_keep)
    threshold = tune_threshold(n, pairs, num_keep, max_dist)
    return assign_groups(n, pairs, threshold)


def _pairs_for_fraction(search: PairSearch, num_dups: int) -> tuple:
    """Pairs up to a distance at which more than ``num_dups`` samples are
    duplicates (or up to the largest possible distance).

    The first guess is the distance within which ``2 * num_dups`` samples have
    a neighbour: near duplicates come in groups of two or more.
    """
    n = len(search.x)
    diameter = 2.0 * (1.0 if search.metric == "cosine" else max_norm(search.x))
    max_dist = search.nearest_quantile(min(2 * num_dups, n)) or diameter * 1e-6
    while True:
        pairs = search.pairs(max_dist)
        if max_dist >= diameter or greedy_duplicates(n, pairs, max_dist).sum() > num_dups:
            return pairs, max_dist
        max_dist = min(2.0 * max_dist, diameter)
