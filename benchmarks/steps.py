"""The benchmark's steps, each run in its own process by ``run.py``:

    python benchmarks/steps.py STEP WORKDIR [--quick]

A step prints one JSON line: its measurements plus ``peak_mb``, the peak
resident set of its process when its timed work ended. Setup steps build data; reference steps run the
method we compare against; ``*_ours`` steps run the plugin; checks verify.
"""

import hashlib
import importlib
import importlib.util
import json
import os
import resource
import sys
import time
import types

import blake3
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# embedding_cache.CACHE_DIR_ENV; that module imports fiftyone, which run.py must not
# load before the private database is started
CACHE_ENV = "FIFTYONE_DEDUP_CACHE_DIR"
THRESHOLD = 0.1
FRACTION = 0.1
BRAIN_KEY = "sim"
EXACT, NEAR, FRACTION_DS, DEDUP, DEDUP_REF = (
    "bench-exact", "bench-near", "bench-fraction", "bench-dedup", "bench-dedup-ref"
)
FULL = dict(files=20_000, file_kb=100, new_files=1_000, near_n=50_000, near_dim=512,
            fraction_n=20_000, scale_n=1_000_000, scale_dim=256, subset=100_000,
            dedup_groups=10_000, group_size=11, views_n=1_000_000)
QUICK = dict(files=300, file_kb=20, new_files=30, near_n=3_000, near_dim=64,
             fraction_n=2_000, scale_n=20_000, scale_dim=32, subset=5_000,
             dedup_groups=100, group_size=11, views_n=5_000)
STEPS = {}
TIMED_PEAK_MB = None


def sizes(quick: bool) -> dict:
    return QUICK if quick else FULL


def step(function):
    STEPS[function.__name__] = function
    return function


def start_database() -> None:
    """Starts a private mongod as the tests do (once: children inherit the
    URI) and imports the plugin as the package ``image_dedup``."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import database  # noqa: F401


def plugin():
    start_database()
    import image_dedup

    return image_dedup


def load_neighbors():
    """neighbors.py and the modules it imports, from a bare package whose
    __init__ is not run: the scale steps measure the search without FiftyOne
    loaded."""
    package = types.ModuleType("dedup_search")
    package.__path__ = [ROOT]
    sys.modules["dedup_search"] = package
    return importlib.import_module("dedup_search.neighbors")


def process_peak_mb(pid="self") -> int:
    """Peak resident set of a process (VmHWM: unlike ru_maxrss, not inherited
    from the parent that forked it)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return peak_mb()


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def timed(function, *args, **kwargs):
    """``(result, seconds)``; the process's peak memory right after the call
    is the step's (checks that follow don't count)."""
    global TIMED_PEAK_MB
    start = time.perf_counter()
    result = function(*args, **kwargs)
    seconds = time.perf_counter() - start
    TIMED_PEAK_MB = peak_mb()
    return result, seconds


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Clusters of 1-6 points around random centers, with varied spread (as
    in the tests), float32, shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n), rng.integers(1, 7, size=n))[:n]
    centers = rng.standard_normal((n, dim), dtype=np.float32)
    spread = rng.uniform(0.02, 0.4, size=n).astype(np.float32)[labels, None]
    emb = centers[labels] + spread * rng.standard_normal((n, dim), dtype=np.float32)
    return emb[rng.permutation(n)]


def centered(emb: np.ndarray) -> np.ndarray:
    """As the plugin and the brain prepare sklearn embeddings."""
    return emb - emb.mean(axis=0, dtype=np.float64).astype(np.float32)


