"""How each similarity backend is asked a batch of nearest-neighbour
queries, for :mod:`backend_search`.

A searcher answers ``query(ids, k)`` with, per query id, the ids of its
``k`` nearest neighbours (None for an id that is not in the index) and
their distances, converted to the index's metric.

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


def searcher(index, sample_ids: np.ndarray, convert: Callable):
    """The searcher of ``index``'s backend.

    Args:
        index: a ``fiftyone.brain.SimilarityIndex``
        sample_ids: the ids searched ("S24" array): the sklearn searcher
            keeps only their vectors
        convert: the backend's value -> the index's distance
            (:data:`backend_distances.CONVERSIONS`)

    Returns:
        an object with ``query(ids, k)``, ``max_k``, ``size``, ``name`` and
        ``close()``
    """
    method = index.config.method
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
        self.index, self.convert, self.name = index, convert, index.config.method
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
