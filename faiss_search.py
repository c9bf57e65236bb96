"""The approximate candidate search of :mod:`neighbor_search`: an
inverted-file index (faiss ``IndexIVF`` with float16 vectors) queried by
range search, much faster than the exact tiles for large ``n``, but a pair
whose two samples fall in distant index cells can be missed. Every candidate
is re-measured exactly by :class:`neighbor_search.PairSearch`.
"""

import numpy as np

from .neighbor_search import PairSearch, unit_rows, max_norm
from .progress import Progress

try:
    import faiss
except ImportError:  # optional: the exact search covers everything
    faiss = None

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


def _faiss_rows(rows: np.ndarray, metric: str) -> np.ndarray:
    """Contiguous float32 rows, scaled to unit length for cosine, so that
    squared euclidean distance = 2 * cosine distance."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    return unit_rows(rows) if metric == "cosine" else rows


def _faiss_batches(x: np.ndarray, metric: str):
    """Yields ``(start, rows)`` over ``x`` in batches of :func:`_faiss_rows`:
    never more than one batch is copied."""
    for start in range(0, len(x), FAISS_BATCH):
        yield start, _faiss_rows(x[start : start + FAISS_BATCH], metric)


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


class FaissSearch(PairSearch):
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

    def _candidate_batches(self, max_dist, nearest=None):
        """Yields, batch by batch, the pairs of a range search a margin wider
        than ``max_dist``. Without ``y``: pairs ``i < j`` (found from either
        side, so a pair may come twice). All of them, also with ``nearest``:
        the caller cuts them back."""
        if self.metric == "cosine":
            radius = 2.0 * (max_dist + FAISS_MARGIN)
        else:
            norm = max_norm(self.x) if self.y is None else max_norm(self.x, self.y)
            radius = (max_dist + FAISS_MARGIN * norm) ** 2
        for start, rows in self._batches():
            lims, _, ids = self.index.range_search(rows, radius)
            i = np.repeat(np.arange(start, start + len(rows)), np.diff(lims).astype(np.int64))
            if self.y is not None:
                yield i, ids
            else:
                i, j = np.minimum(i, ids), np.maximum(i, ids)
                yield i[i < j], j[i < j]

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
