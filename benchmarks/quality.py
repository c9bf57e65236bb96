"""Near-duplicate quality on real photos nobody tuned on.

Builds the evaluation set of :mod:`eval_photos` (photos shipped in installed
Python and Debian packages, edited copies, hard negatives) in two parts,
tunes each method's threshold on the ``tune`` part only, and reports on the
``heldout`` part: pairwise precision / recall / F1, recall per edit kind
(original vs. its edited copy grouped), and the fraction of hard-negative
pairs merged per kind. Groups are formed by the plugin's greedy rule
(``neighbors.search_duplicates`` / ``assign_groups``); pairs within a group
are the predicted pairs.

Methods:

-   ``pixels (today)``: the pixel index as the plugin used it before this
    work: 8x8 low DCT of a 32x32 grey thumbnail, mean-centred cosine, 0.3;
-   ``pHash`` / ``dHash`` (imagehash, 64 bits): Hamming threshold tuned;
-   ``pixels (new)``: :mod:`pixel_embeddings` at its ``DEFAULT_THRESHOLD``,
    plain cosine;
-   ``pixels (new) + verification``: candidates at
    ``verification.CANDIDATE_THRESHOLD``, checked as a find checks them
    (``pair_checks.check_candidates``: each image's nearest candidates
    compared, kept if they score ``>= DEFAULT_MIN_SCORE`` or both images
    verify against a common third).
    Groups that confirmed pairs link are joined, as the find does
    (``neighbors.join_linked_groups``).

Usage: ``python benchmarks/quality.py [--install] [--no-apt] [--out DIR]
[--seed N] [--measure-on tune]``. ``--install`` first installs the Debian
packages with photos (root); ``--seed`` draws other edits, documents and
order; ``--measure-on tune`` measures the tables on the tuning part, to see
how well the rules fit the photos they were chosen on (never a quality
figure).
"""

import argparse
import os
import sys
import tempfile
import time
from typing import Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import eval_photos  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests"))
from plugin_import import import_plugin_package  # noqa: E402

import_plugin_package()
from image_dedup import pixel_embeddings  # noqa: E402
from image_dedup.neighbors import Groups, Pairs, exact_distances, find_pairs, join_linked_groups  # noqa: E402,E501

try:
    from image_dedup.neighbors import assign_groups
except ImportError:  # pragma: no cover - the same rule, if the module moves
    assign_groups = None

try:
    from image_dedup import pair_checks, verification
except ImportError:
    pair_checks = verification = None

LEGACY_THRESHOLD = 0.3


# ---------------------------------------------------------------- grouping

def _assign_groups(n: int, pairs: Pairs, threshold: float) -> Groups:
    if assign_groups is not None:
        return assign_groups(n, pairs, threshold)
    close = pairs.dist <= threshold
    i, j, d = pairs.i[close], pairs.j[close], pairs.dist[close]
    is_dup = np.zeros(n, dtype=bool)
    for a, b in sorted(zip(i.tolist(), j.tolist())):
        if not is_dup[a]:
            is_dup[b] = True
    rep = np.full(n, -1)
    best = np.full(n, np.inf)
    for a, b, dist in zip(i.tolist(), j.tolist(), d.tolist()):
        for dup, kept in ((b, a), (a, b)):
            if is_dup[dup] and not is_dup[kept] and dist < best[dup]:
                best[dup], rep[dup] = dist, kept
    for kept in set(rep[rep >= 0].tolist()):
        rep[kept] = kept
    return Groups(rep, np.where(np.isfinite(best), best, 0), threshold)


def subset_pairs(pairs: Pairs, keep: np.ndarray) -> Pairs:
    return Pairs(pairs.i[keep], pairs.j[keep], pairs.dist[keep])


def group_pairs(groups: Groups) -> set:
    members = {}
    for k, r in enumerate(groups.rep.tolist()):
        if r >= 0:
            members.setdefault(r, []).append(k)
    return {(a, b) for m in members.values() for x, a in enumerate(m) for b in m[x + 1:]}


# ---------------------------------------------------------------- scoring

