"""What one image costs a near-duplicate find at camera sizes.

``scale_quality.py``'s photos are about 640x480; a camera's are 12 MP or more,
where decoding the JPEG is most of the work, and a find decodes each image
twice: the pixel index for its thumbnail, verification again for each image it
compares. This times both per image (median of 9 runs, one thread) on one real
photo saved at several sizes as baseline and as progressive JPEG (quality 90):
the index's thumbnail (``pixel_embeddings._thumbnail``) and verification's work
per image (``verification._load``: read, decode, resize; then its detail bands
and its ORB key points in both orientations, which are computed once per image
when first needed), and what 50,000 such photos would take on two cores.

Usage: ``python benchmarks/photo_sizes.py [--photo PATH]`` (default: the
Debian wallpaper of ``eval_photos`` with the largest file, else
scikit-image's astronaut).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Optional

from PIL import Image

import eval_photos  # beside this script

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from plugin_import import import_plugin_package  # noqa: E402

import_plugin_package()
from image_dedup import pixel_embeddings, verification  # noqa: E402

SIZES = ((640, 480), (1920, 1440), (4000, 3000), (6000, 4000))
NUM_PHOTOS = 50_000
CORES = 2


def source_photo(path: Optional[str] = None) -> tuple:
    """``(photo, name)``: the photo to save at each size: ``path``, else the
    wallpaper with the largest file, else scikit-image's astronaut."""
    if path is None and eval_photos.apt_photos_available():
        path = max(eval_photos._wallpapers(), key=os.path.getsize)  # the most detail to decode
    if path is None:
        import skimage.data
        return Image.fromarray(skimage.data.astronaut()), "scikit-image astronaut"
    with Image.open(path) as image:
        return image.convert("RGB"), os.path.basename(path)


def median_ms(work: Callable[[], object], repeats: int = 9) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def verification_work(path: str) -> None:
    image = verification._load(path)
    image.flat()  # the detail bands (the finest with detail; a pair may ask for more)
    image.features(False), image.features(True)


def timed_row(photo: Image.Image, size: tuple, progressive: bool, folder: str) -> str:
    """One table row: ``photo`` saved at ``size``, then timed."""
    kind = "progressive" if progressive else "baseline"
    path = os.path.join(folder, f"{size[0]}x{size[1]}_{kind}.jpg")
    photo.resize(size, Image.Resampling.LANCZOS).save(path, quality=90, progressive=progressive)
    thumb = median_ms(lambda: pixel_embeddings._thumbnail(path))
    verify = median_ms(lambda: verification_work(path))
    total_s = NUM_PHOTOS * (thumb + verify) / 1000 / CORES
    return (f"| {size[0]}×{size[1]} | {kind} | {os.path.getsize(path) / 1e6:.2f} MB | {thumb:.1f} ms | "
            f"{verify:.1f} ms | {total_s:,.0f} s |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", default=None, help="the photo to save at each size")
    args = parser.parse_args(argv)
    photo, name = source_photo(args.photo)
    print(f"source: {name} ({photo.width}x{photo.height}); one thread; {NUM_PHOTOS:,} photos on {CORES} cores")
    print()
    print(f"| photo | JPEG | file | index thumbnail | verification per image | "
          f"both, × {NUM_PHOTOS:,} photos on {CORES} cores |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="dedup-sizes-") as folder:
        for size in SIZES:
            for progressive in (False, True):
                print(timed_row(photo, size, progressive, folder))


if __name__ == "__main__":
    main()
