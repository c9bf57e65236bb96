"""Near-duplicate pairs found by the similarity backend itself.

The in-memory path (:mod:`neighbors`) pulls every vector of an index into
this process. That stops working where a backend cannot hand back all its
vectors (Milvus, Pinecone) and where the vectors don't fit one machine. Here
the backend answers batches of k-nearest-neighbour queries instead, and this
process only keeps one batch of answers and the candidate pairs.

-   Each sample of the search asks for its ``k`` nearest neighbours; when
    the ``k``-th is still within the distance, the sample asks again with
    twice ``k`` (up to the backend's limit), so that no pair within the
    distance is cut off by ``k``.
-   Backends report similarities or distances in their own conventions (Milvus
    cosine *similarity*, squared euclidean distances from Milvus, LanceDB and
    Redis, ...): :data:`backend_distances.CONVERSIONS` turns each into the index's distance
    (cosine distance = 1 - cosine similarity, or euclidean distance).
-   On an exact backend (sklearn, pgvector without an ANN index) the pairs are
    the in-memory path's; on an approximate one (HNSW, IVF) a pair can be
    missed, never invented: measure pair recall (``benchmarks/backend_search.py``).
-   The sklearn backend searches the mean-centered vectors, like the brain's
    sklearn backend and the in-memory path for sklearn indexes.

How each backend is asked: :mod:`backend_searchers`.
"""

from typing import Callable

import numpy as np

from . import backend_searchers
from .backend_distances import CONVERSIONS
from .neighbors import Pairs
from .progress import Progress

SEARCHES = ("auto", "memory", "backend")
DEFAULT_BATCH_SIZE = 256
DEFAULT_K = 16
# backends that keep their vectors in this process or in local files; the
# others are services
LOCAL_BACKENDS = ("sklearn", "lancedb")
# backends whose get_embeddings() refuses to return all vectors
NO_FULL_EMBEDDINGS = ("milvus", "pinecone")
# auto: a service index of at least this many samples is searched in the backend.
# Measured (benchmarks/backend_pgvector.py, 2 cores shared with other jobs, load ~10):
# pgserver's PostgreSQL 16 + pgvector 0.6.2 with its HNSW index, 10,000 x 256:
# pulling every vector (get_embeddings) 2.4 s (0.24 ms per sample) + exact
# in-memory search 1.9 s, against 14.2 s for the backend search (700 queries/s,
# pair recall 1.0); Milvus Lite answers ~300 queries/s (benchmarks/backend_search.py).
# Pulling is cheaper in time at any size; what the in-memory path can't afford
# beyond a few million samples is memory: 2,000,000 x 512 from get_embeddings()
# is 8 GB as float64 (plus a float32 copy), while the backend path stays under
# 1 GB. Below this size auto pulls the vectors.
BACKEND_MIN_SAMPLES = 2_000_000


def _method(index) -> str:
    return index.config.method


def can_return_embeddings(index) -> bool:
    """Whether ``index.get_embeddings()`` can return all of the index's
    vectors (Milvus and Pinecone cannot).

    Args:
        index: a ``fiftyone.brain.SimilarityIndex``

    Returns:
        True or False
    """
    return _method(index) not in NO_FULL_EMBEDDINGS


def choose_search(search: str, index, n: int) -> str:
    """Where the near-duplicate search of ``n`` samples of ``index`` runs.

    ``"auto"`` takes the backend where the index cannot return all its
    vectors, and for service backends (not sklearn or LanceDB) from
    :data:`BACKEND_MIN_SAMPLES` samples; else memory.

    Args:
        search: "auto", "memory" or "backend"
        index: a ``fiftyone.brain.SimilarityIndex``
        n: the number of samples to search

    Returns:
        "memory" (pull the vectors, :mod:`neighbors`) or "backend"
        (:func:`backend_pairs`)

    Raises:
        ValueError: on an unknown ``search``, "memory" for an index that
            can't return all its vectors, or "backend" for a backend or
            metric this module can't convert
    """
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got '{search}'")
    method = _method(index)
    if search == "memory" and not can_return_embeddings(index):
        raise ValueError(
            f"A {method} index can't return all its vectors to search them in memory; "
            "use search='backend'"
        )
    if search == "backend" or (search == "auto" and not can_return_embeddings(index)):
        _conversion(index)
        return "backend"
    if search == "auto" and method not in LOCAL_BACKENDS and n >= BACKEND_MIN_SAMPLES:
        if (method, index.config.metric) in CONVERSIONS:
            return "backend"
    return "memory"


