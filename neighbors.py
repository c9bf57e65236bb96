"""Near-duplicate search on embeddings: exact blocked search for pairs within
a distance, and the grouping rule of fiftyone-brain's ``find_duplicates``:

-   walk the samples in index order; a sample not yet marked as a duplicate
    is kept, and every later sample within the threshold of it is marked;
-   each duplicate joins the group of its nearest kept sample, which is the
    group's representative;
-   in fraction mode the threshold is bisected, as the brain does, until the
    wanted number of samples are duplicates; the bisection runs on pairs
    found once, not on new searches.

Two searches find the candidate pairs, and both re-measure every pair they
report with :func:`exact_distances`:

-   ``"exact"``: the full distance matrix, visited one tile at a time
    (float32 matrix products); finds every pair;
-   ``"faiss"``: an approximate inverted-file index (faiss ``IndexIVF`` with
    float16 vectors) queried by range search; much faster for large ``n``,
    but a pair whose two samples fall in distant index cells can be missed.

``method="auto"`` (the default) takes faiss when it is installed and the exact
search would compare more than :data:`EXACT_MAX_COMPARISONS` pairs (about
30,000 samples), else the exact search.

Memory stays bounded: no ``n x n`` matrix is ever built.
"""

from typing import Callable, NamedTuple, Optional

import numpy as np

try:
    import faiss
except ImportError:  # optional: the exact search covers everything
    faiss = None

TILE_ROWS = 2048
TILE_COLS = 8192
PAIR_CHUNK = 1 << 12  # float64 rows re-measured at a time: little memory at 1M samples
EXACT_MAX_COMPARISONS = 450_000_000
FAISS_BATCH = 16384
# faiss index shape: 2 * sqrt(n) cells, 12 probed per query, k-means trained
# on 30 points per cell; measured duplicate-pair recall >= 0.99 at 50,000
# clustered 512-d embeddings, threshold 0.1 (see benchmarks/run.py)
FAISS_CELLS_PER_SQRT_N = 2
FAISS_NPROBE = 12
FAISS_TRAIN_PER_CELL = 30
FAISS_TRAIN_ITERATIONS = 10
# float16 storage moves an inner product of unit vectors by < 5e-4 (and a
# euclidean distance by < 5e-4 * norm); candidates are searched this much wider
FAISS_MARGIN = 1e-3
# fraction mode's first guess of a threshold comes from the nearest neighbours
# of this many sampled rows instead of all rows (exact search, large n)
GUESS_SAMPLE_ROWS = 2000

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
        return _unit(x), None
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


def _unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), in their dtype."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms).astype(rows.dtype)


def exact_distances(x: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str, y=None) -> np.ndarray:
    """Distances between rows ``x[i]`` and ``y[j]`` (``y`` defaults to ``x``),
    in float64; for cosine the rows need not be normalized."""
    y = x if y is None else y
    out = np.empty(len(i), dtype=np.float64)
    for start in range(0, len(i), PAIR_CHUNK):
        a = x[i[start : start + PAIR_CHUNK]].astype(np.float64)
        b = y[j[start : start + PAIR_CHUNK]].astype(np.float64)
        if metric == "cosine":
            out[start : start + len(a)] = 1.0 - np.einsum("ij,ij->i", _unit(a), _unit(b))
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
    if method == "faiss" and faiss is None:
        raise ImportError("The faiss search needs faiss: pip install faiss-cpu")
    if method != "auto":
        return method
    comparisons = n * num_references if num_references is not None else n * (n - 1) // 2
    return "faiss" if faiss is not None and comparisons > EXACT_MAX_COMPARISONS else "exact"


