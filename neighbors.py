"""Near-duplicate search on embeddings: exact blocked search for pairs within
a distance, and the grouping rule of fiftyone-brain's ``find_duplicates``:

-   walk the samples in index order; a sample not yet marked as a duplicate
    is kept, and every later sample within the threshold of it is marked;
-   each duplicate joins the group of its nearest kept sample, which is the
    group's representative;
-   in fraction mode the threshold is bisected, as the brain does, until the
    wanted number of samples are duplicates; the bisection runs on pairs
    found once, not on new searches.

Memory stays bounded: the distance matrix is visited one tile at a time.
"""

from typing import Callable, NamedTuple, Optional

import numpy as np

TILE_ROWS = 2048
TILE_COLS = 8192
PAIR_CHUNK = 1 << 16

Progress = Optional[Callable[[float, str], None]]


class Pairs(NamedTuple):
    """Candidate pairs ``i < j`` (positions in index order) and their distances,
    sorted by ``i``."""

    i: np.ndarray
    j: np.ndarray
    dist: np.ndarray


class Groups(NamedTuple):
    """The grouping of ``n`` samples at one threshold.

    ``rep[k]`` is the position of the representative of sample ``k``'s group
    (``k`` itself for a representative) or -1 when ``k`` is in no group;
    ``dist[k]`` is the distance to the representative.
    """

    rep: np.ndarray
    dist: np.ndarray
    threshold: Optional[float]


def _prepare(embeddings: np.ndarray, metric: str) -> tuple:
    """float32 rows ready for matrix products, plus squared norms for euclidean."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms == 0, 1, norms), None
    return x, np.einsum("ij,ij->i", x, x)


def _distance_tiles(x: np.ndarray, sq_x, y=None, sq_y=None, progress: Progress = None):
    """Yields ``(row0, col0, tile)`` over the matrix of approximate distances
    (cosine distance, or squared euclidean distance) between rows of ``x``
    and rows of ``y``; without ``y``, over the upper triangle of ``x`` against
    itself, self-distances set to inf. Never holds more than one tile.

    The float32 matrix-product form loses precision for close pairs; callers
    re-measure what they keep with :func:`exact_distances`.
    """
    triangle = y is None
    if triangle:
        y, sq_y = x, sq_x
    n = len(x)
    for row0 in range(0, n, TILE_ROWS):
        rows = x[row0 : row0 + TILE_ROWS]
        for col0 in range(row0 if triangle else 0, len(y), TILE_COLS):
            tile = rows @ y[col0 : col0 + TILE_COLS].T
            if sq_x is None:
                np.subtract(1.0, tile, out=tile)
            else:
                tile *= -2.0
                tile += sq_x[row0 : row0 + len(rows), None]
                tile += sq_y[None, col0 : col0 + tile.shape[1]]
            if triangle and col0 == row0:
                diag = np.arange(min(len(rows), tile.shape[1]))
                tile[diag, diag] = np.inf
            yield row0, col0, tile
        if progress:
            done = min(n, row0 + TILE_ROWS)
            share = (done / n) * (2 - done / n) if triangle else done / n
            progress(share, f"compared {done}/{n} samples")


def _tile_limit(max_dist: float, *sq_norms) -> float:
    """The tile value under which a pair may be within ``max_dist``, with a
    margin for float32 rounding."""
    if sq_norms[0] is None:
        return max_dist + 1e-4
    return max_dist**2 + 1e-4 * max(float(sq.max(initial=0.0)) for sq in sq_norms)


def exact_distances(x: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str, y=None) -> np.ndarray:
    """Distances between prepared rows ``x[i]`` and ``y[j]`` (``y`` defaults
    to ``x``), in float64."""
    y = x if y is None else y
    out = np.empty(len(i), dtype=np.float64)
    for start in range(0, len(i), PAIR_CHUNK):
        a = x[i[start : start + PAIR_CHUNK]].astype(np.float64)
        b = y[j[start : start + PAIR_CHUNK]].astype(np.float64)
        if metric == "cosine":
            out[start : start + len(a)] = 1.0 - np.einsum("ij,ij->i", a, b)
        else:
            out[start : start + len(a)] = np.linalg.norm(a - b, axis=1)
    return out


def find_pairs(
    embeddings: np.ndarray,
    metric: str,
    max_dist: float,
    progress: Progress = None,
    references: Optional[np.ndarray] = None,
) -> Pairs:
    """All pairs within ``max_dist`` of each other, by exact blocked search.

    Args:
        embeddings: ``n x d`` array
        metric: "cosine" or "euclidean"
        max_dist: the largest distance kept
        progress: optional ``callback(fraction, label)``
        references: optional ``m x d`` array; if given, the pairs are
            ``(i, j)`` with ``embeddings[i]`` near ``references[j]``, instead
            of pairs ``i < j`` within ``embeddings``

    Returns:
        :class:`Pairs`, with distances re-measured in float64
    """
    x, sq_x = _prepare(embeddings, metric)
    y, sq_y = (None, None) if references is None else _prepare(references, metric)
    limit = _tile_limit(max_dist, sq_x) if y is None else _tile_limit(max_dist, sq_x, sq_y)
    found = [(np.empty(0, np.int64), np.empty(0, np.int64))]
    for row0, col0, tile in _distance_tiles(x, sq_x, y, sq_y, progress):
        r, c = np.nonzero(tile <= limit)
        if y is None:
            upper = c + col0 > r + row0
            r, c = r[upper], c[upper]
        found.append((r + row0, c + col0))
    i, j = (np.concatenate(parts) for parts in zip(*found))
    dist = exact_distances(x, i, j, metric, y)
    close = dist <= max_dist
    i, j, dist = i[close], j[close], dist[close]
    order = np.lexsort((j, i))
    return Pairs(i[order], j[order], dist[order])


def nearest_neighbor_distances(
    embeddings: np.ndarray,
    metric: str,
    progress: Progress = None,
    references: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Each sample's distance to its nearest other sample, or to its nearest
    reference if ``references`` are given (inf when there is none)."""
    x, sq_x = _prepare(embeddings, metric)
    y, sq_y = (None, None) if references is None else _prepare(references, metric)
    n = len(x)
    best = np.full(n, np.inf, dtype=np.float32)
    nearest = np.full(n, -1)
    for row0, col0, tile in _distance_tiles(x, sq_x, y, sq_y, progress):
        _keep_nearest(tile, 1, best[row0:], nearest[row0:], col0)
        if y is None:
            _keep_nearest(tile, 0, best[col0:], nearest[col0:], row0)
    found = nearest >= 0
    dist = np.full(n, np.inf)
    dist[found] = exact_distances(x, np.nonzero(found)[0], nearest[found], metric, y)
    return dist


