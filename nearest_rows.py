"""Each row's nearest few: which found pairs are among the closest of their
rows, and the running nearest neighbours of rows over distance tiles, for
:mod:`neighbor_search` and the verification rounds of :mod:`pair_checks`."""

from typing import Optional

import numpy as np

# found pairs held before those beyond each row's nearest few are dropped
COMPACT_PAIRS = 4_000_000
# a tile whose closer values are fewer than 1 in this many is merged value by value (RowNearest)
SPARSE_SHARE = 16


def nearest_of_either(i: np.ndarray, j: np.ndarray, dist: np.ndarray, k: int) -> np.ndarray:
    """Which pairs ``i < j`` are among the ``k`` closest pairs of row ``i``
    with the rows after it, or among the ``k`` closest of row ``j`` with the
    rows before it (ties broken by position): up to ``2 k`` pairs per row, its
    nearest on either side of it in index order.

    Args:
        i: first rows of the pairs
        j: second rows
        dist: their distances
        k: pairs kept per row and side

    Returns:
        a boolean mask over the pairs
    """
    keep = np.zeros(len(i), dtype=bool)
    for ends in (np.asarray(i), np.asarray(j)):
        keep |= _rank_by_end(ends, dist) < k
    return keep


def nearest_of_each(i: np.ndarray, j: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Which pairs are the closest pair of one of their two rows, among all
    of that row's pairs (ties broken by position): at most one per row.

    Args:
        i: first rows of the pairs
        j: second rows
        dist: their distances

    Returns:
        a boolean mask over the pairs
    """
    rank = _rank_by_end(np.concatenate([i, j]), np.concatenate([dist, dist]))
    return (rank[: len(i)] == 0) | (rank[len(i) :] == 0)


def _rank_by_end(ends: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Each pair's rank among the pairs of the same end, closest first."""
    order = np.lexsort((dist, ends))
    sorted_ends = ends[order]
    rank = np.empty(len(ends), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.searchsorted(sorted_ends, sorted_ends, side="left")
    return rank


class FoundPairs:
    """Pairs gathered batch by batch (a pair may come twice), kept unique;
    with ``nearest``, cut back to :func:`nearest_of_either` whenever they
    pass :data:`COMPACT_PAIRS`: a pair left out then could only fall further
    back as more pairs are found."""

    def __init__(self, nearest: Optional[int], width: int):
        self.nearest, self.width = nearest, width
        self.parts = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))]
        self.size, self.limit = 0, COMPACT_PAIRS

    def add(self, i: np.ndarray, j: np.ndarray, dist: np.ndarray) -> None:
        self.parts.append((i, j, dist))
        self.size += len(i)
        if self.nearest is not None and self.size > self.limit:
            self._compact()
            self.limit = max(COMPACT_PAIRS, 2 * self.size)

    def pairs(self) -> tuple:
        """``(i, j, dist)`` of the pairs, unique, sorted by ``(i, j)``."""
        self._compact()
        return self.parts[0]

    def _compact(self) -> None:
        i, j, dist = (np.concatenate(part) for part in zip(*self.parts))
        _, first = np.unique(i * self.width + j, return_index=True)  # sorted by (i, j)
        i, j, dist = i[first], j[first], dist[first]
        if self.nearest is not None:
            keep = nearest_of_either(i, j, dist, self.nearest)
            i, j, dist = i[keep], j[keep], dist[keep]
        self.parts, self.size = [(i, j, dist)], len(i)


class RowNearest:
    """The ``count`` smallest tile values met so far in each of ``n`` rows,
    and their columns: the running nearest neighbours of each row."""

    def __init__(self, n: int, count: int):
        self.value = np.full((n, count), np.inf, dtype=np.float32)
        self.column = np.full((n, count), -1, dtype=np.int64)

    def add(self, row0: int, tile: np.ndarray, col0: int, by_column: bool = False) -> None:
        """Takes in a tile whose row ``r`` is row ``row0 + r`` and column
        ``c`` column ``col0 + c``; with ``by_column``, the tile's columns are
        the rows (``tile.T``, without making that copy)."""
        worst = self.value[row0 : row0 + tile.shape[1 if by_column else 0]].max(axis=1)
        closer = tile < (worst[None, :] if by_column else worst[:, None])
        found = np.flatnonzero(closer)  # row-major over the contiguous tile
        if len(found) * SPARSE_SHARE < tile.size:  # past a row's first tiles, few values are closer
            r, c = np.divmod(found, tile.shape[1])
            if by_column:
                r, c = c, r
            self._merge(r + row0, tile.ravel()[found], c + col0)
        else:
            rows = np.flatnonzero(closer.any(axis=0 if by_column else 1))
            self._select(rows, row0, tile.T if by_column else tile, col0)

    def _merge(self, rows: np.ndarray, value: np.ndarray, column: np.ndarray) -> None:
        """Merges values met in ``rows`` (one per entry, each closer than its
        row's worst kept) into their rows' nearest."""
        count = self.value.shape[1]
        touched = np.unique(rows)
        rows = np.concatenate([np.repeat(touched, count), rows])
        value = np.concatenate([self.value[touched].ravel(), value])
        column = np.concatenate([self.column[touched].ravel(), column])
        rank = _rank_by_end(rows, value)
        keep = rank < count  # count per touched row: its kept values and the new ones, nearest first
        self.value[rows[keep], rank[keep]] = value[keep]
        self.column[rows[keep], rank[keep]] = column[keep]

    def _select(self, closer: np.ndarray, row0: int, tile: np.ndarray, col0: int) -> None:
        """Keeps the nearest of the kept and the tile's values, in the rows
        ``closer`` of the tile, by partial sorts of whole rows."""
        count = self.value.shape[1]
        if not len(closer):
            return
        tile, rows = tile[closer], closer + row0
        take = min(count, tile.shape[1])
        best = np.argpartition(tile, take - 1, axis=1)[:, :take]
        value = np.concatenate([self.value[rows], np.take_along_axis(tile, best, axis=1)], axis=1)
        column = np.concatenate([self.column[rows], best + col0], axis=1)
        keep = np.argpartition(value, count - 1, axis=1)[:, :count]
        self.value[rows] = np.take_along_axis(value, keep, axis=1)
        self.column[rows] = np.take_along_axis(column, keep, axis=1)

    def pairs(self, limit: float) -> tuple:
        """The pairs ``(i, j)``, ``i < j``, of each row and its nearest with
        a value within ``limit`` (a pair may come twice)."""
        rows = np.repeat(np.arange(len(self.value)), self.value.shape[1])
        column, within = self.column.ravel(), self.value.ravel() <= limit
        rows, column = rows[within], column[within]
        return np.minimum(rows, column), np.maximum(rows, column)


def keep_nearest(tile, axis, best, nearest, offset):
    """Updates running minima along one axis of a tile (in place)."""
    arg = tile.argmin(axis=axis)
    value = np.take_along_axis(tile, np.expand_dims(arg, axis), axis).squeeze(axis)
    size = len(value)
    better = value < best[:size]
    best[:size][better] = value[better]
    nearest[:size][better] = arg[better] + offset