def find_pairs(
    embeddings: np.ndarray,
    metric: str,
    max_dist: float,
    progress: Progress = None,
    references: Optional[np.ndarray] = None,
    method: str = "auto",
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

    Returns:
        :class:`Pairs`, with distances re-measured in float64
    """
    return _search(embeddings, metric, references, method, progress).pairs(max_dist)


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
    return _search(embeddings, metric, references, method, progress).nearest_distances()


def _search(embeddings, metric, references, method, progress) -> "_Search":
    num_refs = None if references is None else len(references)
    if choose_method(method, len(embeddings), num_refs) == "faiss":
        return _FaissSearch(embeddings, references, metric, progress)
    return _ExactSearch(embeddings, references, metric, progress)


class _Search:
    """A search of the rows of ``x`` against ``y`` (or ``x`` itself): the
    subclass finds candidates, this class re-measures them exactly."""

    def __init__(self, x: np.ndarray, y: Optional[np.ndarray], metric: str, progress: Progress):
        self.x, self.y, self.metric, self.progress = x, y, metric, progress

    def pairs(self, max_dist: float) -> Pairs:
        i, j = self._candidates(max_dist)
        dist = exact_distances(self.x, i, j, self.metric, self.y)
        close = dist <= max_dist
        i, j, dist = i[close], j[close], dist[close]
        order = np.lexsort((j, i))
        return Pairs(i[order], j[order], dist[order])

    def nearest_distances(self) -> np.ndarray:
        nearest = self._nearest()
        found = nearest >= 0
        dist = np.full(len(self.x), np.inf)
        dist[found] = exact_distances(self.x, np.nonzero(found)[0], nearest[found], self.metric, self.y)
        return dist

    def nearest_quantile(self, count: int) -> float:
        """The distance within which ``count`` rows have a nearest neighbour."""
        return float(np.sort(self.nearest_distances())[count - 1])


class _ExactSearch(_Search):
    """Every pair, from float32 distance tiles."""

    def __init__(self, embeddings, references, metric, progress):
        x, self.sq_x = _prepare(embeddings, metric)
        y, self.sq_y = (None, None) if references is None else _prepare(references, metric)
        super().__init__(x, y, metric, progress)

    def _tiles(self):
        return _distance_tiles(self.x, self.sq_x, self.y, self.sq_y, self.progress)

    def _candidates(self, max_dist):
        """Every pair whose tile value may be within ``max_dist``."""
        sq_norms = (self.sq_x,) if self.y is None else (self.sq_x, self.sq_y)
        limit = _tile_limit(max_dist, *sq_norms)
        found = [(np.empty(0, np.int64), np.empty(0, np.int64))]
        for row0, col0, tile in self._tiles():
            r, c = np.nonzero(tile <= limit)
            if self.y is None:
                upper = c + col0 > r + row0
                r, c = r[upper], c[upper]
            found.append((r + row0, c + col0))
        return tuple(np.concatenate(parts) for parts in zip(*found))

    def _nearest(self):
        """The position of each row's nearest other row (or reference)."""
        n = len(self.x)
        best = np.full(n, np.inf, dtype=np.float32)
        nearest = np.full(n, -1)
        for row0, col0, tile in self._tiles():
            _keep_nearest(tile, 1, best[row0:], nearest[row0:], col0)
            if self.y is None:
                _keep_nearest(tile, 0, best[col0:], nearest[col0:], row0)
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


def _keep_nearest(tile, axis, best, nearest, offset):
    """Updates running minima along one axis of a tile (in place)."""
    arg = tile.argmin(axis=axis)
    value = np.take_along_axis(tile, np.expand_dims(arg, axis), axis).squeeze(axis)
    size = len(value)
    better = value < best[:size]
    best[:size][better] = value[better]
    nearest[:size][better] = arg[better] + offset


def _faiss_rows(rows: np.ndarray, metric: str) -> np.ndarray:
    """Contiguous float32 rows, scaled to unit length for cosine, so that
    squared euclidean distance = 2 * cosine distance."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    return _unit(rows) if metric == "cosine" else rows


def _faiss_batches(x: np.ndarray, metric: str):
    """Yields ``(start, rows)`` over ``x`` in batches of :func:`_faiss_rows`:
    never more than one batch is copied."""
    for start in range(0, len(x), FAISS_BATCH):
        yield start, _faiss_rows(x[start : start + FAISS_BATCH], metric)


def _max_norm(*arrays) -> float:
    return max(
        float(np.sqrt(np.einsum("ij,ij->i", batch, batch).max(initial=0.0)))
        for x in arrays
        for _, batch in _faiss_batches(x, "euclidean")
    )


def _faiss_index(base: np.ndarray, metric: str, progress: Progress):
    """An inverted-file index of ``base`` with float16 vectors, its k-means
    cells trained on a fixed sample."""
    n, dim = base.shape
    cells = max(1, int(FAISS_CELLS_PER_SQRT_N * np.sqrt(n)))
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatL2(dim), dim, cells, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_L2
    )
    index.cp.niter = FAISS_TRAIN_ITERATIONS
    index.cp.min_points_per_centroid = 1  # a sample of FAISS_TRAIN_PER_CELL is enough
    sample = np.random.default_rng(0).choice(n, min(n, FAISS_TRAIN_PER_CELL * cells), replace=False)
    if progress:
        progress(0.0, f"training an index of {cells} cells")
    index.train(_faiss_rows(base[np.sort(sample)], metric))
    for start, rows in _faiss_batches(base, metric):
        index.add(rows)
        if progress:
            progress(0.0, f"indexed {start + len(rows)}/{n} samples")
    index.nprobe = min(FAISS_NPROBE, cells)
    return index


class _FaissSearch(_Search):
    """Candidates from an inverted-file index of ``y`` (default ``x``), built
    once and searched as often as needed."""

    def __init__(self, embeddings, references, metric, progress):
        # no copy of float32 input: at a million rows it would double the memory
        x = np.asarray(embeddings, dtype=np.float32)
        y = None if references is None else np.asarray(references, dtype=np.float32)
        super().__init__(x, y, metric, progress)
        self.index = _faiss_index(x if y is None else y, metric, progress)

    def _batches(self):
        """Yields ``(start, rows)`` of ``x``, reporting progress."""
        for start, rows in _faiss_batches(self.x, self.metric):
            yield start, rows
            if self.progress:
                done = start + len(rows)
                self.progress(done / len(self.x), f"searched {done}/{len(self.x)} samples")

    def _candidates(self, max_dist):
        """Range search a margin wider than ``max_dist``. Without ``y``:
        unique pairs ``i < j``, found from either side."""
        if self.metric == "cosine":
            radius = 2.0 * (max_dist + FAISS_MARGIN)
        else:
            norm = _max_norm(self.x) if self.y is None else _max_norm(self.x, self.y)
            radius = (max_dist + FAISS_MARGIN * norm) ** 2
        found = [np.empty(0, np.int64)]
        for start, rows in self._batches():
            lims, _, ids = self.index.range_search(rows, radius)
            i = np.repeat(np.arange(start, start + len(rows)), np.diff(lims).astype(np.int64))
            found.append(self._keys(i, ids))
        keys = np.concatenate(found)
        if self.y is not None:
            return keys // len(self.y), keys % len(self.y)
        keys = np.unique(keys)
        return keys // len(self.x), keys % len(self.x)

    def _keys(self, i, j):
        """Pairs as ``i * m + j``, one int64 each; without ``y``, as ``i < j``
        (found from either side), self-matches dropped."""
        if self.y is not None:
            return i * len(self.y) + j
        i, j = np.minimum(i, j), np.maximum(i, j)
        return i[i < j] * len(self.x) + j[i < j]

    def _nearest(self):
        """An approximately nearest other row (or reference) of each row, -1
        if none was found."""
        nearest = np.full(len(self.x), -1)
        for start, rows in self._batches():
            _, ids = self.index.search(rows, 1 if self.y is not None else 2)
            if self.y is None:
                own = ids[:, 0] == np.arange(start, start + len(rows))
                ids = np.where(own, ids[:, 1], ids[:, 0])[:, None]
            nearest[start : start + len(rows)] = ids[:, 0]
        return nearest


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
    search = _search(embeddings, metric, None, method, progress)
    pairs, max_dist = _pairs_for_fraction(search, n - num_keep)
    threshold = tune_threshold(n, pairs, num_keep, max_dist)
    return assign_groups(n, pairs, threshold)


def _pairs_for_fraction(search: _Search, num_dups: int) -> tuple:
    """Pairs up to a distance at which more than ``num_dups`` samples are
    duplicates (or up to the largest possible distance).

    The first guess is the distance within which ``2 * num_dups`` samples have
    a neighbour: near duplicates come in groups of two or more.
    """
    n = len(search.x)
    diameter = 2.0 * (1.0 if search.metric == "cosine" else _max_norm(search.x))
    max_dist = search.nearest_quantile(min(2 * num_dups, n)) or diameter * 1e-6
    while True:
        pairs = search.pairs(max_dist)
        if max_dist >= diameter or greedy_duplicates(n, pairs, max_dist).sum() > num_dups:
            return pairs, max_dist
        max_dist = min(2.0 * max_dist, diameter)
