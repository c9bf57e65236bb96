"""Near-duplicate groups from candidate pairs, with the grouping rule of
fiftyone-brain's ``find_duplicates``:

-   walk the samples in index order; a sample not yet marked as a duplicate
    is kept, and every later sample within the threshold of it is marked;
-   each duplicate joins the group of its nearest kept sample, which is the
    group's representative;
-   in fraction mode the threshold is bisected, as the brain does, until the
    wanted number of samples are duplicates; the bisection runs on pairs
    found once, not on new searches, and ends within a bounded number of
    steps: a fraction that no threshold reaches gives the closest result,
    and says so;
-   all-zero (degenerate) rows have no direction: they are never grouped,
    only counted; rows holding a NaN or inf are an error.

The pairs come from :mod:`neighbor_search`. Everything here is plain numpy.
"""

import logging
from typing import Callable, NamedTuple, Optional

import numpy as np

from .neighbor_search import (  # noqa: F401  (re-exported: the search API)
    Pairs,
    PairSearch,
    choose_method,
    degenerate_rows,
    exact_distances,
    find_pairs,
    make_search,
    max_norm,
    nearest_neighbor_distances,
    require_finite,
    row_norms,
)
from .progress import Progress

logger = logging.getLogger(__name__)

# threshold evaluations fraction mode makes at most: the brain's bisection
# needs about 80 (doubling, then halving down to float precision)
MAX_TUNING_STEPS = 200


class Groups(NamedTuple):
    """The grouping of ``n`` samples at one threshold.

    ``rep[k]`` is the position of the representative of sample ``k``'s group
    (``k`` itself for a representative) or -1 when ``k`` is in no group;
    ``dist[k]`` is the distance to the representative.

    ``num_degenerate`` rows were all-zero and left out of groups; in
    fraction mode ``fraction_reached`` is the share of the other rows that
    are duplicates; ``note`` says what the caller should know ("" if
    nothing): a fraction that was not reached, rows left out.
    """

    rep: np.ndarray
    dist: np.ndarray
    threshold: Optional[float]
    num_degenerate: int = 0
    fraction_reached: Optional[float] = None
    note: str = ""


def nearest_matches(pairs: Pairs) -> Pairs:
    """For each query ``i`` of a cross search, its nearest reference ``j``
    (ties: the smaller ``j``): one pair per query that has any."""
    order = np.lexsort((pairs.j, pairs.dist, pairs.i))
    first = order[np.unique(pairs.i[order], return_index=True)[1]]
    return Pairs(pairs.i[first], pairs.j[first], pairs.dist[first])


def paired_only(pairs: Pairs) -> tuple:
    """The samples that are in any pair, and the pairs renumbered to
    positions among them (order kept, so grouping them gives the same groups
    as grouping all samples: a sample in no pair is in no group).

    Returns:
        ``(members, pairs)``: the sorted original positions and the
        renumbered :class:`Pairs`
    """
    members, renumbered = np.unique(np.concatenate([pairs.i, pairs.j]), return_inverse=True)
    i, j = np.split(renumbered.astype(np.int64), 2)
    return members, Pairs(i, j, pairs.dist)


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


