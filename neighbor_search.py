"""Candidate pairs of embeddings within a distance, and nearest neighbours.

Two searches find the candidate pairs, and both re-measure every pair they
report with :func:`exact_distances`:

-   ``"exact"``: the full distance matrix, visited one tile at a time
    (float32 matrix products); finds every pair. For a threshold, the tiles
    come from a cheaper bound where it prunes (:mod:`bound_search`);
-   ``"faiss"`` (:mod:`faiss_search`): an approximate inverted-file index
    queried by range search; much faster for large ``n``, but a pair whose
    two samples fall in distant index cells can be missed.

``method="auto"`` (the default) takes faiss when it is installed and the exact
search would compare more than :data:`EXACT_MAX_COMPARISONS` pairs (about
55,000 samples), else the exact search.

Memory stays bounded: no ``n x n`` matrix is ever built.
"""

import logging
from typing import NamedTuple, Optional

import numpy as np

from .nearest_rows import FoundPairs, RowNearest, keep_nearest
from .progress import Progress

logger = logging.getLogger(__name__)

TILE_ROWS = 1024
TILE_COLS = 4096
PAIR_CHUNK = 1 << 12  # float64 rows re-measured at a time: little memory at 1M samples
EXACT_MAX_COMPARISONS = 1_500_000_000
# fraction mode's first guess of a threshold comes from the nearest neighbours
# of this many sampled rows instead of all rows (exact search, large n)
GUESS_SAMPLE_ROWS = 2000
# a row is degenerate (no direction: an all-zero embedding) when its norm is at
# most this share of the median norm of the non-zero rows
DEGENERATE_NORM_RATIO = 1e-6
MAX_LISTED_ROWS = 5  # rows an error message names
# a nearest search keeps this many times ``nearest`` neighbours of each row by
# tile value: float32 tile values may rank near-equal pairs differently than
# their re-measured distances do (of pairs at exactly equal distances, which are
# kept may differ from nearest_of_either's order by position)
TILE_NEAREST_MARGIN = 2


class Pairs(NamedTuple):
    """Candidate pairs ``i < j`` (positions in index order) and their distances,
    sorted by ``i``."""

    i: np.ndarray
    j: np.ndarray
    dist: np.ndarray