def cosine(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine distances of row pairs in float64, independently of the plugin."""
    a, b = x[i].astype(np.float64), x[j].astype(np.float64)
    return 1.0 - np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def pair_recall(i: np.ndarray, j: np.ndarray, truth) -> float:
    """The share of the exact search's pairs ``truth`` found as ``(i, j)``."""
    found = set(zip(i.tolist(), j.tolist()))
    return len(found & set(zip(truth.i.tolist(), truth.j.tolist()))) / max(1, len(truth.i))


def near_ids(dataset) -> dict:
    return {sample_id: k for k, sample_id in enumerate(dataset.values("id"))}


# exact duplicates ----------------------------------------------------------


def file_paths(workdir, size, new=False):
    first, count = (size["files"], size["new_files"]) if new else (0, size["files"])
    return [os.path.join(workdir, "files", f"{k:06d}.jpg") for k in range(first, first + count)]


@step
def exact_setup(workdir, size):
    """Files of random bytes, one in 20 a copy of another, read once (warm
    page cache); a dataset of all but the new ones."""
    import fiftyone as fo

    os.makedirs(os.path.join(workdir, "files"))
    rng = np.random.default_rng(0)
    paths = file_paths(workdir, size) + file_paths(workdir, size, new=True)
    blobs = []
    for k, path in enumerate(paths):
        blob = blobs[rng.integers(len(blobs))] if k % 20 == 19 else rng.bytes(size["file_kb"] * 1024)
        blobs.append(blob)
        with open(path, "wb") as f:
            f.write(blob)
    dataset = fo.Dataset(EXACT, persistent=True)
    dataset.add_samples([fo.Sample(filepath=p) for p in file_paths(workdir, size)])
    return {}


@step
def exact_bare(workdir, size):
    """A bare loop: read each file and hash it with BLAKE3, nothing else;
    the same loop with sha256 is timed for the note."""

    def run(paths, hash_function):
        digests = {}
        for path in paths:
            with open(path, "rb") as f:
                digests[path] = hash_function(f.read()).hexdigest()
        return digests

    paths = file_paths(workdir, size) + file_paths(workdir, size, new=True)
    per_file = size["files"] / len(paths)  # times are per the dataset's files
    digests, seconds = timed(run, paths, blake3.blake3)
    _, sha256_seconds = timed(run, paths, hashlib.sha256)
    with open(os.path.join(workdir, "blake3.json"), "w") as f:
        json.dump(digests, f)
    return dict(seconds=seconds * per_file, correct=True,
                note=f"bare loop: the reference hashes; the same loop with sha256: "
                     f"{sha256_seconds * per_file:.2f} s")


@step
def exact_ref(workdir, size):
    """The original plugin: compute_filehash per sample, autosaved."""
    import fiftyone as fo
    import fiftyone.core.utils as fou

    plugin()

    def run(dataset):
        for sample in dataset.iter_samples(autosave=True):
            sample["ref_filehash"] = fou.compute_filehash(sample.filepath)

    _, seconds = timed(run, fo.load_dataset(EXACT))
    return dict(seconds=seconds)


def _check_hashes(workdir, dataset) -> tuple:
    with open(os.path.join(workdir, "blake3.json")) as f:
        truth = json.load(f)
    paths, hashes = dataset.values(["filepath", "filehash"])
    wrong = sum(truth[p] != h for p, h in zip(paths, hashes))
    return wrong == 0, f"{len(paths) - wrong}/{len(paths)} stored hashes = BLAKE3 of the file"


@step
def exact_ours(workdir, size):
    import fiftyone as fo

    exact_dups = plugin().exact_dups
    dataset = fo.load_dataset(EXACT)
    (num_hashed, _), seconds = timed(exact_dups.compute_filehashes, dataset)
    correct, note = _check_hashes(workdir, dataset)
    return dict(seconds=seconds, correct=correct and num_hashed == size["files"], note=note)


@step
def exact_incremental(workdir, size):
    """Adds the new files' samples, then hashes what has no hash yet."""
    import fiftyone as fo

    exact_dups = plugin().exact_dups
    dataset = fo.load_dataset(EXACT)
    dataset.add_samples([fo.Sample(filepath=p) for p in file_paths(workdir, size, new=True)])
    (num_hashed, _), seconds = timed(exact_dups.compute_filehashes, dataset)
    correct, note = _check_hashes(workdir, dataset)
    return dict(seconds=seconds, correct=correct and num_hashed == size["new_files"],
                note=f"read {num_hashed} files; {note}")


@step
def exact_rehash(workdir, size):
    import fiftyone as fo

    exact_dups = plugin().exact_dups
    _, seconds = timed(exact_dups.compute_filehashes, fo.load_dataset(EXACT), rehash=True)
    return dict(seconds=seconds)


# exact duplicates: the reader pool -----------------------------------------

POOL_SIZES = dict(full=dict(latency_files=1_000), quick=dict(latency_files=60))
LATENCY = 0.02  # seconds an open waits, as on a network filesystem or cloud mount
POOL_DATASETS = ("bench-pool-one", "bench-pool-auto", "bench-pool-four", "bench-pool-lat-one",
                 "bench-pool-lat-auto")


def pool_sizes(quick: bool) -> dict:
    return POOL_SIZES["quick" if quick else "full"]


@step
def pool_setup(workdir, size):
    """The exact case's files (written here if that case did not run), the
    BLAKE3 of each, and one unhashed dataset per pool step: all files for
    the local steps, the first ``latency_files`` for the latency ones."""
    import fiftyone as fo

    if not os.path.isdir(os.path.join(workdir, "files")):
        exact_setup(workdir, size)
    paths = file_paths(workdir, size)
    truth = {}
    for path in paths:
        with open(path, "rb") as f:
            truth[path] = blake3.blake3(f.read()).hexdigest()
    with open(os.path.join(workdir, "pool_blake3.json"), "w") as f:
        json.dump(truth, f)
    few = paths[: pool_sizes(size is QUICK)["latency_files"]]
    for name in POOL_DATASETS:
        dataset = fo.Dataset(name, persistent=True)
        dataset.add_samples([fo.Sample(filepath=p) for p in (few if "-lat-" in name else paths)])
    return {}


def _pool_hash(workdir, name, num_readers, latency=0.0):
    """compute_filehashes on the dataset ``name``; with ``latency``, every
    open in the plugin's module waits that long first (this process only).
    Returns the step's measurements: seconds, the reader count the plugin
    logged (or was given), the check of the stored hashes."""
    import builtins
    import logging

    import fiftyone as fo

    exact_dups, file_hashes = plugin().exact_dups, plugin().file_hashes
    if latency:
        def slow_open(*args, **kwargs):
            time.sleep(latency)
            return builtins.open(*args, **kwargs)

        file_hashes.open = slow_open
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    file_hashes.logger.addHandler(handler)
    file_hashes.logger.setLevel(logging.INFO)
    dataset = fo.load_dataset(name)
    (num_hashed, unreadable), seconds = timed(exact_dups.compute_filehashes, dataset, num_readers=num_readers)
    chosen = [int(m.split()[3]) for m in messages if m.startswith("Reading files with")]
    readers = chosen[0] if chosen else num_readers
    with open(os.path.join(workdir, "pool_blake3.json")) as f:
        truth = json.load(f)
    paths, hashes = dataset.values(["filepath", "filehash"])
    wrong = sum(truth[p] != h for p, h in zip(paths, hashes))
    correct = wrong == 0 and num_hashed == len(paths) and not unreadable
    return dict(seconds=seconds, readers=readers, files=len(paths), correct=correct,
                note=f"{len(paths) - wrong}/{len(paths)} stored hashes = BLAKE3 of the file")


@step
def pool_local_one(workdir, size):
    return _pool_hash(workdir, "bench-pool-one", 1)


@step
def pool_local_auto(workdir, size):
    return _pool_hash(workdir, "bench-pool-auto", None)


@step
def pool_local_four(workdir, size):
    return _pool_hash(workdir, "bench-pool-four", 4)


@step
def pool_latency_one(workdir, size):
    return _pool_hash(workdir, "bench-pool-lat-one", 1, latency=LATENCY)


@step
def pool_latency_auto(workdir, size):
    return _pool_hash(workdir, "bench-pool-lat-auto", None, latency=LATENCY)


# near duplicates -------------------------------------------------------------


def near_path(workdir):
    return os.path.join(workdir, "near.npy")


@step
def near_setup(workdir, size):
    """Clustered embeddings in an sklearn index (and a smaller one for the
    fraction reference, which re-searches at every bisection step)."""
    import fiftyone as fo
    import fiftyone.brain as fob

    emb = clustered(size["near_n"], size["near_dim"], seed=1)
    np.save(near_path(workdir), emb)
    for name, rows in ((NEAR, emb), (FRACTION_DS, emb[: size["fraction_n"]])):
        dataset = fo.Dataset(name, persistent=True)
        dataset.add_samples([fo.Sample(filepath=f"/bench/{name}/{k:07d}.jpg") for k in range(len(rows))])
        fob.compute_similarity(dataset, embeddings=rows, backend="sklearn", brain_key=BRAIN_KEY)
    return {}


@step
def near_ref(workdir, size):
    """The original operator: load the index and find_duplicates(thresh=...)."""
    import fiftyone as fo

    plugin()
    dataset = fo.load_dataset(NEAR)

    def run():
        index = dataset.load_brain_results(BRAIN_KEY)
        index.find_duplicates(thresh=THRESHOLD)
        return index

    index, seconds = timed(run)
    position = near_ids(dataset)
    rep = np.full(len(position), -1)
    for kept, dups in index.neighbors_map.items():
        rep[position[kept]] = position[kept]
        rep[[position[d] for d, _ in dups]] = position[kept]
    np.save(os.path.join(workdir, "brain_groups.npy"), rep)
    return dict(seconds=seconds)


def _run_find(name, **params):
    import fiftyone as fo
    import fiftyone.operators as foo

    plugin()
    dataset = fo.load_dataset(name)
    params = dict(sim_choices=BRAIN_KEY, **params)
    uri = "@fo-dedup/image-dedup/find_approximate_duplicate_images"
    result, seconds = timed(foo.execute_operator, uri, ctx=dict(dataset=dataset, params=params))
    return dataset, result.result, seconds


def _our_groups(dataset):
    approx_dups = plugin().approx_dups
    position = near_ids(dataset)
    rep = np.full(len(position), -1)
    ids, reps = dataset.exists(approx_dups.GROUP_FIELD).values(["id", approx_dups.GROUP_FIELD])
    rep[[position[i] for i in ids]] = [position[r] for r in reps]
    return rep


@step
def near_ours(workdir, size):
    """The operator; run.py runs it twice: embedding cache cold, then warm."""
    dataset, _, seconds = _run_find(NEAR, method_choices="threshold", threshold_value=THRESHOLD)
    return dict(seconds=seconds, groups=hashlib.sha1(_our_groups(dataset).tobytes()).hexdigest())


@step
def near_check(workdir, size):
    """Every stored distance re-measured; the search's pair recall against
    the exact search, on the embeddings the operator searched."""
    import fiftyone as fo

    neighbors = plugin().neighbors
    approx_dups = plugin().approx_dups
    dataset = fo.load_dataset(NEAR)
    x = centered(np.load(near_path(workdir)))
    position = near_ids(dataset)
    ids, reps, dists = dataset.exists(approx_dups.GROUP_FIELD).values(
        ["id", approx_dups.GROUP_FIELD, approx_dups.DIST_FIELD]
    )
    i = np.array([position[k] for k in ids])
    j = np.array([position[r] for r in reps])
    exact = cosine(x, i, j)
    exact[i == j] = 0.0
    error = float(np.abs(exact - np.array(dists)).max())
    method = neighbors.choose_method("auto", len(x))
    found = neighbors.find_pairs(x, "cosine", THRESHOLD, method=method)
    truth = neighbors.find_pairs(x, "cosine", THRESHOLD, method="exact")
    recall = pair_recall(found.i, found.j, truth)
    correct = recall >= 0.99 and error <= 1e-6 and exact.max() <= THRESHOLD
    note = (f"{len(ids)} grouped, each distance re-measured (max error {error:.0e}); "
            f"pair recall {recall:.4f} of {len(truth.i)} exact pairs")
    return dict(method=method, correct=correct, note=note)


@step
def near_exact_path(workdir, size):
    """Our exact search, and its groups against the brain's."""
    neighbors = plugin().neighbors
    x = centered(np.load(near_path(workdir)))
    groups, seconds = timed(neighbors.search_duplicates, x, "cosine", threshold=THRESHOLD, method="exact")
    brain = np.load(os.path.join(workdir, "brain_groups.npy"))
    every = np.arange(len(x))
    ours_dup, brain_dup = groups.rep >= 0, brain >= 0
    ours_dup &= groups.rep != every
    brain_dup &= brain != every
    other_rep = np.nonzero(ours_dup & brain_dup & (groups.rep != brain))[0]
    ours_nearer = cosine(x, other_rep, groups.rep[other_rep]) < cosine(x, other_rep, brain[other_rep])
    same_dups = np.array_equal(ours_dup, brain_dup)
    note = (f"{'same' if same_dups else 'DIFFERENT'} {ours_dup.sum()} duplicates as find_duplicates "
            f"(brain: {brain_dup.sum()}); {len(other_rep)} put with a nearer kept sample than the "
            "brain's (it re-centers the kept ones)")
    return dict(seconds=seconds, correct=same_dups and bool(ours_nearer.all()), note=note)


@step
def near_bare(workdir, size):
    """The compute bound: blocked float32 matrix products over the upper
    triangle, keeping the pairs under the threshold."""
    x = centered(np.load(near_path(workdir)))
    x /= np.linalg.norm(x, axis=1, keepdims=True)

    def run():
        found = 0
        for row0 in range(0, len(x), 1024):
            tile = x[row0 : row0 + 1024] @ x[row0:].T
            found += len(np.nonzero(tile >= 1.0 - THRESHOLD)[0])
        return found

    _, seconds = timed(run)
    return dict(seconds=seconds)


@step
def near_fraction_ref(workdir, size):
    import fiftyone as fo

    plugin()
    dataset = fo.load_dataset(FRACTION_DS)
    index = dataset.load_brain_results(BRAIN_KEY)
    _, seconds = timed(index.find_duplicates, fraction=FRACTION)
    return dict(seconds=seconds, num_dups=len(index.duplicate_ids), size=f"{len(dataset)} x {size['near_dim']}-d")


@step
def near_fraction_ours(workdir, size):
    _run_find(FRACTION_DS, method_choices="fraction", dup_fraction=FRACTION)  # fills the cache
    _, result, seconds = _run_find(FRACTION_DS, method_choices="fraction", dup_fraction=FRACTION)
    return dict(seconds=seconds, num_dups=result["num_dups"])


# near duplicates at scale ----------------------------------------------------


def scale_path(workdir):
    return os.path.join(workdir, "scale.npy")


@step
def scale_setup(workdir, size):
    """Clustered embeddings written in chunks, never all in memory at once."""
    n, dim, chunk = size["scale_n"], size["scale_dim"], 50_000
    out = np.lib.format.open_memmap(scale_path(workdir), mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, chunk):
        out[start : start + chunk] = clustered(min(chunk, n - start), dim, seed=100 + start)
    out.flush()
    return {}


@step
def scale_ours(workdir, size):
    """= search_duplicates(threshold=...) with method="faiss", in two calls so
    that the pairs can be checked."""
    neighbors = load_neighbors()
    emb = np.load(scale_path(workdir))

    def run():
        pairs = neighbors.find_pairs(emb, "cosine", THRESHOLD, method="faiss")
        return pairs, neighbors.assign_groups(len(emb), pairs, THRESHOLD)

    (pairs, groups), seconds = timed(run)
    subset = (pairs.i < size["subset"]) & (pairs.j < size["subset"])
    np.savez(os.path.join(workdir, "scale_pairs.npz"), i=pairs.i[subset], j=pairs.j[subset],
             dist=pairs.dist[subset])
    return dict(seconds=seconds, num_pairs=len(pairs.i), num_grouped=int((groups.rep >= 0).sum()))


@step
def scale_check(workdir, size):
    """Pair recall on a subset against the exact search; every kept pair's
    distance re-measured."""
    neighbors = load_neighbors()
    x = np.load(scale_path(workdir))[: size["subset"]]
    found = np.load(os.path.join(workdir, "scale_pairs.npz"))
    truth = neighbors.find_pairs(x, "cosine", THRESHOLD, method="exact")
    exact = cosine(x, found["i"], found["j"])
    error = float(np.abs(exact - found["dist"]).max(initial=0.0))
    recall = pair_recall(found["i"], found["j"], truth)
    correct = recall >= 0.95 and error <= 1e-6 and exact.max(initial=0.0) <= THRESHOLD
    note = (f"pair recall {recall:.4f} of {len(truth.i)} exact pairs in the first {len(x)}; "
            f"every distance re-measured (max error {error:.0e})")
    return dict(correct=correct, note=note)


# deduplicate and saved views -------------------------------------------------


def _group_files(folder, size) -> tuple:
    """Small real files, ``group_size`` identical ones per group (a delete
    reads them again before it deletes): their paths and BLAKE3 digests."""
    os.makedirs(folder, exist_ok=True)
    paths, digests = [], []
    for k in range(size["dedup_groups"] * size["group_size"]):
        content = b"group %d" % (k // size["group_size"])
        paths.append(os.path.join(folder, f"{k:07d}.jpg"))  # media type by extension
        with open(paths[-1], "wb") as f:
            f.write(content)
        digests.append(blake3.blake3(content).hexdigest())
    return paths, digests


def _group_dataset(name, num_samples, size, workdir):
    """Samples whose files put the first groups x group_size of them in
    groups; the rest unique (their files never read). Marked as a find would
    mark them."""
    import fiftyone as fo

    exact_dups = plugin().exact_dups
    paths, digests = _group_files(os.path.join(workdir, name), size)
    dataset = fo.Dataset(name, persistent=True)
    for start in range(0, num_samples, 100_000):
        dataset.add_samples(
            [fo.Sample(filepath=paths[k], filehash=digests[k]) if k < len(paths)
             else fo.Sample(filepath=f"/bench/{name}/{k:07d}.jpg", filehash=f"u{k}")
             for k in range(start, min(num_samples, start + 100_000))],
            progress=False,
        )
    exact_dups.mark_exact_duplicates(dataset)
    return dataset


@step
def dedup_setup(workdir, size):
    _group_dataset(DEDUP, size["views_n"], size, workdir)
    _group_dataset(DEDUP_REF, size["dedup_groups"] * size["group_size"], size, workdir)
    return {}


@step
def views_size(workdir, size):
    """The stored size of every saved view, at two dataset sizes."""
    import fiftyone as fo

    plugin()
    big, small = fo.load_dataset(DEDUP), fo.load_dataset(NEAR)

    def stored(dataset):
        return {v.name: len(json.dumps(v.view_stages)) for v in dataset._doc.saved_views}

    measured = {f"{d.name}/{k}": b for d in (big, small, fo.load_dataset(DEDUP_REF)) for k, b in stored(d).items()}
    dup_ids = big.match({"is_exact_dup": True}).values("id")
    ref_bytes = len(json.dumps(big.select(dup_ids)._serialize()))
    sizes_by_view = {}
    for key, b in measured.items():
        sizes_by_view.setdefault(key.split("/", 1)[1], set()).add(b)
    constant = all(len(s) == 1 for s in sizes_by_view.values())
    max_bytes = max(measured.values())
    note = ", ".join(f"{k} {b} B" for k, b in sorted(measured.items()))
    return dict(ref_bytes=ref_bytes, max_bytes=max_bytes, correct=constant and max_bytes < 1024,
                size=f"{len(big)} and {len(fo.load_dataset(DEDUP_REF))} samples", note=note)


@step
def dedup_ref(workdir, size):
    """One delete query per group."""
    import fiftyone as fo

    exact_dups = plugin().exact_dups
    dataset = fo.load_dataset(DEDUP_REF)
    ids, hashes = exact_dups.WORKFLOW.load_view(dataset).values(["id", "filehash"])
    groups = {}
    for sample_id, h in zip(ids, hashes):
        groups.setdefault(h, []).append(sample_id)

    def run():
        for members in groups.values():
            dataset.delete_samples(members[1:])

    _, seconds = timed(run)
    left = len(dataset)
    return dict(seconds=seconds, correct=left == size["dedup_groups"])


@step
def dedup_ours(workdir, size):
    import fiftyone as fo
    import fiftyone.operators as foo

    plugin()
    dataset = fo.load_dataset(DEDUP)
    before = len(dataset)
    uri = "@fo-dedup/image-dedup/deduplicate_exact_duplicates"
    result, seconds = timed(foo.execute_operator, uri, ctx=dict(dataset=dataset, params={}))
    deleted = before - len(dataset)
    expected = size["dedup_groups"] * (size["group_size"] - 1)
    kept_once = len(set(dataset.values("filehash"))) == len(dataset)
    return dict(seconds=seconds, correct=deleted == expected and kept_once,
                note=f"deleted {deleted} of {before}; one sample left per group")


def main() -> None:
    name, workdir = sys.argv[1], sys.argv[2]
    result = STEPS[name](workdir, sizes("--quick" in sys.argv))
    result["peak_mb"] = TIMED_PEAK_MB or peak_mb()
    print(json.dumps(result, default=lambda value: value.item()))  # numpy scalars


if __name__ == "__main__":
    main()