def _conversion(index) -> Callable:
    key = (_method(index), index.config.metric)
    if key not in CONVERSIONS:
        raise ValueError(
            f"The neighbour search can't run in a '{key[0]}' index with metric '{key[1]}'; "
            f"supported: {sorted(CONVERSIONS)}"
        )
    return CONVERSIONS[key]


def backend_pairs(
    index,
    sample_ids: np.ndarray,
    max_dist: float,
    progress: Progress = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    k: int = DEFAULT_K,
) -> Pairs:
    """The pairs of ``sample_ids`` within ``max_dist`` of each other, found by
    the index's backend. Reads the index only.

    Args:
        index: a sample-level ``fiftyone.brain.SimilarityIndex`` (metric
            "cosine" or "euclidean")
        sample_ids: the ids to search, in index order (position ``p`` is the
            sample's number in the result), as str or as ASCII bytes
            (:func:`results.sample_id_array`); ids not in the index have no
            pairs
        max_dist: the largest distance kept, in the index's metric
        progress: optional ``callback(fraction, label)``, called per batch
        batch_size: queries per request to the backend
        k: neighbours asked per query at first; doubled for a query whose
            ``k``-th neighbour is still within ``max_dist``

    Returns:
        :class:`neighbors.Pairs`: unique ``i < j`` (positions into
        ``sample_ids``), sorted by ``i`` then ``j``, with the distances the
        backend measured (float64, converted to the index's metric)

    Raises:
        ValueError: for a backend or metric without a known conversion
    """
    ids = np.asarray(sample_ids, dtype="S24")
    searcher = backend_searchers.searcher(index, ids, _conversion(index))
    n = len(ids)
    positions = _Positions(ids)
    max_k = max(1, min(searcher.max_k, searcher.size))
    found = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))]
    try:
        for start in range(0, n, batch_size):
            batch = [x.decode() for x in ids[start : start + batch_size]]
            found.extend(_batch_pairs(searcher, batch, positions, max_dist, min(k, max_k), max_k))
            if progress:
                done = min(n, start + batch_size)
                progress(done / n, f"searched {done}/{n} samples in the {searcher.name} backend")
    finally:
        searcher.close()
    i, j, dist = (np.concatenate(parts) for parts in zip(*found))
    return _unique_pairs(i, j, dist, n)


class _Positions:
    """Positions of ids in an "S24" array, by binary search: 32 bytes per
    id, where a dict from str ids holds a str object and a slot per id."""

    def __init__(self, ids: np.ndarray):
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]

    def __call__(self, ids) -> np.ndarray:
        """The position of each id (-1 for an id not searched)."""
        if not len(self.sorted) or not len(ids):
            return np.full(len(ids), -1, np.int64)
        wanted = np.asarray(ids, dtype="S")
        at = np.searchsorted(self.sorted, wanted).clip(max=len(self.sorted) - 1)
        return np.where(self.sorted[at] == wanted, self.order[at], -1)


def _batch_pairs(searcher, batch, positions, max_dist, k, max_k):
    """Yields one ``(i, j, dist)`` of arrays per round of the batch's
    queries, asking again with a doubled ``k`` for queries whose neighbours
    may go on."""
    while batch:
        more, found = [], []
        query_positions = positions(batch)
        for p, query_id, neighbor_ids, dists in zip(query_positions, batch, *searcher.query(batch, k)):
            if neighbor_ids is None:
                continue  # not in the index
            dists = np.asarray(dists, dtype=np.float64)
            if len(dists) >= k and k < max_k and dists.max(initial=-np.inf) <= max_dist:
                more.append(query_id)
                continue
            js = positions(neighbor_ids)
            keep = (dists <= max_dist) & (js >= 0) & (js != p)
            found.append((np.full(int(keep.sum()), p, np.int64), js[keep], dists[keep]))
        if found:
            yield tuple(np.concatenate(parts) for parts in zip(*found))
        batch, k = more, min(2 * k, max_k)


def _unique_pairs(i, j, dist, n) -> Pairs:
    """Pairs found from either side, once each as ``i < j`` (the smaller of
    two reported distances), sorted by ``i`` then ``j``."""
    a, b = np.minimum(i, j), np.maximum(i, j)
    keys = a * max(n, 1) + b
    order = np.lexsort((dist, keys))
    keys, dist = keys[order], dist[order]
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    keys, dist = keys[first], np.maximum(dist[first], 0.0)
    return Pairs(keys // max(n, 1), keys % max(n, 1), dist)
