"""The first near-duplicate find on an sklearn index in a new process:

    python benchmarks/cold_load.py [--sizes 20000x256,50000x512] [--threshold 0.1] [--repeat 3]

For each size, a persistent dataset with an sklearn index of clustered float32
embeddings is built once; then, each in its own fresh process:

-   ``brain``: ``load_brain_results`` + ``find_duplicates(thresh=...)`` (what the
    original plugin runs);
-   ``ours``: ``embedding_cache.index_embeddings`` with an empty cache (the
    cold read of the stored results), mean-centering as the plugin does for
    sklearn indexes, and ``neighbors.search_duplicates`` (``--method``: auto,
    exact or faiss);
-   ``fiftyone_read``: the same read through FiftyOne's loader
    (``load_brain_results(...).get_embeddings()``), for the read alone.

``brain`` and ``ours`` run ``--repeat`` times, alternately (the database's
own background work, such as a checkpoint after the setup, can slow any one
run). Prints one JSON line per size: the median run of each step (seconds,
CPU seconds of all threads, peak RSS in MB) with every run's seconds, the
ratio of the medians brain / ours, and whether our groups equal the brain's
(same duplicates; and samples whose representative differs).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from steps import clustered, process_peak_mb, start_database

BRAIN_KEY = "sim"


def name_of(n, dim):
    return f"bench-cold-{n}x{dim}"


def setup(n, dim):
    import fiftyone as fo
    import fiftyone.brain as fob

    name = name_of(n, dim)
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name, persistent=True)
    dataset.add_samples([fo.Sample(filepath=f"/bench/{k:07d}.jpg") for k in range(n)])
    fob.compute_similarity(dataset, embeddings=clustered(n, dim, seed=1), backend="sklearn", brain_key=BRAIN_KEY)


def cpu_seconds() -> float:
    """CPU time this process has used so far, all threads."""
    times = os.times()
    return times.user + times.system


def rep_array(dataset, neighbors_map):
    position = {x: k for k, x in enumerate(dataset.values("id"))}
    rep = np.full(len(position), -1)
    for kept, dups in neighbors_map.items():
        rep[position[kept]] = position[kept]
        rep[[position[d] for d, _ in dups]] = position[kept]
    return rep


def step_brain(n, dim, threshold, out):
    import fiftyone as fo

    dataset = fo.load_dataset(name_of(n, dim))
    start, cpu = time.perf_counter(), cpu_seconds()
    index = dataset.load_brain_results(BRAIN_KEY)
    index.find_duplicates(thresh=threshold)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    np.save(out, rep_array(dataset, index.neighbors_map))
    return dict(seconds=seconds, cpu_seconds=cpu, peak_mb=process_peak_mb())


def step_ours(n, dim, threshold, out, method):
    import fiftyone as fo
    from image_dedup import embedding_cache, neighbors

    dataset = fo.load_dataset(name_of(n, dim))
    start, cpu = time.perf_counter(), cpu_seconds()
    embeddings, sample_ids = embedding_cache.index_embeddings(dataset, BRAIN_KEY)
    read, read_cpu = time.perf_counter() - start, cpu_seconds() - cpu
    x = np.asarray(embeddings, dtype=np.float32)
    x -= x.mean(axis=0, dtype=np.float64).astype(np.float32)
    groups = neighbors.search_duplicates(x, "cosine", threshold=threshold, method=method)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assert list(sample_ids) == dataset.values("id")
    np.save(out, groups.rep)
    return dict(seconds=seconds, cpu_seconds=cpu, read_seconds=read, read_cpu_seconds=read_cpu,
                peak_mb=process_peak_mb())


def step_fiftyone_read(n, dim):
    import fiftyone as fo

    dataset = fo.load_dataset(name_of(n, dim))
    start, cpu = time.perf_counter(), cpu_seconds()
    dataset.load_brain_results(BRAIN_KEY).get_embeddings()
    return dict(seconds=time.perf_counter() - start, cpu_seconds=cpu_seconds() - cpu,
                peak_mb=process_peak_mb())


def run_step(*args):
    with tempfile.TemporaryDirectory(prefix="cold-cache-") as cache:
        out = subprocess.run(
            [sys.executable, __file__, "--step", *map(str, args)],
            env=dict(os.environ, FIFTYONE_DEDUP_CACHE_DIR=cache), check=True, capture_output=True, text=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def median_run(runs: list) -> dict:
    """The run of median seconds, with every run's seconds."""
    middle = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    return dict(middle, all_seconds=[round(run["seconds"], 3) for run in runs])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20000x256,50000x512")
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--method", default="auto", choices=["auto", "exact", "faiss"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--step", nargs="+")
    args = parser.parse_args()
    start_database()
    if args.step:
        kind, n, dim, *rest = args.step
        n, dim = int(n), int(dim)
        if kind == "brain":
            result = step_brain(n, dim, float(rest[0]), rest[1])
        elif kind == "ours":
            result = step_ours(n, dim, float(rest[0]), rest[1], rest[2])
        else:
            result = step_fiftyone_read(n, dim)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="cold-load-") as work:
        for size in args.sizes.split(","):
            print(json.dumps(compare_cold_loads(size, work, args)), flush=True)


def compare_cold_loads(size: str, work: str, args: argparse.Namespace) -> dict:
    """The brain's and our cold duplicate search on one ``NxDIM`` dataset, each in fresh processes."""
    n, dim = map(int, size.split("x"))
    setup(n, dim)
    brain_out, ours_out = os.path.join(work, "brain.npy"), os.path.join(work, "ours.npy")
    brains, ours = [], []
    for _ in range(args.repeat):
        brains.append(run_step("brain", n, dim, args.threshold, brain_out))
        ours.append(run_step("ours", n, dim, args.threshold, ours_out, args.method))
    brain, ours = median_run(brains), median_run(ours)
    read = run_step("fiftyone_read", n, dim)
    theirs, mine = np.load(brain_out), np.load(ours_out)
    return dict(
        size=size, threshold=args.threshold, method=args.method,
        brain=brain, ours=ours, fiftyone_read=read,
        ratio=round(brain["seconds"] / ours["seconds"], 2),
        same_duplicates=bool(np.array_equal((theirs >= 0) & (theirs != np.arange(n)),
                                            (mine >= 0) & (mine != np.arange(n)))),
        num_duplicates=int(((mine >= 0) & (mine != np.arange(n))).sum()),
        rep_differs=int((theirs != mine).sum()),
    )


if __name__ == "__main__":
    main()