def _prepare(embeddings: np.ndarray, metric: str) -> tuple:
    """float32 rows ready for matrix products, plus squared norms for euclidean."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if metric == "cosine":
        return unit_rows(x), None
    return x, np.einsum("ij,ij->i", x, x)


def _distance_tiles(x: np.ndarray, sq_x, y=None, sq_y=None, progress: Progress = None):
    """Yields ``(row0, col0, tile)`` over the matrix of approximate distances
    (cosine distance, or squared euclidean distance) between rows of ``x``
    and rows of ``y``; without ``y``, over the upper triangle of ``x`` against
    itself, self-distances set to inf. Never holds more than one tile: each
    is written over the last (fresh memory for each would cost page faults
    that take as long as the products), so use a tile before the next.

    The float32 matrix-product form loses precision for close pairs; callers
    re-measure what they keep with :func:`exact_distances`.
    """
    triangle = y is None
    if triangle:
        y, sq_y = x, sq_x
    n = len(x)
    space = np.empty(min(n, TILE_ROWS) * min(len(y), TILE_COLS), dtype=np.float32)
    for row0 in range(0, n, TILE_ROWS):
        rows = x[row0 : row0 + TILE_ROWS]
        for col0 in range(row0 if triangle else 0, len(y), TILE_COLS):
            cols = y[col0 : col0 + TILE_COLS]
            tile = np.matmul(rows, cols.T, out=space[: len(rows) * len(cols)].reshape(len(rows), len(cols)))
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


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), in their dtype."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms).astype(rows.dtype)


def row_norms(x: np.ndarray) -> np.ndarray:
    """The euclidean norm of each row, in float64 (no overflow for large
    float32 values), one chunk of rows at a time.

    Args:
        x: ``n x d`` array

    Returns:
        ``n`` float64 norms: NaN or inf for rows holding a NaN or inf
    """
    out = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), PAIR_CHUNK):
        chunk = np.asarray(x[start : start + PAIR_CHUNK], dtype=np.float64)
        out[start : start + len(chunk)] = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
    return out


def degenerate_rows(norms: np.ndarray) -> np.ndarray:
    """Which rows have no direction: norm 0, or at most
    :data:`DEGENERATE_NORM_RATIO` of the median norm of the non-zero rows.

    Args:
        norms: row norms (see :func:`row_norms`); non-finite ones are not
            degenerate

    Returns:
        a boolean array, True for degenerate rows
    """
    finite = np.isfinite(norms)
    nonzero = norms[finite & (norms > 0)]
    scale = float(np.median(nonzero)) if len(nonzero) else 0.0
    return finite & (norms <= DEGENERATE_NORM_RATIO * scale)


def require_finite(norms: np.ndarray) -> None:
    """Raises ValueError, naming the first rows, if a norm is not finite.

    Args:
        norms: row norms (see :func:`row_norms`)

    Raises:
        ValueError: if a row holds a NaN or inf
    """
    bad = np.flatnonzero(~np.isfinite(norms))
    if len(bad):
        verb = "embedding is" if len(bad) == 1 else "embeddings are"
        raise ValueError(
            f"{len(bad)} {verb} not finite (NaN or inf), e.g. rows "
            f"{bad[:MAX_LISTED_ROWS].tolist()}; distances to them are undefined"
        )


def exact_distances(x: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str, y=None) -> np.ndarray:
    """Distances between rows ``x[i]`` and ``y[j]`` (``y`` defaults to ``x``),
    in float64; for cosine the rows need not be normalized."""
    y = x if y is None else y
    out = np.empty(len(i), dtype=np.float64)
    for start in range(0, len(i), PAIR_CHUNK):
        a = x[i[start : start + PAIR_CHUNK]].astype(np.float64)
        b = y[j[start : start + PAIR_CHUNK]].astype(np.float64)
        if metric == "cosine":
            out[start : start + len(a)] = 1.0 - np.einsum("ij,ij->i", unit_rows(a), unit_rows(b))
        else:
            out[start : start + len(a)] = np.linalg.norm(a - b, axis=1)
    return out


def choose_method(method: str, n: int, num_references: Optional[int] = None) -> str:
    """The search that ``method`` runs for ``n`` embeddings.

    Args:
        method: "auto", "exact" or "faiss"
        n: the number of embeddings
        num_references: the number of references of a cross search, if any

    Returns:
        "exact" or "faiss"

    Raises:
        ValueError: on an unknown method
        ImportError: if "faiss" is asked for and faiss is not installed
    """
    if method not in ("auto", "exact", "faiss"):
        raise ValueError(f"method must be 'auto', 'exact' or 'faiss', got '{method}'")
    from . import faiss_search  # here: faiss_search builds on this module

    if method == "faiss" and faiss_search.faiss is None:
        raise ImportError("The faiss search needs faiss: pip install faiss-cpu")
    if method != "auto":
        return method
    comparisons = n * num_references if num_references is not None else n * (n - 1) // 2
    return "faiss" if faiss_search.faiss is not None and comparisons > EXACT_MAX_COMPARISONS else "exact"


def find_pairs(
    embeddings: np.ndarray,
    metric: str,
    max_dist: float,
    progress: Progress = None,
    references: Optional[np.ndarray] = None,
    method: str = "auto",
    nearest: Optional[int] = None,
) -> Pairs:
    """The pairs within ``max_dist`` of each other.

    Args:
        embeddings: ``n x d`` array
        metric: "cosine" or "euclidean"
        max_dist: the largest distance kept
        progress: optional ``callback(fraction, label)``
        references: optional ``m x d`` array; if given, the pairs are
            ``(i, j)`` with ``embeddings[i]`` near ``references[j]``, instead
            of pairs ``i < j`` within ``embeddings``
        method: "auto", "exact" (every pair) or "faiss" (approximate
            candidates); see :func:`choose_method`
        nearest: if given, only the pairs among the ``nearest`` closest
            pairs of either of their rows (:func:`nearest_rows.nearest_of_either`), with
            memory to match: a loose ``max_dist`` may hold a large share of
            all pairs

    Returns:
        :class:`Pairs`, with distances re-measured in float64
    """
    return make_search(embeddings, metric, references, method, progress).pairs(max_dist, nearest)


def nearest_neighbor_distances(
    embeddings: np.ndarray,
    metric: str,
    progress: Progress = None,
    references: Optional[np.ndarray] = None,
    method: str = "auto",
) -> np.ndarray:
    """Each sample's distance to its nearest other sample, or to its nearest
    reference if ``references`` are given (inf when there is none).

    Args:
        embeddings: ``n x d`` array
        metric: "cosine" or "euclidean"
        progress: optional ``callback(fraction, label)``
        references: optional ``m x d`` array
        method: "auto", "exact" or "faiss"; faiss may find a neighbour that
            is not the nearest, so its distances are upper bounds

    Returns:
        ``n`` float64 distances, re-measured exactly
    """
    return make_search(embeddings, metric, references, method, progress).nearest_distances()


def make_search(
    embeddings: np.ndarray,
    metric: str,
    references: Optional[np.ndarray] = None,
    method: str = "auto",
    progress: Progress = None,
) -> "PairSearch":
    """The search ``method`` runs (see :func:`choose_method`), ready to be asked
    for pairs at any distance, or for nearest neighbours."""
    num_refs = None if references is None else len(references)
    chosen = choose_method(method, len(embeddings), num_refs)
    logger.info("Searching %d embeddings (%s, %s search)", len(embeddings), metric, chosen)
    if chosen == "faiss":
        from .faiss_search import FaissSearch

        return FaissSearch(embeddings, references, metric, progress)
    return _ExactSearch(embeddings, references, metric, progress)


class PairSearch:
    """A search of the rows of ``x`` against ``y`` (or ``x`` itself): the
    subclass finds candidates, this class re-measures them exactly."""

    def __init__(self, x: np.ndarray, y: Optional[np.ndarray], metric: str, progress: Progress):
        self.x, self.y, self.metric, self.progress = x, y, metric, progress

    def pairs(self, max_dist: float, nearest: Optional[int] = None) -> Pairs:
        """The pairs within ``max_dist``; with ``nearest``, only those among
        the ``nearest`` closest pairs of either of their two rows (see
        :func:`nearest_rows.nearest_of_either`), held to that while they are found, so
        memory stays at a few times ``nearest`` pairs per row however many
        pairs are within ``max_dist``."""
        found = FoundPairs(nearest, len(self.x if self.y is None else self.y))
        for i, j in self._candidate_batches(max_dist, nearest):
            dist = exact_distances(self.x, i, j, self.metric, self.y)
            close = dist <= max_dist
            found.add(i[close], j[close], dist[close])
        return Pairs(*found.pairs())

    def nearest_distances(self) -> np.ndarray:
        nearest = self._nearest()
        found = nearest >= 0
        dist = np.full(len(self.x), np.inf)
        dist[found] = exact_distances(self.x, np.nonzero(found)[0], nearest[found], self.metric, self.y)
        return dist

    def nearest_quantile(self, count: int) -> float:
        """The distance within which ``count`` rows have a nearest neighbour."""
        return float(np.sort(self.nearest_distances())[count - 1])


class _ExactSearch(PairSearch):
    """Every pair, from float32 distance tiles."""

    def __init__(self, embeddings, references, metric, progress):
        x, self.sq_x = _prepare(embeddings, metric)
        y, self.sq_y = (None, None) if references is None else _prepare(references, metric)
        super().__init__(x, y, metric, progress)

    def _tiles(self):
        return _distance_tiles(self.x, self.sq_x, self.y, self.sq_y, self.progress)

    def _candidate_batches(self, max_dist, nearest=None):
        """Yields, tile by tile, every pair whose tile value may be within
        ``max_dist``: from the bound of :mod:`bound_search` where it prunes
        enough, else from full rows. With ``nearest`` (full rows, no
        references), only each row's nearest few (:class:`nearest_rows.RowNearest`),
        all at the end."""
        from .bound_search import bound_rows  # bound_search builds on this module

        sq_norms = (self.sq_x,) if self.y is None else (self.sq_x, self.sq_y)
        limit = _tile_limit(max_dist, *sq_norms)
        if nearest is not None and self.y is None:
            yield self._nearest_pairs(limit, TILE_NEAREST_MARGIN * nearest)
            return
        x, y = bound_rows(self.x, self.y, self.sq_x, self.sq_y, limit) or (self.x, self.y)
        for row0, col0, tile in _distance_tiles(x, self.sq_x, y, self.sq_y, self.progress):
            # a flat index: np.nonzero on a 2-d mask took 16x longer
            r, c = np.divmod(np.flatnonzero(tile <= limit), tile.shape[1])
            if self.y is None:
                upper = c + col0 > r + row0
                r, c = r[upper], c[upper]
            yield r + row0, c + col0

    def _nearest_pairs(self, limit: float, count: int) -> tuple:
        """The pairs ``i < j`` among the ``count`` nearest rows after ``i``
        or before ``j`` (the sides of :func:`nearest_rows.nearest_of_either`) with a tile
        value within ``limit``."""
        after, before = RowNearest(len(self.x), count), RowNearest(len(self.x), count)
        for row0, col0, tile in self._tiles():
            if col0 == row0:  # pairs i < j only
                tile[np.tril_indices(len(tile), 0, tile.shape[1])] = np.inf
            after.add(row0, tile, col0)
            before.add(col0, tile, row0, by_column=True)
        (i1, j1), (i2, j2) = after.pairs(limit), before.pairs(limit)
        return np.concatenate([i1, i2]), np.concatenate([j1, j2])

    def _nearest(self):
        """The position of each row's nearest other row (or reference)."""
        n = len(self.x)
        best = np.full(n, np.inf, dtype=np.float32)
        nearest = np.full(n, -1)
        for row0, col0, tile in self._tiles():
            keep_nearest(tile, 1, best[row0:], nearest[row0:], col0)
            if self.y is None:
                keep_nearest(tile, 0, best[col0:], nearest[col0:], row0)
        return nearest

    def nearest_quantile(self, count: int) -> float:
        """Estimated from a sample of rows when a full pass would cost more than
        a tenth of one: only a first guess depends on it."""
        n = len(self.x)
        if self.y is not None or n < 10 * GUESS_SAMPLE_ROWS:
            return super().nearest_quantile(count)
        rows = np.sort(np.random.default_rng(0).choice(n, GUESS_SAMPLE_ROWS, replace=False))
        sq_rows = None if self.sq_x is None else self.sq_x[rows]
        best = np.full(len(rows), np.inf, dtype=np.float32)
        for row0, col0, tile in _distance_tiles(self.x[rows], sq_rows, self.x, self.sq_x):
            own = rows[row0 : row0 + len(tile)] - col0
            mine = np.nonzero((own >= 0) & (own < tile.shape[1]))[0]
            tile[mine, own[mine]] = np.inf
            span = best[row0 : row0 + len(tile)]
            np.minimum(span, tile.min(axis=1), out=span)
        if self.sq_x is not None:  # tiles hold squared euclidean distances
            best = np.sqrt(np.maximum(best, 0.0))
        return float(np.quantile(best, min(1.0, count / n)))


def max_norm(*arrays) -> float:
    """The largest row norm of the arrays, read in chunks (no float copy of
    a whole array)."""
    return max(float(row_norms(x).max(initial=0.0)) for x in arrays)
