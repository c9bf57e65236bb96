"""What pulling the vectors costs against querying the backend, on PostgreSQL
+ pgvector (pgserver, a private server in a temp dir), for the constant
``backend_search.BACKEND_MIN_SAMPLES``:

    python benchmarks/backend_pgvector.py [--n 20000] [--dim 256] [--threshold 0.1]

Prints one JSON line: seconds to build the index (HNSW), to pull every vector
(``get_embeddings()``), to search them in memory (``neighbors.find_pairs``),
and to search in the backend (``backend_pairs``), per sample and in total,
and the backend's pair recall against the in-memory search.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--threshold", type=float, default=0.1)
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import database  # noqa: F401  (private mongod, plugin as image_dedup)
    import pgserver

    import fiftyone as fo
    import fiftyone.brain as fob
    from backend_search import embeddings  # the same data as the Milvus benchmark
    from image_dedup import backend_search, neighbors

    server = pgserver.get_server(tempfile.mkdtemp(prefix="pg-bench-"), cleanup_mode="delete")
    emb = embeddings(args.n, args.dim, 0, args.n)
    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=f"/bench/{k:08d}.jpg") for k in range(args.n)])
    ids = dataset.values("id")
    start = time.perf_counter()
    index = fob.compute_similarity(
        dataset, embeddings=emb, backend="pgvector", connection_string=server.get_uri(),
        brain_key="pg", metric="cosine",
    )
    build = time.perf_counter() - start
    start = time.perf_counter()
    pulled, _, _ = index.get_embeddings()
    pull = time.perf_counter() - start
    start = time.perf_counter()
    exact = neighbors.find_pairs(np.asarray(pulled, np.float32), "cosine", args.threshold, method="exact")
    memory = time.perf_counter() - start
    start = time.perf_counter()
    pairs = backend_search.backend_pairs(index, ids, args.threshold)
    backend = time.perf_counter() - start
    found = set(zip(pairs.i.tolist(), pairs.j.tolist()))
    truth = set(zip(exact.i.tolist(), exact.j.tolist()))
    print(json.dumps(dict(
        n=args.n, dim=args.dim, build_seconds=round(build, 2), pull_seconds=round(pull, 2),
        pull_ms_per_sample=round(1000 * pull / args.n, 4), memory_search_seconds=round(memory, 2),
        backend_seconds=round(backend, 2), backend_queries_per_second=round(args.n / backend),
        exact_pairs=len(truth), pair_recall=round(len(found & truth) / max(1, len(truth)), 4),
        false_pairs=len(found - truth),
    )))
    server.cleanup()


if __name__ == "__main__":
    main()