def score(data: eval_photos.EvalSet, groups: Groups) -> dict:
    """Pairwise and per-kind numbers of one grouping."""
    predicted = group_pairs(groups)
    truth = data.truth_pairs()
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * hits / (len(predicted) + len(truth)) if predicted or truth else 1.0
    original = {ident: k for k, (ident, kind) in enumerate(zip(data.identity, data.kind))
                if kind in ("original", "document")}
    per_edit = {}
    for k, (ident, kind) in enumerate(zip(data.identity, data.kind)):
        if kind in eval_photos.EDIT_KINDS or kind in eval_photos.DOC_EDIT_KINDS:
            pair = tuple(sorted((original[ident], k)))
            per_edit.setdefault(kind, []).append(pair in predicted)
    per_hard = {}
    for a, b, kind in data.hard_pairs:
        per_hard.setdefault(kind, []).append((a, b) in predicted)
    hard_all = [v for vals in per_hard.values() for v in vals]
    return dict(
        precision=precision, recall=recall, f1=f1,
        false_pairs=len(predicted - truth),
        edit_recall={k: float(np.mean(v)) for k, v in per_edit.items()},
        hard_merged={k: float(np.mean(v)) for k, v in per_hard.items()},
        hard_counts={k: (int(np.sum(v)), len(v)) for k, v in per_hard.items()},
        hard_merged_all=float(np.mean(hard_all)) if hard_all else 0.0,
    )


def f1_interval(identity: list, predicted: set, truth: set, rounds: int = 2000, seed: int = 0) -> tuple:
    """The middle 95% of F1 over resamplings of the photos (each with all its
    copies) with replacement: how much F1 depends on which photos happen to
    be held out. A false pair counts half to each of its two photos.

    Args:
        identity: each image's photo (copies share it)
        predicted: the grouped pairs ``(a, b)``
        truth: the duplicate pairs

    Returns:
        ``(low, high)``
    """
    photos = {ident: k for k, ident in enumerate(dict.fromkeys(identity))}
    found, missed, false = (np.zeros(len(photos)) for _ in range(3))
    for a, b in truth:
        (found if (a, b) in predicted else missed)[photos[identity[a]]] += 1
    for a, b in predicted - truth:
        false[photos[identity[a]]] += 0.5
        false[photos[identity[b]]] += 0.5
    draws = np.random.default_rng(seed).integers(0, len(photos), (rounds, len(photos)))
    tp, fn, fp = found[draws].sum(axis=1), missed[draws].sum(axis=1), false[draws].sum(axis=1)
    f1 = 2 * tp / np.maximum(2 * tp + fn + fp, 1)
    low, high = np.quantile(f1, [0.025, 0.975])
    return float(low), float(high)


# ---------------------------------------------------------------- methods

def legacy_embed(path: str) -> np.ndarray:
    """The plugin's pixel embedding before this work (for comparison)."""
    from PIL import Image, ImageOps
    from scipy.fft import dctn
    with Image.open(path) as image:
        image.draft("L", (64, 64))
        thumb = ImageOps.exif_transpose(image).convert("L").resize((32, 32), Image.Resampling.BOX)
    vector = dctn(np.asarray(thumb, dtype=np.float64), norm="ortho")[:8, :8].ravel()[1:]
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).astype(np.float32)


def hash_bits(paths: list, kind: str) -> np.ndarray:
    """imagehash's 64-bit pHash or dHash as +-1 vectors: cosine distance =
    2 * Hamming / 64."""
    import imagehash
    from PIL import Image
    fn = {"phash": imagehash.phash, "dhash": imagehash.dhash}[kind]
    rows = []
    for p in paths:
        with Image.open(p) as image:
            rows.append(fn(image).hash.ravel())
    return np.where(np.stack(rows), 1.0, -1.0).astype(np.float32)


def _threaded(fn, paths, workers=2):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(fn, paths)))


