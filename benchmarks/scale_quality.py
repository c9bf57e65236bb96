"""Near-duplicate quality and speed at scale: the whole pipeline on N varied
photos with planted copies (issue 14, items 2 and 6).

    python benchmarks/scale_quality.py [--n 50000] [--keep] [--workdir DIR [--reuse]]
        [--combined] [--no-apt] [--seed 0] [--workers 2] [--candidates-only]

**The photos.** Every real photograph that ships in an installed package
(scikit-image's bundled photos, scikit-learn's sample images, and, if
installed, the Debian packages :mod:`eval_photos` knows: ``opencv-doc``'s
sample photos plus one view of each of its scenes, and the wallpaper
packages), at full resolution. Each generated photo (~640x480, a few
canvas shapes) is one crop or a mosaic of 2-4 crops, each crop colour
shifted (per-channel gains, saturation, brightness, sometimes grey) and
sometimes flipped. The crops are packed into the sources without overlap
(shelf packing, one scale for all), so **no two generated photos share a
pixel of any source**: each photo's "source regions" are recorded, and two
photos are related only if they share one (an original and its planted
copies). Neighbouring regions of one source are different parts of one
scene: hard negatives, as bursts are.

Of N files, 8% are planted near copies (one per chosen original, the single
edits of :func:`eval_photos.edit`: resize, JPEG, crop, rotation, mirror,
brightness, contrast, noise, watermark, sticker; ``--combined`` adds its two
combinations) and N/200 byte-identical copies; the rest are originals. The
file order is shuffled.

**The pipeline**, in one child process with a private MongoDB
(``tests/database.py``), timed step by step: dataset creation
(``add_samples``), ``find_exact_duplicate_images``, and
``find_approximate_duplicate_images`` with ``index_source="pixels"`` (builds
the pixel index; verification on by default). The approximate find's parts
are timed by wrapping the plugin's module functions (no behaviour change).
Peak RSS is the child's ``ru_maxrss`` (mongod not included).

**Reported**: wall time per step and in total, images/s, peak RSS; the share
of planted pairs found in one group (goal >= 95%), the share of grouped pairs
that are unrelated (no shared source region; goal <= 2%), the largest group,
and the candidate pairs verification compared, and those it rejected or left out.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import eval_photos  # noqa: E402

PLUGIN_URI = "@fo-dedup/image-dedup"
DATASET = "scale-quality"
EDITS = ("resize", "jpeg", "crop", "rotate", "mirror", "brightness", "contrast", "noise",
         "watermark", "sticker")
COMBINED = ("combined", "combined_mirror")
PLANTED_SHARE = 0.08
EXACT_PER = 200  # one exact copy per this many files
CANVASES = ((640, 480),) * 5 + ((480, 640), (640, 427), (600, 450), (720, 480))  # ~640x480
TILE_COUNTS, TILE_WEIGHTS = (1, 2, 3, 4), (0.4, 0.25, 0.2, 0.15)
MIN_SIDE = 8  # source pixels per crop side, at least
PIPELINE_GOAL_S = 120.0
PLANTED_GOAL, UNRELATED_GOAL = 0.95, 0.02

SOURCES = []  # full-resolution RGB arrays, loaded before the pool forks


# ---------------------------------------------------------------- sources

def source_loaders(use_apt: bool) -> dict:
    """``{name: loader}`` of every distinct photograph: the photos and burst
    photos of :mod:`eval_photos`, plus one view of each non-calibration scene
    (the other views are other shots of it)."""
    photos, bursts = eval_photos.photo_sources(use_apt)
    loaders = {**photos, **bursts}
    for name, (kind, views) in eval_photos.scenes(use_apt).items():
        if kind != "calibration":
            loaders["scene_" + name] = views[0]
    return dict(sorted(loaders.items()))


def load_sources(use_apt: bool) -> list:
    names = []
    SOURCES.clear()
    for name, load in source_loaders(use_apt).items():
        SOURCES.append(np.ascontiguousarray(np.asarray(load(max_side=100_000), dtype=np.uint8)))
        names.append(name)
    return names


# ---------------------------------------------------------------- layout

def tile_boxes(canvas: tuple, k: int, rng: np.random.Generator) -> list:
    """``k`` tiles ``(x0, y0, x1, y1)`` covering the canvas."""
    w, h = canvas

    def split(box, vertical):
        x0, y0, x1, y1 = box
        t = rng.uniform(0.35, 0.65)
        if vertical:  # left | right
            x = round(x0 + (x1 - x0) * t)
            return (x0, y0, x, y1), (x, y0, x1, y1)
        y = round(y0 + (y1 - y0) * t)
        return (x0, y0, x1, y), (x0, y, x1, y1)

    full = (0, 0, w, h)
    if k == 1:
        return [full]
    first = bool(rng.random() < 0.5) if w == h else w > h
    first = first if rng.random() < 0.8 else not first
    a, b = split(full, first)
    if k == 2:
        return [a, b]
    if k == 3:
        if rng.random() < 0.5:
            return [a, *split(b, not first)]
        return [*split(a, not first), b]
    return [*split(a, not first), *split(b, not first)]


def pack(needs: np.ndarray, sizes: list, rng: np.random.Generator):
    """Shelf-packs ``needs`` (``m x 2``: width, height) into the sources
    (``[(width, height)]``) without overlap, each rectangle in a random
    source that has room.

    Returns:
        ``m x 3`` int array ``(source, x, y)``, or None if they don't fit
    """
    order = np.lexsort((rng.random(len(needs)), -needs[:, 1]))
    src_w = np.array([s[0] for s in sizes])
    src_h = np.array([s[1] for s in sizes])
    cur_x = np.zeros(len(sizes), np.int64)
    shelf_y = np.zeros(len(sizes), np.int64)
    shelf_h = np.zeros(len(sizes), np.int64)  # 0: no shelf open yet
    placed = np.zeros((len(needs), 3), np.int64)
    for r in order.tolist():
        w, h = int(needs[r, 0]), int(needs[r, 1])
        fits = (shelf_h >= h) & (cur_x + w <= src_w)
        if fits.any():
            s = int(rng.choice(np.flatnonzero(fits)))
        else:
            room = (shelf_y + shelf_h + h <= src_h) & (w <= src_w)
            if not room.any():
                return None
            free = ((src_h - shelf_y - shelf_h) * src_w)[room].astype(np.float64)
            s = int(rng.choice(np.flatnonzero(room), p=free / free.sum()))
            shelf_y[s] += shelf_h[s]
            shelf_h[s], cur_x[s] = h, 0
        placed[r] = (s, cur_x[s], shelf_y[s])
        cur_x[s] += w
    return placed


def plan(n: int, num_sources: int, sizes: list, seed: int, combined: bool) -> dict:
    """What to generate: the originals' tiles and where each tile's crop
    lies, which originals get a planted or exact copy, and the file order."""
    rng = np.random.default_rng([seed, 0])
    num_planted = round(PLANTED_SHARE * n)
    num_exact = max(3, n // EXACT_PER)
    num_originals = n - num_planted - num_exact
    photos, boxes, owner = [], [], []
    for p in range(num_originals):
        canvas = CANVASES[rng.integers(len(CANVASES))]
        k = int(rng.choice(TILE_COUNTS, p=TILE_WEIGHTS))
        tiles = tile_boxes(canvas, k, rng)
        photos.append(dict(id=p, canvas=canvas, tiles=[]))
        for box in tiles:
            boxes.append(box)
            owner.append(p)
    boxes = np.array(boxes, np.int64)
    tile_wh = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    capacity = sum(w * h for w, h in sizes)
    scale = np.sqrt(tile_wh.prod(axis=1).sum() / (0.97 * capacity))  # canvas px per source px
    while True:
        needs = np.maximum(np.round(tile_wh / scale).astype(np.int64), MIN_SIDE)
        placed = pack(needs, sizes, np.random.default_rng([seed, 1]))
        if placed is not None:
            break
        scale *= 1.02
    used = needs.prod(axis=1).sum()
    for t, p in enumerate(owner):
        s, x, y = placed[t].tolist()
        photos[p]["tiles"].append(dict(
            box=boxes[t].tolist(), src=s, crop=[x, y, int(needs[t, 0]), int(needs[t, 1])],
            flip_h=bool(rng.random() < 0.5), flip_v=bool(rng.random() < 0.1),
            gains=rng.uniform(0.82, 1.18, 3).round(3).tolist(), saturation=float(rng.uniform(0.6, 1.4)),
            brightness=float(rng.uniform(0.85, 1.15)), grey=bool(rng.random() < 0.04),
        ))
    chosen = rng.permutation(num_originals)
    kinds = EDITS + (COMBINED if combined else ())
    edit_kinds = [kinds[k % len(kinds)] for k in rng.permutation(num_planted)]
    for p, kind in zip(chosen[:num_planted].tolist(), edit_kinds):
        photos[p]["edit"] = kind
    for p in chosen[num_planted:num_planted + num_exact].tolist():
        photos[p]["exact"] = True
    positions = rng.permutation(n)  # file k of the generation order -> position in the dataset
    k = 0
    for photo in photos:
        photo["pos"] = int(positions[k])
        k += 1
        if "edit" in photo or photo.get("exact"):
            photo["copy_pos"] = int(positions[k])
            k += 1
        photo["quality"] = int(rng.integers(85, 96))
    assert k == n
    return dict(photos=photos, scale=float(scale), used_px=int(used), capacity_px=int(capacity),
                num_planted=num_planted, num_exact=num_exact, num_originals=num_originals,
                num_tiles=len(owner))


# ---------------------------------------------------------------- rendering

def _path(folder: str, pos: int) -> str:
    return os.path.join(folder, f"img_{pos:06d}.jpg")


def render(args) -> None:
    """Writes one original and its copy, if any (runs in a pool worker)."""
    from PIL import Image, ImageEnhance

    photo, folder, seed = args
    rng = np.random.default_rng([seed, 2, photo["id"]])
    canvas = Image.new("RGB", tuple(photo["canvas"]))
    for tile in photo["tiles"]:
        x, y, w, h = tile["crop"]
        x0, y0, x1, y1 = tile["box"]
        pixels = SOURCES[tile["src"]][y:y + h, x:x + w]
        if tile["flip_h"]:
            pixels = pixels[:, ::-1]
        if tile["flip_v"]:
            pixels = pixels[::-1]
        pixels = pixels.astype(np.float32) * np.float32(tile["brightness"]) * np.float32(tile["gains"])
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image = ImageEnhance.Color(image).enhance(tile["saturation"])
        if tile["grey"]:
            image = image.convert("L").convert("RGB")
        resample = Image.Resampling.BICUBIC if x1 - x0 >= w else Image.Resampling.LANCZOS
        canvas.paste(image.resize((x1 - x0, y1 - y0), resample), (x0, y0))
    path = _path(folder, photo["pos"])
    canvas.save(path, quality=photo["quality"])
    if photo.get("exact"):
        shutil.copyfile(path, _path(folder, photo["copy_pos"]))
    elif "edit" in photo:
        edited, quality = eval_photos.edit(canvas.copy(), photo["edit"], rng)
        edited.save(_path(folder, photo["copy_pos"]), quality=quality)


def generate(n: int, workdir: str, seed: int, combined: bool, use_apt: bool, workers: int) -> dict:
    """Writes the photos under ``workdir/images`` and the manifest; returns it."""
    start = time.perf_counter()
    names = load_sources(use_apt)
    sizes = [(a.shape[1], a.shape[0]) for a in SOURCES]
    layout = plan(n, len(names), sizes, seed, combined)
    folder = os.path.join(workdir, "images")
    os.makedirs(folder, exist_ok=True)
    tasks = [(photo, folder, seed) for photo in layout["photos"]]
    with get_context("fork").Pool(workers) as pool:  # workers share SOURCES copy-on-write
        for _ in pool.imap_unordered(render, tasks, chunksize=64):
            pass
    paths = [None] * n
    identity, kind = [None] * n, [None] * n
    regions = [None] * layout["num_originals"]
    for photo in layout["photos"]:
        p = photo["id"]
        paths[photo["pos"]] = _path(folder, photo["pos"])
        identity[photo["pos"]], kind[photo["pos"]] = p, "original"
        regions[p] = [[t["src"], *t["crop"]] for t in photo["tiles"]]
        if "copy_pos" in photo:
            paths[photo["copy_pos"]] = _path(folder, photo["copy_pos"])
            identity[photo["copy_pos"]] = p
            kind[photo["copy_pos"]] = "exact" if photo.get("exact") else photo["edit"]
    manifest = dict(
        n=n, paths=paths, identity=identity, kind=kind, source_regions=regions, sources=names,
        scale=layout["scale"], used_px=layout["used_px"], capacity_px=layout["capacity_px"],
        num_planted=layout["num_planted"], num_exact=layout["num_exact"],
        num_originals=layout["num_originals"], num_tiles=layout["num_tiles"],
        generate_s=time.perf_counter() - start,
        bytes=sum(os.path.getsize(p) for p in paths),
    )
    with open(os.path.join(workdir, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    SOURCES.clear()
    return manifest


# ---------------------------------------------------------------- the pipeline (child process)

def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


class Timers:
    """Wraps plugin module functions to time them (and keep what verify_pairs
    saw); the functions behave as before."""

    def __init__(self):
        self.seconds, self.calls, self.verified = {}, {}, []

    def wrap(self, module, name: str, key: str, keep_pairs: bool = False) -> None:
        function = getattr(module, name)
        if getattr(function, "_scale_quality_timer", False):
            return

        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - start
            self.calls[key] = self.calls.get(key, 0) + 1
            if keep_pairs:
                self.verified.append((list(args[0]), list(args[1]), np.asarray(result)))
            return result

        timed._scale_quality_timer = True
        setattr(module, name, timed)

    def install(self) -> int:
        """Wraps every loaded copy of the plugin's modules (FiftyOne imports
        the plugin under its own package name); returns how many modules."""
        count = 0
        for module_name, module in list(sys.modules.items()):
            if module is None or not (module_name.startswith("fiftyone.plugins.")
                                      or module_name.startswith("image_dedup.")):
                continue
            leaf = module_name.rsplit(".", 1)[-1]
            if leaf == "pixel_embeddings":
                self.wrap(module, "embed_images", "embed")
                self.wrap(module, "compute_pixel_similarity", "index")
            elif leaf == "verification":
                self.wrap(module, "verify_pairs", "verify", keep_pairs=True)
            elif leaf == "approx_dups" and hasattr(module, "search_duplicates"):
                self.wrap(module, "search_duplicates", "search")
                self.wrap(module, "_save_groups", "save")
            elif leaf == "similarity" and hasattr(module, "index_rows"):
                self.wrap(module, "index_rows", "rows")
            else:
                continue
            count += 1
        return count


def pipeline(workdir: str) -> None:
    """Runs the three steps through the operators and writes
    ``workdir/pipeline.json``: timings, peaks, outputs and the groups."""
    os.environ["FIFTYONE_DEDUP_CACHE_DIR"] = os.path.join(workdir, "dedup_cache")
    # FiftyOne cancels an immediate operator after fo.config.operator_timeout
    # (600 s); the benchmark measures the find however long it takes
    os.environ.setdefault("FIFTYONE_OPERATOR_TIMEOUT", str(7 * 24 * 3600))
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import database  # noqa: F401  (private mongod, plugin env)
    import fiftyone as fo
    import fiftyone.operators as foo

    with open(os.path.join(workdir, "manifest.json")) as f:
        manifest = json.load(f)
    paths = manifest["paths"]
    steps, timers = {}, Timers()

    start = time.perf_counter()
    dataset = fo.Dataset(DATASET)
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    steps["dataset"] = dict(seconds=time.perf_counter() - start, peak_mb=peak_mb())

    start = time.perf_counter()
    exact = foo.execute_operator(f"{PLUGIN_URI}/find_exact_duplicate_images",
                                 ctx=dict(dataset=dataset, params={}))
    steps["exact"] = dict(seconds=time.perf_counter() - start, peak_mb=peak_mb(), output=exact.result)

    wrapped = timers.install()
    start = time.perf_counter()
    approx = foo.execute_operator(f"{PLUGIN_URI}/find_approximate_duplicate_images",
                                  ctx=dict(dataset=dataset, params=dict(index_source="pixels")))
    steps["approx"] = dict(seconds=time.perf_counter() - start, peak_mb=peak_mb(), output=approx.result,
                           parts=timers.seconds, calls=timers.calls, wrapped_modules=wrapped)

    from image_dedup import approx_dups, exact_dups  # field names
    filepaths, groups, exact_hash, exact_marked = dataset.values(
        ["filepath", approx_dups.GROUP_FIELD, exact_dups.FILEHASH_FIELD, exact_dups.MARKER_FIELD])
    position = {p: k for k, p in enumerate(paths)}
    order = [position[p] for p in filepaths]
    result = dict(steps=steps, group=[None] * len(paths), exact_marked=[None] * len(paths),
                  filehash=[None] * len(paths))
    for k, g, m, h in zip(order, groups, exact_marked, exact_hash):
        result["group"][k], result["exact_marked"][k], result["filehash"][k] = g, m, h
    candidates = [(position[a], position[b], float(s))
                  for pa, pb, sc in timers.verified for a, b, s in zip(pa, pb, sc.tolist())]
    result["candidates"] = candidates
    result["direct"] = direct_planted_scores(manifest)
    with open(os.path.join(workdir, "pipeline.json"), "w") as f:
        json.dump(result, f, default=lambda value: value.item())


def direct_planted_scores(manifest: dict) -> list:
    """Each planted copy compared with its original directly, whatever the
    index found, in the copy's true orientation only (the other one can find
    texture in a misaligned near-flat pair): ``[copy, score, flat, verified]``,
    where ``score`` is -1 for a pair too flat to compare (verification never
    confirms it) and ``flat`` says whether that is because an image has no
    detail at all."""
    from image_dedup import threads, verification

    paths = manifest["paths"]

    def compare(pair: tuple) -> list:
        original, copy, kind_name = pair
        a, b = verification._load(paths[original]), verification._load(paths[copy])
        if a is None or b is None:
            return [copy, -1.0, True, False]
        score = verification._score_or_too_flat(a, b, ("mirror" in kind_name,))
        return [copy, score, a.flat() or b.flat(), score >= verification.DEFAULT_MIN_SCORE]

    planted = [c for c in copies_of_originals(manifest) if c[2] != "exact"]
    with ThreadPoolExecutor(threads.IMAGE_THREADS) as pool:
        return list(pool.map(compare, planted))


def copies_of_originals(manifest: dict) -> list:
    """``(original, copy, kind)`` of every copy, planted or exact, by position."""
    identity, kind = manifest["identity"], manifest["kind"]
    original = {identity[k]: k for k, name in enumerate(kind) if name == "original"}
    return [(original[identity[k]], k, name) for k, name in enumerate(kind) if name != "original"]


def candidates(workdir: str) -> None:
    """``--candidates-only``: the pixel index's candidate pairs without the
    pipeline: embeddings, the pairs within the candidate threshold, planted
    pairs among them per threshold, and verification timed on a random
    sample of the candidates (for a projection). Writes
    ``workdir/candidates.json``."""
    os.environ["FIFTYONE_DEDUP_CACHE_DIR"] = os.path.join(workdir, "dedup_cache")
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import database  # noqa: F401
    from image_dedup import pixel_embeddings, verification
    from image_dedup.neighbor_search import find_pairs

    with open(os.path.join(workdir, "manifest.json")) as f:
        manifest = json.load(f)
    paths, identity = manifest["paths"], manifest["identity"]
    start = time.perf_counter()
    emb = pixel_embeddings.embed_images(paths, num_workers=4)
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    pairs = find_pairs(emb, "cosine", verification.CANDIDATE_THRESHOLD)
    search_s = time.perf_counter() - start
    planted = {(min(a, b), max(a, b)) for a, b, name in copies_of_originals(manifest) if name != "exact"}
    dist = {(int(i), int(j)): float(d) for i, j, d in zip(pairs.i, pairs.j, pairs.dist)}
    related = np.array([identity[i] == identity[j] for i, j in dist], dtype=bool)
    d = np.array(list(dist.values()))
    by_threshold = []
    for t in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3):
        within = d <= t + 1e-9
        by_threshold.append(dict(threshold=t, pairs=int(within.sum()), related=int((within & related).sum()),
                                 planted=sum(dist.get(p, 9.0) <= t + 1e-9 for p in planted)))
    rng = np.random.default_rng(0)
    sample = rng.choice(len(pairs.i), size=min(2000, len(pairs.i)), replace=False)
    start = time.perf_counter()
    scores = verification.verify_pairs([paths[k] for k in pairs.i[sample]], [paths[k] for k in pairs.j[sample]])
    verify_s = time.perf_counter() - start
    result = dict(n=len(paths), embed_s=embed_s, search_s=search_s, num_planted=len(planted),
                  by_threshold=by_threshold, sample=len(sample), sample_verify_s=verify_s,
                  sample_verified=int((scores >= verification.DEFAULT_MIN_SCORE).sum()),
                  sample_related=int(sum(identity[pairs.i[k]] == identity[pairs.j[k]] for k in sample)),
                  peak_mb=peak_mb())
    with open(os.path.join(workdir, "candidates.json"), "w") as f:
        json.dump(result, f, default=lambda value: value.item())


def candidates_report(c: dict) -> str:
    n, ms = c["n"], 1000 * c["sample_verify_s"] / max(1, c["sample"])
    lines = [
        f"Candidates only (no pipeline), N = {n:,}: pixel embeddings {_s(c['embed_s'])} "
        f"({_rate(n, c['embed_s'])} images/s), candidate search {_s(c['search_s'])}; verification of "
        f"{c['sample']:,} random candidate pairs: {_s(c['sample_verify_s'])} ({ms:.1f} ms/pair), "
        f"{c['sample_verified']:,} scored >= 0.5, {c['sample_related']:,} related; peak RSS {c['peak_mb']:,} MB",
        "",
        "| embedding distance <= | candidate pairs | of which related | planted pairs within | "
        "projected verification time |",
        "|---|---|---|---|---|",
    ]
    for row in c["by_threshold"]:
        lines.append(f"| {row['threshold']} | {row['pairs']:,} | {row['related']:,} | "
                     f"{_share(row['planted'], c['num_planted'])} | {_s(row['pairs'] * ms / 1000)} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- scoring and report

def score(manifest: dict, run: dict) -> dict:
    identity, group = manifest["identity"], run["group"]
    copies = copies_of_originals(manifest)
    members = {}
    for k, g in enumerate(group):
        if g is not None:
            members.setdefault(g, []).append(k)
    sizes = sorted((len(m) for m in members.values()), reverse=True)
    total_pairs = sum(s * (s - 1) // 2 for s in sizes)
    # byte-identical files cut from different (flat) regions are copies all the same
    filehash = run["filehash"]
    unrelated_pairs = identical_files = 0
    unrelated_groups = []
    for m in members.values():
        apart = [(a, b) for x, a in enumerate(m) for b in m[x + 1:] if identity[a] != identity[b]]
        same_file = sum(filehash[a] is not None and filehash[a] == filehash[b] for a, b in apart)
        identical_files += same_file
        unrelated_pairs += len(apart) - same_file
        if len(apart) > same_file:
            unrelated_groups.append(m)
    candidates = run["candidates"]
    cand_pairs = {(min(a, b), max(a, b)): s for a, b, s in candidates}
    per_kind = {}
    direct = {copy: (score, flat, verified) for copy, score, flat, verified in run["direct"]}

    def together(a: int, b: int) -> bool:
        return group[a] is not None and group[a] == group[b]

    for a, b, kind_name in copies:
        row = per_kind.setdefault(kind_name, [0, 0, 0, 0, 0])
        row[0] += 1
        row[1] += (min(a, b), max(a, b)) in cand_pairs
        row[2] += together(a, b)
        if b in direct:  # planted, not exact
            row[3] += direct[b][0] >= 0
            row[4] += direct[b][2]
    planted = [c for c in copies if c[2] != "exact"]
    exact = [c for c in copies if c[2] == "exact"]
    found_planted = sum(together(a, b) for a, b, _ in planted)
    comparable = [(a, b) for a, b, _ in planted if direct[b][0] >= 0]
    found_comparable = sum(together(a, b) for a, b in comparable)
    found_exact = sum(together(a, b) for a, b, _ in exact)
    exact_marked = sum(bool(run["exact_marked"][a]) and bool(run["exact_marked"][b]) for a, b, _ in exact)
    cand_related = sum(identity[a] == identity[b] for a, b in cand_pairs)
    # the sources that unrelated grouped pairs came from (first region of each image)
    regions = manifest["source_regions"]
    names = manifest["sources"]
    unrelated_sources = {}
    for m in unrelated_groups:
        for k in m:
            for src in {r[0] for r in regions[identity[k]]}:
                unrelated_sources[names[src]] = unrelated_sources.get(names[src], 0) + 1
    return dict(
        planted=len(planted), found_planted=found_planted, exact=len(exact), found_exact=found_exact,
        comparable=len(comparable), found_comparable=found_comparable,
        flat_pairs=sum(direct[b][1] for _, b, _ in planted),
        verified_directly=sum(direct[b][2] for _, b in comparable),
        exact_marked=exact_marked, grouped_images=sum(sizes), num_groups=len(sizes),
        largest=sizes[0] if sizes else 0, sizes_top=sizes[:5], total_pairs=total_pairs,
        unrelated_pairs=unrelated_pairs, identical_files=identical_files, unrelated_groups=len(unrelated_groups),
        candidates=len(cand_pairs), candidates_related=cand_related,
        candidates_verified=sum(s >= 0.5 for s in cand_pairs.values()),
        per_kind=per_kind,
        unrelated_sources=sorted(unrelated_sources.items(), key=lambda kv: -kv[1])[:8],
    )


def _pipeline_verdict(n: int, seconds: float) -> str:
    """Whether the whole pipeline met its goal, which is set at 50,000
    photos: a smaller run says nothing about it."""
    if n != 50_000:
        return f"not judged at {n:,}"
    return "met" if seconds <= PIPELINE_GOAL_S else "NOT met"


def _s(seconds: float) -> str:
    return f"{seconds:.1f} s"


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "-"


def _share(part: int, whole: int) -> str:
    return f"{part:,} / {whole:,} ({part / whole:.1%})" if whole else "0 / 0"


def report(manifest: dict, run: dict, quality: dict) -> str:
    n = manifest["n"]
    steps = run["steps"]
    approx = steps["approx"]
    parts, out = approx["parts"], approx["output"]
    exact_out = steps["exact"]["output"]
    total = sum(steps[k]["seconds"] for k in ("dataset", "exact", "approx"))
    peak = max(steps[k]["peak_mb"] for k in ("dataset", "exact", "approx"))
    index_s, embed_s = parts.get("index", 0.0), parts.get("embed", 0.0)
    search_s, verify_s = parts.get("search", 0.0), parts.get("verify", 0.0)
    rows_s, save_s = parts.get("rows", 0.0), parts.get("save", 0.0)
    other_s = approx["seconds"] - index_s - search_s - rows_s - save_s
    lines = [
        f"N = {n:,} photos ({manifest['num_originals']:,} originals from {manifest['num_tiles']:,} source "
        f"regions of {len(manifest['sources'])} photos, {manifest['num_planted']:,} planted near copies, "
        f"{manifest['num_exact']:,} exact copies; {manifest['bytes'] / 2**20:,.0f} MB of JPEG); "
        f"regions use {manifest['used_px'] / manifest['capacity_px']:.0%} of the sources' "
        f"{manifest['capacity_px'] / 1e6:.0f} MP, upscaled {manifest['scale']:.1f}x; generated in "
        f"{_s(manifest['generate_s'])} (not part of the pipeline)",
        "",
        "| step | wall time | images/s | peak RSS MB | output |",
        "|---|---|---|---|---|",
        f"| dataset: `add_samples` | {_s(steps['dataset']['seconds'])} | "
        f"{_rate(n, steps['dataset']['seconds'])} | {steps['dataset']['peak_mb']:,} | {n:,} samples |",
        f"| exact find (`find_exact_duplicate_images`) | {_s(steps['exact']['seconds'])} | "
        f"{_rate(n, steps['exact']['seconds'])} | {steps['exact']['peak_mb']:,} | "
        f"{exact_out.get('num_dups')} duplicates, {exact_out.get('num_hashed'):,} files hashed |",
        f"| approximate find (`index_source=\"pixels\"`, verified) | {_s(approx['seconds'])} | "
        f"{_rate(n, approx['seconds'])} | {approx['peak_mb']:,} | {out.get('num_dups'):,} duplicates in "
        f"{out.get('num_groups'):,} groups, {out.get('num_rejected'):,} candidate pairs rejected |",
        f"| · pixel embeddings | {_s(embed_s)} | {_rate(n, embed_s)} | | |",
        f"| · similarity brain run (`compute_similarity`) | {_s(index_s - embed_s)} | | | |",
        f"| · index rows loaded | {_s(rows_s)} | | | |",
        f"| · candidate search + grouping | {_s(search_s - verify_s)} | | | at "
        f"{out.get('threshold')} |",
        f"| · verification | {_s(verify_s)} | | | {quality['candidates']:,} candidate pairs, "
        f"{1000 * verify_s / max(1, quality['candidates']):.1f} ms/pair |",
        f"| · saving fields and views, rest | {_s(save_s + other_s)} | | | |",
        f"| **whole pipeline** | **{_s(total)}** | **{_rate(n, total)}** | {peak:,} | goal <= "
        f"{PIPELINE_GOAL_S:.0f} s at 50,000: {_pipeline_verdict(n, total)} |",
        "",
        "| quality | value | goal |",
        "|---|---|---|",
        f"| planted near copies found in one group with their original | "
        f"{_share(quality['found_planted'], quality['planted'])} | >= 95%: "
        f"{'met' if quality['found_planted'] >= PLANTED_GOAL * quality['planted'] else 'NOT met'} |",
        f"| · of those with texture to compare in the copy's true orientation (verification never confirms "
        f"a pair too flat to compare: "
        f"{quality['planted'] - quality['comparable']:,} planted pairs, {quality['flat_pairs']:,} of them "
        f"with an image without detail) | {_share(quality['found_comparable'], quality['comparable'])} | - |",
        f"| · of those with texture, verified when the copy is compared with its original directly "
        f"in that orientation (whatever the index found) | "
        f"{_share(quality['verified_directly'], quality['comparable'])} | - |",
        f"| grouped pairs that are unrelated (no shared source region, not the same file content) | "
        f"{_share(quality['unrelated_pairs'], quality['total_pairs'])} | <= 2%: "
        f"{'met' if quality['unrelated_pairs'] <= UNRELATED_GOAL * quality['total_pairs'] else 'NOT met'} |",
        f"| grouped pairs of byte-identical files cut from different regions (counted as copies) | "
        f"{quality['identical_files']:,} | - |",
        f"| exact copies grouped by the approximate find / by the exact find | "
        f"{quality['found_exact']} / {quality['exact_marked']} of {quality['exact']} | - |",
        f"| images in groups, groups | {quality['grouped_images']:,}, {quality['num_groups']:,} | - |",
        f"| largest group (top 5 sizes) | {quality['largest']} ({', '.join(map(str, quality['sizes_top']))}) "
        f"| - |",
        f"| groups holding unrelated images | {quality['unrelated_groups']:,} | - |",
        f"| candidate pairs verification compared / rejected or left out | {quality['candidates']:,} / "
        f"{out.get('num_rejected'):,} (of the compared: {quality['candidates_related']:,} related, "
        f"{quality['candidates_verified']:,} scored >= 0.5) | - |",
        "",
        "| planted edit | copies | with texture to compare | verified directly | compared by verification "
        "| found in one group |",
        "|---|---|---|---|---|---|",
    ]
    for kind_name in EDITS + COMBINED + ("exact",):
        if kind_name in quality["per_kind"]:
            c, cand, found, textured, verified = quality["per_kind"][kind_name]
            direct = f"{textured / c:.3f} | {verified / c:.3f}" if kind_name != "exact" else "- | -"
            lines.append(f"| {kind_name} | {c} | {direct} | {cand / c:.3f} | {found / c:.3f} |")
    if quality["unrelated_sources"]:
        lines += ["", "Sources of the images in groups holding unrelated images: "
                  + ", ".join(f"{name} {count}" for name, count in quality["unrelated_sources"])]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="number of photos (default 50,000)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and results")
    parser.add_argument("--workdir", default=None, help="where to write (default: a new temp dir)")
    parser.add_argument("--combined", action="store_true", help="also plant the two combined edits")
    parser.add_argument("--no-apt", action="store_true", help="only the Python packages' photos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true",
                        help="use the photos already in --workdir (a --keep run's) instead of generating")
    parser.add_argument("--workers", type=int, default=2, help="generation processes")
    parser.add_argument("--candidates-only", action="store_true",
                        help="no pipeline: count the pixel index's candidate pairs per threshold and "
                        "project the verification time from a sample")
    parser.add_argument("--pipeline", metavar="WORKDIR", help=argparse.SUPPRESS)  # the children
    parser.add_argument("--candidates", metavar="WORKDIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pipeline:
        pipeline(args.pipeline)
        return 0
    if args.candidates:
        candidates(args.candidates)
        return 0
    workdir = args.workdir or tempfile.mkdtemp(prefix="dedup-scale-quality-")
    os.makedirs(workdir, exist_ok=True)
    try:
        use_apt = False if args.no_apt else eval_photos.apt_photos_available()
        manifest_path = os.path.join(workdir, "manifest.json")
        reuse = args.reuse and os.path.exists(manifest_path)
        print(f"[{time.strftime('%H:%M:%S')}] {'reusing' if reuse else 'generating'} {args.n:,} photos in "
              f"{workdir}", file=sys.stderr, flush=True)
        if reuse:
            with open(manifest_path) as f:
                manifest = json.load(f)
            if manifest["n"] != args.n:
                raise SystemExit(f"{manifest_path} holds {manifest['n']} photos, not {args.n}")
        else:
            manifest = generate(args.n, workdir, args.seed, args.combined, use_apt, args.workers)
        if args.candidates_only:
            print(f"[{time.strftime('%H:%M:%S')}] candidates", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, os.path.abspath(__file__), "--candidates", workdir], check=True,
                           stdout=sys.stderr)
            with open(os.path.join(workdir, "candidates.json")) as f:
                print(candidates_report(json.load(f)))
            return 0
        print(f"[{time.strftime('%H:%M:%S')}] pipeline", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--pipeline", workdir], check=True,
                       stdout=sys.stderr)
        with open(os.path.join(workdir, "pipeline.json")) as f:
            run = json.load(f)
        quality = score(manifest, run)
        text = report(manifest, run, quality)
        print(text)
        with open(os.path.join(workdir, "report.md"), "w") as f:
            f.write(text + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