def join_linked_groups(found: Groups, i: np.ndarray, j: np.ndarray,
                       distance: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Groups:
    """``found`` with every two groups that a pair ``(i[k], j[k])`` links
    joined into one, represented by the earliest of their representatives;
    a sample in no group joins the group of a sample it is paired with (two
    samples in no group stay so: the greedy rule left them apart).

    For confirmed pairs (each one checked by comparing the two images): the
    greedy rule splits the copies of one photo into several groups when
    some copies were not confirmed with each other (a crop and a rotated
    copy share too little), although each was confirmed with another copy;
    and it leaves a copy out of every group when the one sample it was
    confirmed with is itself another sample's duplicate.

    Args:
        found: the grouping
        i: first positions of the linking pairs
        j: second positions
        distance: ``distance(a, b)`` of position arrays, to re-measure the
            members whose representative changes

    Returns:
        :class:`Groups`
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, rep = len(found.rep), found.rep
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    own = np.where(rep >= 0, rep, np.arange(n))  # the group of each sample, or itself
    links = (own[i] != own[j]) & ((rep[i] >= 0) | (rep[j] >= 0))
    if not links.any():
        return found
    graph = coo_matrix((np.ones(int(links.sum())), (own[i[links]], own[j[links]])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    in_link = np.zeros(n, dtype=bool)
    in_link[i[links]] = in_link[j[links]] = True
    members = np.nonzero((rep >= 0) | in_link)[0]
    earliest = np.full(n, n, dtype=np.int64)
    np.minimum.at(earliest, component[own[members]], own[members])
    new_rep, new_dist = rep.copy(), found.dist.copy()
    new_rep[members] = earliest[component[own[members]]]
    moved = members[new_rep[members] != rep[members]]
    new_dist[moved] = distance(moved, new_rep[moved])
    return found._replace(rep=new_rep, dist=new_dist)


def tune_threshold(n: int, pairs: Pairs, num_keep: int, max_dist: float) -> float:
    """The threshold the brain's bisection settles on to keep ``num_keep`` of
    ``n`` samples, evaluated on stored pairs instead of new searches.

    Thresholds above ``max_dist`` (beyond the stored pairs) are taken to keep
    fewer than ``num_keep``, unless ``max_dist`` is the largest possible
    distance; the caller ensures one or the other. Unlike the brain's, the
    bisection always ends: after :data:`MAX_TUNING_STEPS` evaluations, or
    when no larger threshold can keep fewer samples, it returns the
    threshold that came closest to ``num_keep``.

    Args:
        n: the number of samples
        pairs: candidate pairs, within ``max_dist`` at least
        num_keep: the number of samples to keep (not duplicates)
        max_dist: the distance up to which ``pairs`` is complete

    Returns:
        the threshold, at most ``max_dist`` when ``num_keep`` is not reached
    """

    def kept(threshold):
        return n - int(greedy_duplicates(n, pairs, min(threshold, max_dist)).sum())

    threshold, low, high = 1.0, 0.0, None
    num_kept, closest = -1, None
    for _ in range(MAX_TUNING_STEPS):
        last, num_kept = num_kept, kept(threshold)
        if closest is None or abs(num_kept - num_keep) < closest[0]:
            closest = (abs(num_kept - num_keep), min(threshold, max_dist))
        if num_kept == num_keep or (
            num_kept == last and high is not None and high - low < 1e-6
        ):
            return threshold
        if num_kept < num_keep:
            high = threshold
            threshold = 0.5 * (low + threshold)
        elif high is None and threshold >= max_dist:
            break  # every pair is within: no larger threshold keeps fewer
        else:
            low = threshold
            threshold = 0.5 * (threshold + high) if high is not None else 2 * threshold
    return closest[1]


def search_duplicates(
    embeddings: np.ndarray,
    metric: str,
    threshold: Optional[float] = None,
    fraction: Optional[float] = None,
    progress: Progress = None,
    method: str = "auto",
    pair_filter: Optional[Callable[[Pairs], Pairs]] = None,
    nearest: Optional[int] = None,
) -> Groups:
    """Groups near duplicates by a distance threshold or a wanted fraction.

    All-zero rows (see :func:`degenerate_rows`) are never grouped: they are
    counted in ``num_degenerate``, and a fraction is one of the other rows.
    A ``pair_filter`` confirms the candidate pairs before they are grouped
    (in fraction mode, those within the tuned threshold).

    Args:
        embeddings: ``n x d`` array, in index order
        metric: "cosine" or "euclidean"
        threshold: the distance under which samples are duplicates
        fraction: instead of ``threshold``, the fraction of samples that
            should be duplicates
        progress: optional ``callback(fraction, label)``
        method: "auto", "exact" or "faiss"; see :func:`choose_method`
        pair_filter: optional ``pair_filter(pairs) -> pairs``, keeping the
            candidate pairs that are confirmed duplicates
        nearest: with ``pair_filter``, give it only the pairs among the
            ``nearest`` closest of either of their rows (see
            :func:`neighbor_search.find_pairs`)

    Returns:
        :class:`Groups`

    Raises:
        ValueError: if a row holds a NaN or inf
    """
    norms = row_norms(embeddings)
    require_finite(norms)
    skip = degenerate_rows(norms)
    confirm = pair_filter or (lambda pairs: pairs)
    if fraction is None:
        pairs = find_pairs(embeddings, metric, threshold, progress, method=method,
                           nearest=nearest if pair_filter else None)
        found = assign_groups(len(embeddings), confirm(_without(pairs, skip)), threshold)
    else:
        found = _fraction_groups(embeddings, metric, fraction, skip, progress, method)
        if pair_filter is not None and found.threshold is not None:
            pairs = find_pairs(embeddings, metric, found.threshold, method=method, nearest=nearest)
            regrouped = assign_groups(len(embeddings), confirm(_without(pairs, skip)), found.threshold)
            found = regrouped._replace(fraction_reached=_share_of_dups(regrouped, skip), note=found.note)
    num_degenerate = int(skip.sum())
    if num_degenerate:
        found = _with_note(found, f"{num_degenerate} all-zero embeddings have no direction "
                                  "and were left out of groups")
    return found._replace(num_degenerate=num_degenerate)


def _num_dups(found: Groups) -> int:
    """Grouped samples that are not representatives."""
    return int((found.rep >= 0).sum() - (found.rep == np.arange(len(found.rep))).sum())


def _share_of_dups(found: Groups, skip: np.ndarray) -> float:
    """Duplicates per row not in ``skip``."""
    return _num_dups(found) / max(1, len(skip) - int(skip.sum()))


def _with_note(found: Groups, note: str) -> Groups:
    """``found`` with ``note`` appended to its note, and logged."""
    logger.info("%s", note)
    return found._replace(note="; ".join(filter(None, (found.note, note))))


def _without(pairs: Pairs, skip: np.ndarray) -> Pairs:
    """The pairs of which neither row is marked in ``skip``."""
    if not skip.any():
        return pairs
    keep = ~(skip[pairs.i] | skip[pairs.j])
    return Pairs(pairs.i[keep], pairs.j[keep], pairs.dist[keep])


def _fraction_groups(
    embeddings: np.ndarray,
    metric: str,
    fraction: float,
    skip: np.ndarray,
    progress: Progress,
    method: str,
) -> Groups:
    """The groups at the threshold that makes ``fraction`` of the rows not in
    ``skip`` duplicates, or the closest reachable share (with a note).

    A group keeps one sample, so at most ``m - 1`` of ``m`` rows can be
    duplicates: the search aims at that when more are asked for.
    """
    n = len(embeddings)
    m = n - int(skip.sum())
    wanted = m - round((1.0 - fraction) * m)  # the brain's count
    aim = min(wanted, max(m - 1, 0))
    if aim == 0:
        found = Groups(np.full(n, -1), np.zeros(n, np.float32), None)
    else:
        search = make_search(embeddings, metric, None, method, progress)
        pairs, max_dist = _pairs_for_fraction(search, aim, skip)
        found = assign_groups(n, pairs, tune_threshold(n, pairs, n - aim, max_dist))
    num_dups = _num_dups(found)
    found = found._replace(fraction_reached=num_dups / m if m else 0.0)
    if num_dups == wanted:
        return found
    return _with_note(found, f"dup_fraction {fraction} asks for {wanted} duplicates among {m} "
                             f"samples; the closest reachable is {num_dups} ({num_dups / max(m, 1):.1%})")


def _pairs_for_fraction(search: PairSearch, num_dups: int, skip: np.ndarray) -> tuple:
    """Pairs (none with a row in ``skip``) up to a distance at which more
    than ``num_dups`` samples are duplicates, or up to the largest possible
    distance: at most about 20 searches, each twice as wide as the last.

    Returns:
        ``(pairs, max_dist)``
    """
    n = len(search.x)
    diameter = 2.0 * (1.0 if search.metric == "cosine" else max_norm(search.x))
    max_dist = _first_guess(search, num_dups, diameter)
    while True:
        pairs = _without(search.pairs(max_dist), skip)
        if max_dist >= diameter or greedy_duplicates(n, pairs, max_dist).sum() > num_dups:
            return pairs, max_dist
        max_dist = min(2.0 * max_dist, diameter)


def _first_guess(search: PairSearch, num_dups: int, diameter: float) -> float:
    """The distance within which ``2 * num_dups`` samples have a neighbour
    (near duplicates come in groups of two or more), kept between
    ``1e-6 * diameter`` and ``diameter``."""
    guess = search.nearest_quantile(min(2 * num_dups, len(search.x)))
    if not np.isfinite(guess):
        return diameter
    return min(max(guess, 1e-6 * diameter), diameter)
