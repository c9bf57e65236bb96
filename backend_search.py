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

Milvus and pgvector are asked one batch per request (Milvus: one batched
vector search; pgvector: one SQL query with a lateral join, vectors never leave
the database); every other backend goes through the brain's generic
``get_embeddings(sample_ids=...)`` + ``_kneighbors(query=vectors)``.
Queries go by vector fetched with its id rather than by id (the brain's
``_kneighbors(query=ids)``), because Milvus and pgvector map query ids to
vectors in the order their database returns them, which is not promised to
be the order of the ids.
"""

from typing import Callable

import numpy as np

from .backend_distances import CONVERSIONS
from .neighbors import Pairs
from .progress import Progress

SEARCHES = ("auto", "memory", "backend")
DEFAULT_BATCH_SIZE = 256
DEFAULT_K = 16
# the brain's Milvus backend refuses k above this (MilvusSimilarityConfig.max_k)
MILVUS_MAX_K = 16384
# the HNSW search breadth a Milvus search uses at least (the index's own ef if
# larger). Measured on Milvus Lite, 100,000 x 256, threshold 0.1 (the exact
# search's pairs as truth): ef 16 (the brain's default of 10, raised to k) pair recall 0.905 at
# 775 queries/s, 64: 0.988 at 661, 128: 0.998 at 588; at 20,000 x 256: 0.9785,
# 0.9994, 1.0 at 984, 961, 922 queries/s
MILVUS_MIN_EF = 128
# pgvector's HNSW scan returns at most hnsw.ef_search rows, which it caps at 1000;
# a query that needs more neighbours scans the table (exact)
PGVECTOR_MAX_EF_SEARCH = 1000
PGVECTOR_DEFAULT_EF_SEARCH = 40
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
    searcher = _searcher(index, ids)
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


# searchers: query(ids, k) -> (neighbor ids per query or None, distances per query)


def _searcher(index, sample_ids):
    convert = _conversion(index)
    method = _method(index)
    if method == "milvus":
        return _MilvusSearcher(index, convert)
    if method == "pgvector":
        return _PgvectorSearcher(index, convert)
    if method == "sklearn":
        return _SklearnSearcher(index, convert, sample_ids)
    return _GenericSearcher(index, convert)


class _GenericSearcher:
    """Any brain backend: vectors by id, then ``_kneighbors`` by vector."""

    max_k = 1 << 30

    def __init__(self, index, convert):
        self.index, self.convert, self.name = index, convert, _method(index)
        self.size = index.total_index_size

    def _vectors(self, ids):
        """``{id: vector}`` of the ids that are in the index."""
        embeddings, found_ids, _ = self.index.get_embeddings(sample_ids=list(ids))
        return dict(zip(np.asarray(found_ids).tolist(), np.asarray(embeddings)))

    def query(self, ids, k):
        vectors = self._vectors(ids)
        present = [x for x in ids if x in vectors]
        out_ids, out_dists = {}, {}
        if present:
            found = self._search(np.stack([vectors[x] for x in present]), k)
            for x, neighbor_ids, dists in zip(present, *found):
                out_ids[x] = neighbor_ids
                out_dists[x] = self.convert(np.asarray(dists, dtype=np.float64))
        return [out_ids.get(x) for x in ids], [out_dists.get(x) for x in ids]

    def _search(self, vectors, k):
        neighbor_ids, _, dists = self.index._kneighbors(query=vectors, k=k, return_dists=True)
        return neighbor_ids, dists

    def close(self):
        pass


class _MilvusSearcher(_GenericSearcher):
    """One batched vector search per batch (the brain sends one per query)."""

    max_k = MILVUS_MAX_K

    def __init__(self, index, convert):
        self.index, self.convert, self.name = index, convert, "milvus"
        self.collection = index.collection
        self.size = self.collection.num_entities
        params = dict(next(iter(index.config.search_params.values())))
        self.metric_type = params["metric_type"]
        self.ef = max(params.get("params", {}).get("ef", 0), MILVUS_MIN_EF)

    def _vectors(self, ids):
        quoted = ",".join('"' + str(x) + '"' for x in ids)
        rows = self.collection.query(f"pk in [{quoted}]", output_fields=["pk", "vector"])
        return {r["pk"]: np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def _search(self, vectors, k):
        # HNSW needs ef >= k
        param = {"metric_type": self.metric_type, "params": {"ef": max(self.ef, k)}}
        hits = self.collection.search(
            data=vectors.tolist(), anns_field="vector", limit=k, param=param
        )
        return [list(h.ids) for h in hits], [list(h.distances) for h in hits]


class _PgvectorSearcher:
    """One SQL query per batch: each id's row is looked up and its nearest
    rows found by the table's ANN index (or a scan if it has none) in a
    lateral join; no vector leaves the database."""

    name = "pgvector"

    def __init__(self, index, convert):
        from psycopg2 import sql

        self.index, self.convert = index, convert
        if index._conn is None or index._conn.closed:
            index._initialize()
        self.conn = index._conn
        self.size = index.total_index_size
        config = index.config
        self.index_type = config.index_type
        self.ef_search = config.hnsw_ef_search or PGVECTOR_DEFAULT_EF_SEARCH
        self.probes = index._resolve_ivfflat_probes() if self.index_type == "ivfflat" else None
        self.max_k = self.size
        op = sql.SQL({"cosine": "<=>", "euclidean": "<->"}[config.metric])
        self.statement = sql.SQL(
            """
            SELECT q.ord, n.id, n.distance
            FROM unnest(%s::text[]) WITH ORDINALITY AS q(qid, ord)
            JOIN {table} AS s ON s.id = q.qid
            CROSS JOIN LATERAL (
                SELECT t.id, t.embedding_vector {op} s.embedding_vector AS distance
                FROM {table} AS t
                ORDER BY t.embedding_vector {op} s.embedding_vector
                LIMIT %s
            ) AS n
            ORDER BY q.ord, n.distance
            """
        ).format(table=sql.Identifier(config.table_name), op=op)

    def query(self, ids, k):
        with self.conn.cursor() as cur:
            # settings for this transaction only
            if self.index_type == "ivfflat":
                cur.execute(f"SET LOCAL ivfflat.probes = {int(self.probes)}")
            elif k > PGVECTOR_MAX_EF_SEARCH:
                cur.execute("SET LOCAL enable_indexscan = off")
            else:
                cur.execute(f"SET LOCAL hnsw.ef_search = {int(max(self.ef_search, k))}")
            cur.execute(self.statement, (list(ids), int(k)))
            rows = cur.fetchall()
        self.conn.rollback()
        neighbor_ids = [None] * len(ids)
        dists = [None] * len(ids)
        if rows:
            ords = np.fromiter((r[0] for r in rows), np.int64, len(rows)) - 1
            values = self.convert(np.fromiter((r[2] for r in rows), np.float64, len(rows)))
            starts = np.flatnonzero(np.r_[True, ords[1:] != ords[:-1]])
            ends = np.r_[starts[1:], len(rows)]
            for s, e in zip(starts.tolist(), ends.tolist()):
                neighbor_ids[ords[s]] = [r[1] for r in rows[s:e]]
                dists[ords[s]] = values[s:e]
        return neighbor_ids, dists

    def close(self):
        self.index.close_connections()


class _SklearnSearcher:
    """sklearn's neighbours structure, as the brain's sklearn backend builds
    it: on the mean-centered vectors of the searched samples (as the
    in-memory path centers them), unit-scaled for cosine, where it measures
    euclidean distance d (cosine distance = d^2 / 2)."""

    name = "sklearn"
    max_k = 1 << 30

    def __init__(self, index, convert, sample_ids):
        from sklearn.neighbors import NearestNeighbors

        embeddings, ids, _ = index.get_embeddings()
        in_scope = np.isin(np.asarray(ids, dtype="S24"), sample_ids)
        x = np.asarray(embeddings[in_scope], dtype=np.float64)
        x -= x.mean(axis=0, keepdims=True) if len(x) else 0.0
        self.cosine = index.config.metric == "cosine"
        if self.cosine:
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x /= np.where(norms == 0, 1.0, norms)
        self.vectors = x
        self.neighbors = NearestNeighbors(metric="euclidean").fit(x) if len(x) else None
        self.ids = np.asarray(ids)[in_scope]
        self.row = {x: r for r, x in enumerate(self.ids.tolist())}
        self.size = len(self.ids)

    def query(self, ids, k):
        rows = [self.row.get(x) for x in ids]
        present = [r for r in rows if r is not None]
        out = {}
        if present:
            dists, inds = self.neighbors.kneighbors(self.vectors[present], n_neighbors=k)
            if self.cosine:
                dists = dists**2 / 2.0
            for r, d, i in zip(present, dists, inds):
                out[r] = (self.ids[i].tolist(), d)
        found = [out.get(r, (None, None)) for r in rows]
        return [f[0] for f in found], [f[1] for f in found]

    def close(self):
        pass