def _keep_nearest(tile, axis, best, nearest, offset):
    """Updates running minima along one axis of a tile (in place)."""
    arg = tile.argmin(axis=axis)
    value = np.take_along_axis(tile, np.expand_dims(arg, axis), axis).squeeze(axis)
    size = len(value)
    better = value < best[:size]
    best[:size][better] = value[better]
    nearest[:size][better] = arg[better] + offset


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
) -> Groups:
    """Groups near duplicates by a distance threshold or a wanted fraction.

    Args:
        embeddings: ``n x d`` array, in index order
        metric: "cosine" or "euclidean"
        threshold: the distance under which samples are duplicates
        fraction: instead of ``threshold``, the fraction of samples that
            should be duplicates
        progress: optional ``callback(fraction, label)``

    Returns:
        :class:`Groups`
    """
    n = len(embeddings)
    if fraction is None:
        return assign_groups(n, find_pairs(embeddings, metric, threshold, progress), threshold)
    num_keep = int(round((1.0 - fraction) * n))
    if num_keep >= n:
        return Groups(np.full(n, -1), np.zeros(n, np.float32), None)
    pairs, max_dist = _pairs_for_fraction(embeddings, metric, n - num_keep, progress)
    threshold = tune_threshold(n, pairs, num_keep, max_dist)
    return assign_groups(n, pairs, threshold)


def _pairs_for_fraction(embeddings, metric, num_dups, progress):
    """Pairs up to a distance at which more than ``num_dups`` samples are
    duplicates (or up to the largest possible distance).

    The first guess is the distance within which ``2 * num_dups`` samples have
    a neighbour: near duplicates come in groups of two or more.
    """
    n = len(embeddings)
    nearest = np.sort(nearest_neighbor_distances(embeddings, metric, progress))
    diameter = 2.0 * (1.0 if metric == "cosine" else float(np.linalg.norm(embeddings, axis=1).max()))
    max_dist = float(nearest[min(2 * num_dups, n) - 1]) or diameter * 1e-6
    while True:
        pairs = find_pairs(embeddings, metric, max_dist, progress)
        if max_dist >= diameter or greedy_duplicates(n, pairs, max_dist).sum() > num_dups:
            return pairs, max_dist
        max_dist = min(2.0 * max_dist, diameter)
