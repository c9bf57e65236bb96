"""Verification beyond the sizes it was tuned at: does a pair it keeps apart
stay apart, and a copy it confirms stay confirmed, when the images come at
another resolution?

-   **Documents**: ten pages of one layout with different text
    (:func:`eval_photos.render_document`), rescaled 0.4-4x (a scan at
    another dpi: the compared size is reached through other JPEG draft
    scales and resize ratios), saved as JPEG and as PNG, and on pages of
    four sizes (smaller text). Per scale: how many of the 45 pairs of
    distinct pages verify (should be 0), and how many of the ten pages'
    JPEG q50 copies do (should be 10).
-   **Hard negatives**: the held-out part of ``quality.py``'s evaluation
    set (other shots of a scene, same-layout documents, flat images) and 300
    of its duplicate pairs, every image rescaled 0.4-2.5x. Per scale: hard
    negative pairs that verify, and the share of the duplicate pairs that
    do.

Only :func:`verification.verify_pairs` runs here (no dataset, no index):
what is measured is the pair decision. Usage:
``python benchmarks/robustness.py [--quick] [--no-apt] [--out DIR]``.
"""

import argparse
import os
import sys
import tempfile

import numpy as np
from PIL import Image

import eval_photos  # beside this script

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from plugin_import import import_plugin_package  # noqa: E402

import_plugin_package()
from image_dedup import verification  # noqa: E402

DOCUMENT_SCALES = tuple(round(0.4 + 0.15 * k, 2) for k in range(25))  # 0.4 ... 4.0
PAGE_SIZES = ((600, 780), (700, 900), (800, 1040), (900, 1170))
PHOTO_SCALES = (0.4, 0.6, 1.0, 1.5, 2.5)
NUM_PAGES = 10
NUM_DUPLICATE_PAIRS = 300


def verified(paths_a: list, paths_b: list) -> np.ndarray:
    return verification.verify_pairs(paths_a, paths_b) >= verification.DEFAULT_MIN_SCORE


def rescaled(image: Image.Image, scale: float) -> Image.Image:
    if scale == 1.0:
        return image
    size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def page_row(label: str, pages: list, folder: str, suffix: str) -> str:
    """One table row: distinct pages verified, and JPEG q50 copies verified."""
    paths, copies = [], []
    for k, page in enumerate(pages):
        paths.append(os.path.join(folder, f"{label}_{k}{suffix}"))
        page.save(paths[-1], quality=90)  # PNG ignores the quality
        copies.append(os.path.join(folder, f"{label}_{k}_q50.jpg"))
        page.convert("RGB").save(copies[-1], quality=50)
    pairs = [(x, y) for x in range(len(paths)) for y in range(x + 1, len(paths))]
    apart = verified([paths[x] for x, _ in pairs], [paths[y] for _, y in pairs])
    found = verified(paths, copies)
    return f"| {label} | {suffix[1:].upper()} | {int(apart.sum())} / {len(pairs)} | {int(found.sum())} / {len(paths)} |"


def document_rows(folder: str, scales: tuple, sizes: tuple) -> list:
    rng = np.random.default_rng(5)
    pages = [eval_photos.render_document(rng) for _ in range(NUM_PAGES)]
    rows = []
    for suffix in (".jpg", ".png"):
        for scale in scales:
            rows.append(page_row(f"{scale}x", [rescaled(p, scale) for p in pages], folder, suffix))
    for size in sizes:
        rng = np.random.default_rng(3)
        sized = [eval_photos.render_document(rng, size=size) for _ in range(NUM_PAGES)]
        rows.append(page_row(f"page {size[0]}x{size[1]}", sized, folder, ".jpg"))
    return rows


def photo_rows(folder: str, scales: tuple, use_apt: bool) -> list:
    data = eval_photos.build_eval_set(os.path.join(folder, "heldout"), "heldout", use_apt=use_apt, seed=0)
    truth = sorted(data.truth_pairs())
    pick = np.random.default_rng(0).choice(len(truth), min(NUM_DUPLICATE_PAIRS, len(truth)), replace=False)
    duplicates = [truth[k] for k in pick]
    rows = []
    for scale in scales:
        cache = {}

        def path(k: int) -> str:
            if scale == 1.0:
                return data.paths[k]
            if k not in cache:
                cache[k] = os.path.join(folder, f"{k}_{scale}.jpg")
                rescaled(Image.open(data.paths[k]).convert("RGB"), scale).save(cache[k], quality=92)
            return cache[k]

        merged = verified([path(a) for a, _, _ in data.hard_pairs], [path(b) for _, b, _ in data.hard_pairs])
        kinds = sorted({kind for (_, _, kind), m in zip(data.hard_pairs, merged) if m})
        found = verified([path(a) for a, _ in duplicates], [path(b) for _, b in duplicates])
        hard = " ".join([f"{int(merged.sum())} / {len(merged)}", *kinds])
        rows.append(f"| {scale}x | {hard} | {found.mean():.3f} of {len(found)} |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two scales of each, and no page sizes")
    parser.add_argument("--no-apt", action="store_true", help="leave out the Debian packages' photos")
    parser.add_argument("--out", default=None,
                        help="folder for the image files (default: a temp dir, removed at the end)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dedup-robustness-") as scratch:
        folder = args.out or scratch
        os.makedirs(folder, exist_ok=True)
        print_tables(folder, args.quick, False if args.no_apt else None)
    return 0


def print_tables(folder: str, quick: bool, use_apt: bool | None) -> None:
    """Prints both tables, writing their images in ``folder``."""
    print("Same-layout documents: distinct pages verified (goal 0), JPEG q50 copies verified (goal all)\n")
    print("| scale or page | format | distinct pages verified | copies verified |\n|---|---|---|---|")
    print("\n".join(document_rows(folder, (0.4, 2.5) if quick else DOCUMENT_SCALES, () if quick else PAGE_SIZES)))
    print("\nHeld-out photos rescaled: hard-negative pairs verified (goal 0), duplicate pairs verified\n"
          "directly (not through a common third, as a find also confirms them)\n")
    print("| scale | hard-negative pairs verified | duplicate pairs verified |\n|---|---|---|")
    print("\n".join(photo_rows(folder, (0.6, 1.5) if quick else PHOTO_SCALES, use_apt)))


if __name__ == "__main__":
    sys.exit(main())
