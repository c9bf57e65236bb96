"""Real photographs that ship with scikit-image and scikit-learn, and the
edits a near-duplicate search should see through. Nothing is downloaded.

Used by the pixel-embedding quality test and the operator tests that need
real images.
"""

import os

import numpy as np
import skimage.data
from PIL import Image, ImageDraw, ImageEnhance, ImageFont
from sklearn.datasets import load_sample_images

# chelsea and cat are the same photo: only chelsea is used. Of the stereo
# pair only the left view is used: the right one is a near copy of it.
SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
    "immunohistochemistry", "retina", "camera", "coins", "moon", "page", "text",
    "brick", "grass", "gravel", "cell", "clock",
)
EDITS = ("resize", "jpeg", "crop", "brightness", "contrast", "noise", "text", "combined")


def photos() -> dict:
    """{name: RGB uint8 array} of the bundled photographs."""
    found = {name: getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS}
    found["motorcycle"] = skimage.data.stereo_motorcycle()[0]
    found.update(zip(("china", "flower"), load_sample_images().images))
    return {name: np.asarray(Image.fromarray(p).convert("RGB")) for name, p in found.items()}


def edit(image: Image.Image, kind: str, rng: np.random.Generator) -> tuple:
    """Applies one edit with random strength within the tested range.

    Returns:
        ``(edited image, JPEG quality to save it with)``
    """
    w, h = image.size
    quality = 90
    if kind == "resize":
        scale = rng.uniform(0.5, 0.9)
        image = image.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    elif kind == "jpeg":
        quality = int(rng.integers(30, 60))
    elif kind == "crop":
        cut_w, cut_h = rng.uniform(0.03, 0.10) * w, rng.uniform(0.03, 0.10) * h
        left, top = rng.uniform(0, cut_w), rng.uniform(0, cut_h)
        image = image.crop((round(left), round(top), round(w - cut_w + left), round(h - cut_h + top)))
    elif kind == "brightness":
        image = ImageEnhance.Brightness(image).enhance(rng.choice([0.8, 1.2]))
    elif kind == "contrast":
        image = ImageEnhance.Contrast(image).enhance(rng.choice([0.8, 1.2]))
    elif kind == "noise":
        pixels = np.asarray(image, dtype=np.float64) + rng.normal(0, 6, (h, w, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    elif kind == "text":
        draw = ImageDraw.Draw(image)
        size = max(10, h // 20)
        font = ImageFont.truetype("DejaVuSans.ttf", size)
        draw.text((w * rng.uniform(0.05, 0.5), h * rng.uniform(0.05, 0.9)), "(c) 2024 sample",
                  fill=(255, 255, 255), font=font)
    elif kind == "combined":
        for part in ("crop", "resize", "brightness", "text"):
            image, _ = edit(image, part, rng)
        quality = int(rng.integers(30, 60))
    return image, quality


def write_photo_set(folder, seed: int = 0) -> tuple:
    """Writes every photo and one copy per edit kind as JPEG files.

    Returns:
        ``(paths, sources)``: file paths and the photo each was made from
    """
    rng = np.random.default_rng(seed)
    paths, sources = [], []
    for name, pixels in photos().items():
        original = Image.fromarray(pixels)
        for kind in ("original",) + EDITS:
            image, quality = (original, 92) if kind == "original" else edit(original.copy(), kind, rng)
            path = os.path.join(str(folder), f"{name}_{kind}.jpg")
            image.save(path, quality=quality)
            paths.append(path)
            sources.append(name)
    return paths, sources
