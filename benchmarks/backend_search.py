"""The neighbour search run in the vector database (backend_search.py), on
Milvus Lite:

    python benchmarks/backend_search.py [--n 20000] [--dim 256] [--threshold 0.1]
                                        [--sample 20000] [--batch-size 256] [--k 16]

1.  setup (its own process, not measured): N x dim clustered float32 embeddings
    (as benchmarks/steps.py makes them, in chunks) into a Milvus Lite index
    (``backend="milvus"``, ``uri`` = a local file, metric cosine);
2.  search (a fresh process): the plugin's find (``find_approximate_duplicates``
    with ``search="backend"``: the ids, the backend search, grouping, saving
    the groups and views); wall time and the process's peak RSS when the
    find ends (the FiftyOne process). Milvus Lite 3 runs inside the process
    that opens its file, so here it serves the file from its own process
    (``python -m milvus_lite server``, as a Milvus service would), started
    before the timer; its peak RSS is reported separately as
    ``milvus_peak_mb``;
3.  check: pair recall against the exact in-memory search of the first
    ``--sample`` samples (pairs with both samples among them).

Prints one JSON line. ``--n 1000000`` runs the issue's row (the setup alone
inserts and indexes a million vectors; expect a long run on 2 cores).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from steps import clustered, process_peak_mb, start_database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BRAIN_KEY = "mil"
CHUNK = 50_000


def children_peak_mb() -> int:
    """Peak resident set of this process's children (the Milvus Lite server)."""
    import psutil

    peaks = [None]
    for child in psutil.Process().children(recursive=True):
        try:
            peaks.append(process_peak_mb(child.pid))
        except OSError:
            pass
    return max((p for p in peaks if p is not None), default=None)


def embeddings(n, dim, start, stop):
    """Rows start..stop of the benchmark's embeddings (chunks of CHUNK, each
    its own clusters, as the scale step of benchmarks/steps.py)."""
    out = []
    for c0 in range(start - start % CHUNK, stop, CHUNK):
        chunk = clustered(min(CHUNK, n - c0), dim, seed=100 + c0)
        out.append(chunk[max(0, start - c0) : stop - c0])
    return np.concatenate(out)


def milvus_server(data_dir: str) -> tuple:
    """Milvus Lite's gRPC server on ``data_dir``, in its own process.

    Args:
        data_dir: the Milvus Lite file (a directory) that setup wrote

    Returns:
        ``(process, uri)``: the server process and its ``http://`` address
    """
    from database import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", data_dir, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the Milvus Lite server on {data_dir} did not start")


def name_of(n, dim):
    return f"bench-backend-{n}x{dim}"


def setup(n, dim, uri):
    import fiftyone as fo
    import fiftyone.brain as fob

    name = name_of(n, dim)
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name, persistent=True)
    start = time.perf_counter()
    for c0 in range(0, n, CHUNK):
        m = min(CHUNK, n - c0)
        dataset.add_samples([fo.Sample(filepath=f"/bench/{k:08d}.jpg") for k in range(c0, c0 + m)])
    ids = dataset.values("id")
    index = fob.compute_similarity(
        dataset, embeddings=False, backend="milvus", uri=uri, brain_key=BRAIN_KEY, metric="cosine"
    )
    for c0 in range(0, n, CHUNK):
        stop = min(n, c0 + CHUNK)
        index.add_to_index(embeddings(n, dim, c0, stop), ids[c0:stop])
    index.save()
    return dict(setup_seconds=time.perf_counter() - start)


def search(n, dim, uri, threshold, batch_size, k, out):
    """The plugin's find on the Milvus index, pointed at the server as at a
    Milvus service (the brain's config, as ``FIFTYONE_BRAIN_SIMILARITY_MILVUS_URI``
    would set it). The pairs the
    backend search returned are kept for the recall check: the find's own
    call, recorded on its way out."""
    import fiftyone as fo
    import fiftyone.brain as fob
    from image_dedup import approx_dups, backend_search

    server, server_uri = milvus_server(uri)
    # a run keeps no connection settings: they come from the brain's config
    fob.brain_config.similarity_backends["milvus"]["uri"] = server_uri

    dataset = fo.load_dataset(name_of(n, dim))
    search_pairs, recorded = backend_search.backend_pairs, []

    def recording(*args, **kwargs):
        recorded.append(search_pairs(*args, batch_size=batch_size, k=k, **kwargs))
        return recorded[-1]

    backend_search.backend_pairs = recording
    try:
        start = time.perf_counter()
        found = approx_dups.find_approximate_duplicates(dataset, BRAIN_KEY, threshold=threshold, search="backend")
        seconds = time.perf_counter() - start
        result = dict(
            seconds=round(seconds, 2), peak_mb=process_peak_mb(), milvus_peak_mb=children_peak_mb(),
            num_pairs=len(recorded[0].i), num_in_groups=found.num_images_with_approx_dups,
            queries_per_second=round(n / seconds),
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    np.savez(out, i=recorded[0].i, j=recorded[0].j)
    return result


def check(n, dim, threshold, sample, out):
    """Pair recall among the first ``sample`` samples, against the exact
    in-memory search (no mean-centering: a Milvus index is not centered)."""
    sys.path.insert(0, ROOT)
    from image_dedup import neighbors

    sample = min(sample, n)
    truth = neighbors.find_pairs(embeddings(n, dim, 0, sample), "cosine", threshold, method="exact")
    with np.load(out) as found:
        i, j = found["i"], found["j"]
    inside = (i < sample) & (j < sample)
    got = set(zip(i[inside].tolist(), j[inside].tolist()))
    exact = set(zip(truth.i.tolist(), truth.j.tolist()))
    return dict(
        recall_sample=sample, exact_pairs=len(exact),
        pair_recall=round(len(got & exact) / max(1, len(exact)), 4),
        false_pairs=len(got - exact),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--step", nargs="+")
    args = parser.parse_args()
    start_database()
    if args.step:
        kind, uri, out = args.step
        if kind == "setup":
            result = setup(args.n, args.dim, uri)
        else:
            result = search(args.n, args.dim, uri, args.threshold, args.batch_size, args.k, out)
        print(json.dumps(result))
        return
    result = dict(n=args.n, dim=args.dim, threshold=args.threshold, batch_size=args.batch_size, k=args.k)
    with tempfile.TemporaryDirectory(prefix="backend-bench-") as work:
        uri, out = os.path.join(work, "milvus.db"), os.path.join(work, "pairs.npz")
        for kind in ("setup", "search"):
            proc = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--step", kind, uri, out],
                capture_output=True, text=True,
            )
            if proc.returncode:
                sys.exit(f"the {kind} step failed:\n{proc.stderr[-3000:]}")
            result.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        result.update(check(args.n, args.dim, args.threshold, args.sample, out))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