class Method:
    """An embedding + a threshold rule (+ optional verification)."""

    def __init__(self, name, embed, centre=False, thresholds=None, fixed=None,
                 verify=False, unit="cosine"):
        self.name, self.embed, self.centre = name, embed, centre
        self.thresholds, self.fixed, self.verify, self.unit = thresholds, fixed, verify, unit
        self.chosen = fixed
        self.seconds = {}

    def _embeddings(self, data, part):
        start = time.perf_counter()
        x = self.embed(data.paths).astype(np.float64)
        self.seconds[part] = time.perf_counter() - start
        if self.centre:
            x = x - x.mean(axis=0)
        return x

    def groupings(self, data, part, thresholds) -> dict:
        """{threshold: Groups} from one pair search."""
        x = self._embeddings(data, part)
        n = len(x)
        search_at = max(thresholds)
        if self.verify:
            search_at = verification.CANDIDATE_THRESHOLD
        pairs = find_pairs(x, "cosine", search_at + 1e-9, method="exact")
        if self.verify:
            start = time.perf_counter()
            keep, scores = pair_checks.check_candidates(pairs.i, pairs.j, pairs.dist, data.paths)
            self.seconds[part + "_verify"] = time.perf_counter() - start
            self.num_candidates = int(np.isfinite(scores).sum())
            pairs = subset_pairs(pairs, keep)
            groups = _assign_groups(n, pairs, search_at + 1e-9)
            groups = join_linked_groups(groups, pairs.i, pairs.j,
                                        lambda a, b: exact_distances(x, a, b, "cosine"))
            return {t: groups for t in thresholds}
        return {t: _assign_groups(n, pairs, t + 1e-9) for t in thresholds}

    def tune(self, data):
        if self.fixed is not None:
            return self.fixed
        results = self.groupings(data, "tune", self.thresholds)
        f1 = {t: score(data, g)["f1"] for t, g in results.items()}
        self.chosen = max(f1, key=lambda t: (round(f1[t], 4), -t))
        return self.chosen

    def measure(self, data) -> dict:
        """The scores of the chosen threshold on ``data`` (the part measured on), with
        the F1 interval over photo resamplings (only here: tuning needs just the F1)."""
        groups = self.groupings(data, "measured", [self.chosen])[self.chosen]
        interval = f1_interval(data.identity, group_pairs(groups), data.truth_pairs())
        return dict(score(data, groups), f1_interval=interval)


def methods() -> list:
    found = [
        Method("pixels (today): centred cosine", lambda p: _threaded(legacy_embed, p),
               centre=True, fixed=LEGACY_THRESHOLD),
        Method("pHash (imagehash)", lambda p: hash_bits(p, "phash"),
               thresholds=[2 * h / 64 for h in range(0, 25)], unit="hamming"),
        Method("dHash (imagehash)", lambda p: hash_bits(p, "dhash"),
               thresholds=[2 * h / 64 for h in range(0, 25)], unit="hamming"),
        Method("pixels (new)", lambda p: pixel_embeddings.embed_images(p, num_workers=2),
               fixed=pixel_embeddings.DEFAULT_THRESHOLD),
    ]
    if verification is not None:
        found.append(Method("pixels (new) + verification",
                            lambda p: pixel_embeddings.embed_images(p, num_workers=2),
                            fixed=verification.CANDIDATE_THRESHOLD, verify=True))
    return found


def sweep(method: Method, data, thresholds) -> list:
    """(threshold, score) for a threshold sweep (for choosing defaults)."""
    return [(t, score(data, g)) for t, g in method.groupings(data, "sweep", thresholds).items()]


def _threshold_text(m: Method) -> str:
    if m.unit == "hamming":
        return f"Hamming {round(m.chosen * 32)}"
    return f"{m.chosen:.3f}"


def report(rows: list, data) -> str:
    kinds = [k for k in eval_photos.HARD_NEGATIVE_KINDS if any(h[2] == k for h in data.hard_pairs)]
    counts = {k: sum(1 for h in data.hard_pairs if h[2] == k) for k in kinds}
    lines = ["| method | threshold | precision | recall | F1 | hard negatives merged | "
             + " | ".join(f"{k} ({counts[k]} pairs)" for k in kinds)
             + " | F1, 95% of photo resamplings | images/s (embedding + verification) |",
             "|" + "---|" * (8 + len(kinds))]
    for m, s in rows:
        speed = len(data.paths) / (m.seconds["measured"] + m.seconds.get("measured_verify", 0.0))
        lines.append(
            f"| {m.name} | {_threshold_text(m)} | {s['precision']:.3f} | {s['recall']:.3f} | "
            f"**{s['f1']:.3f}** | {s['hard_merged_all']:.1%} | "
            + " | ".join(f"{s['hard_counts'][k][0]}" for k in kinds)
            + " | {:.3f}–{:.3f}".format(*s["f1_interval"]) + f" | {speed:,.0f} |"
        )
    edit_kinds = [k for k in eval_photos.EDIT_KINDS + eval_photos.DOC_EDIT_KINDS
                  if k in rows[0][1]["edit_recall"]]
    lines += ["", "Recall per edit kind (the original and its copy grouped):", "",
              "| method | " + " | ".join(edit_kinds) + " |", "|" + "---|" * (1 + len(edit_kinds))]
    for m, s in rows:
        lines.append(f"| {m.name} | " + " | ".join(f"{s['edit_recall'][k]:.2f}" for k in edit_kinds) + " |")
    return "\n".join(lines)


def distance_histogram(data, png: Optional[str] = None) -> str:
    """The pixel index's cosine distances of duplicate pairs (an original and
    its copy, or two copies) and of each image's nearest non-duplicate, as a
    quantile table (and a histogram image at ``png``)."""
    x = pixel_embeddings.embed_images(data.paths, num_workers=2).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dist = np.clip(1.0 - x @ x.T, 0.0, 2.0)
    same = np.equal.outer(np.asarray(data.identity, dtype=object), np.asarray(data.identity, dtype=object))
    upper = np.triu(np.ones_like(same), 1)
    duplicate = dist[same & upper]
    nearest_other = np.where(same, np.inf, dist).min(axis=1)
    hard = np.array([dist[a, b] for a, b, _ in data.hard_pairs])
    rows = [("duplicate pairs", duplicate), ("nearest non-duplicate of each image", nearest_other),
            ("hard-negative pairs", hard)]
    quantiles = (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    lines = ["| pixel-index cosine distance | pairs | " + " | ".join(f"{q:.0%}" for q in quantiles) + " |",
             "|" + "---|" * (2 + len(quantiles))]
    lines += [f"| {name} | {len(v):,} | " + " | ".join(f"{np.quantile(v, q):.3f}" for q in quantiles) + " |"
              for name, v in rows if len(v)]
    if png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 3.2))
        bins = np.linspace(0, 0.6, 61)
        for name, v in rows:
            ax.hist(np.minimum(v, 0.6), bins=bins, alpha=0.55, label=f"{name} ({len(v):,})", density=True)
        for t, style in ((pixel_embeddings.DEFAULT_THRESHOLD, "--"), (verification.CANDIDATE_THRESHOLD, ":")):
            ax.axvline(t, color="black", linestyle=style, linewidth=1)
        ax.set_xlabel("cosine distance in the pixel index (0.6 = 0.6 or more)")
        ax.set_ylabel("density")
        ax.set_title("Held-out photos: duplicates vs non-duplicates (lines: 0.2 alone, 0.3 with verification)",
                     fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(png, dpi=110)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--install", action="store_true", help="apt-get install the photo packages first")
    parser.add_argument("--no-apt", action="store_true", help="only the Python packages' photos")
    parser.add_argument("--out", default=None,
                        help="folder for the image files (default: a temp dir, removed at the end)")
    parser.add_argument("--seed", type=int, default=0, help="the random draw of edits, documents and order")
    parser.add_argument("--measure-on", choices=("heldout", "tune"), default="heldout",
                        help="the part the tables are measured on (tune: how well the rules fit the photos "
                             "they were chosen on, never a quality figure)")
    parser.add_argument("--histogram", default=None, metavar="PNG",
                        help="also save the held-out distance histogram to this image file")
    args = parser.parse_args(argv)
    if args.install:
        eval_photos.install_apt_photos()
    use_apt = False if args.no_apt else eval_photos.apt_photos_available()
    with tempfile.TemporaryDirectory(prefix="dedup-quality-") as scratch:
        return measure_and_report(args.out or scratch, use_apt, args)


def measure_and_report(out: str, use_apt: bool, args: argparse.Namespace) -> list:
    """Builds both parts in ``out``, tunes each method on one and prints its tables on the other."""
    parts = {p: eval_photos.build_eval_set(os.path.join(out, p), p, use_apt=use_apt, seed=args.seed)
             for p in ("tune", "heldout")}
    measured = parts[args.measure_on]
    print(f"photos from Debian packages: {'yes' if use_apt else 'no'}; tune part "
          f"{len(parts['tune'].paths)} images, held-out part {len(parts['heldout'].paths)} images; "
          f"measured on the {args.measure_on} part: {len(measured.truth_pairs())} duplicate pairs, "
          f"{len(measured.hard_pairs)} hard-negative pairs")
    rows = []
    for m in methods():
        m.tune(parts["tune"])
        rows.append((m, m.measure(measured)))
        if m.verify:
            print(f"verification: {m.num_candidates} candidate pairs in "
                  f"{m.seconds['measured_verify']:.2f} s "
                  f"({1000 * m.seconds['measured_verify'] / max(1, m.num_candidates):.1f} ms/pair)")
    print()
    print(report(rows, measured))
    print()
    print(distance_histogram(measured, args.histogram))
    return rows


if __name__ == "__main__":
    main()
