"""Perceptual image embeddings computed from pixels: no model, no download.

Each image becomes one unit vector of two parts:

-   **structure**: the low-frequency DCT coefficients (``u + v <= ``
    :data:`MAX_FREQUENCY`, no DC) of a 32x32 luminance thumbnail, each
    multiplied by the square root of its frequency ``(u^2 + v^2) ** 0.25``. Natural photos put most
    energy in the lowest frequencies; the fixed weighting flattens that
    spectrum, so two unrelated photos are nearly orthogonal instead of
    sharing a "bright sky above, dark ground below" direction. The weights
    are constants, not statistics of a dataset.
-   **colour**: a soft histogram of the thumbnail's pixels over a fixed grid
    of luminance x chroma cells (square-rooted, Hellinger style), so two
    flat images of different colours land in different cells, and a
    non-empty image is never the zero vector.

The structure part is weighted by the image's contrast (a flat image is all
colour), and is **mirror invariant** by default: a horizontal flip changes
the sign of exactly the coefficients with odd horizontal frequency ``u``;
those are replaced by their magnitudes. ``mirror_invariant=False`` keeps
their signs, for datasets where left and right matter.

Distances are meant as **plain cosine distances of the stored vectors, with
no centring on the dataset's mean**: an image's embedding depends on that
image alone, so a threshold means the same on every dataset. (Mean-centring
would make distances depend on what else is indexed.)
:data:`DEFAULT_THRESHOLD` was chosen on the tuning part of
``benchmarks/quality.py``; the held-out part's numbers are in its output.
Different shots of one scene (stereo views, bursts) and same-layout
documents can be this close too: :mod:`verification` compares the images
themselves for the candidate pairs.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
from PIL import Image, ImageOps
from scipy.fft import dctn

import fiftyone as fo
import fiftyone.brain as fob

from . import similarity, threads
from .progress import Progress

THUMBNAIL = 32
MAX_FREQUENCY = 6  # DCT coefficients with u + v <= this, without DC
COLOUR_BINS = (4, 5, 5)  # luminance x blue chroma x red chroma cells
COLOUR_WEIGHT = 0.45  # share of the colour part in a textured image's vector
CONTRAST_KNEE = 6.0  # structure energy (grey levels) at which structure counts half

_V, _U = np.nonzero(np.add.outer(np.arange(THUMBNAIL), np.arange(THUMBNAIL)) <= MAX_FREQUENCY)
_KEEP = (_U + _V) > 0
_V, _U = _V[_KEEP], _U[_KEEP]
_FREQ_WEIGHT = (_U**2 + _V**2).astype(np.float64) ** 0.25  # sqrt of the frequency
_ODD_U = (_U % 2) == 1
NUM_STRUCTURE = len(_U)
NUM_COLOUR = int(np.prod(COLOUR_BINS))
DIM = NUM_STRUCTURE + NUM_COLOUR
DEFAULT_BRAIN_KEY = "dedup_pixels"
INDEX_KIND = "pixels"  # recorded on the brain run (similarity.index_kind)
DEFAULT_THRESHOLD = 0.2  # plain cosine distance (no centring)
BLOCK = 4096  # images embedded between progress reports
CHUNK = 256  # images a thread decodes, then embeds at once
# RGB -> (Y, Cb, Cr), all in 0..255
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _thumbnail(path: str) -> np.ndarray:
    """THUMBNAIL x THUMBNAIL x 3 float64 RGB, box-filtered."""
    with Image.open(path) as image:
        image.draft("RGB", (2 * THUMBNAIL, 2 * THUMBNAIL))  # fast JPEG decoding
        image = ImageOps.exif_transpose(image)
        if image.mode != "RGB":
            image = image.convert("RGB")
        thumb = image.resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX)
    return np.asarray(thumb, dtype=np.float64)


def _colour_histograms(ycc: np.ndarray) -> np.ndarray:
    """Soft (linear-interpolated) histograms of each image's pixels over the
    colour cells: ``n x THUMBNAIL x THUMBNAIL x 3`` -> ``n x NUM_COLOUR``."""
    pixels = ycc.reshape(len(ycc), -1, 3)
    low, frac = [], []
    for axis, bins in enumerate(COLOUR_BINS):
        values = pixels[:, :, axis] + (128.0 if axis else 0.0)
        p = np.clip(values / 256.0 * bins - 0.5, 0, bins - 1)
        lo = np.minimum(np.floor(p).astype(np.int64), bins - 2) if bins > 1 else np.zeros(p.shape, np.int64)
        low.append(lo)
        frac.append(p - lo)
    image = np.arange(len(ycc))[:, None] * NUM_COLOUR  # each image's own bins
    hist = np.zeros(len(ycc) * NUM_COLOUR)
    for corner in range(8):
        idx, weight = [], np.ones(pixels.shape[:2])
        for axis in range(3):
            up = (corner >> axis) & 1
            idx.append(low[axis] + up)
            weight = weight * (frac[axis] if up else 1 - frac[axis])
        cells = image + np.ravel_multi_index(idx, COLOUR_BINS)
        hist += np.bincount(cells.ravel(), weight.ravel(), minlength=len(hist))
    return np.sqrt(hist.reshape(len(ycc), NUM_COLOUR) / pixels.shape[1])


def embed_pixels(rgb: np.ndarray, mirror_invariant: bool = True) -> np.ndarray:
    """The embeddings of thumbnails, all at once (numpy's per-call cost, paid
    per image, held the threads of :func:`embed_images` to one core).

    Args:
        rgb: ``n x THUMBNAIL x THUMBNAIL x 3`` RGB arrays (0..255)
        mirror_invariant: make a horizontally mirrored image embed the same

    Returns:
        an ``n x DIM`` array of unit float32 vectors
    """
    ycc = rgb @ _YCC.T
    coeffs = dctn(ycc[..., 0], axes=(1, 2), norm="ortho")[:, _V, _U] * _FREQ_WEIGHT
    if mirror_invariant:
        coeffs[:, _ODD_U] = np.abs(coeffs[:, _ODD_U])
    norm = np.linalg.norm(coeffs, axis=1, keepdims=True)
    energy = norm / THUMBNAIL
    structure = np.divide(coeffs, norm, out=np.zeros_like(coeffs), where=norm > 0)
    share = energy / (energy + CONTRAST_KNEE)  # flat images: colour only
    colour = _colour_histograms(ycc)
    vectors = np.concatenate([structure * share * np.sqrt(1 - COLOUR_WEIGHT**2),
                              colour / np.linalg.norm(colour, axis=1, keepdims=True) * COLOUR_WEIGHT], axis=1)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def embed_image(path: str, mirror_invariant: bool = True) -> np.ndarray:
    """The perceptual embedding of one image file.

    Args:
        path: an image file Pillow can read
        mirror_invariant: make a horizontally mirrored copy embed the same

    Returns:
        a unit float32 vector of length :data:`DIM`
    """
    return embed_pixels(_thumbnail(path)[None], mirror_invariant)[0]


def embed_images(paths: list, num_workers: int = threads.IMAGE_THREADS, mirror_invariant: bool = True,
                 progress: Progress = None) -> np.ndarray:
    """Embeds many image files: each thread decodes the thumbnails of
    :data:`CHUNK` files and embeds them at once.

    Args:
        paths: image files
        num_workers: number of threads
        mirror_invariant: make horizontally mirrored copies embed the same
        progress: optional ``callback(fraction, label)``, called after each
            :data:`BLOCK` files

    Returns:
        an ``len(paths) x DIM`` float32 array

    Raises:
        ValueError: naming the first few files that can't be read as images
    """
    def embed_chunk(chunk: list) -> tuple:
        thumbs = [_thumbnail_or_none(path) for path in chunk]
        unreadable = [path for path, thumb in zip(chunk, thumbs) if thumb is None]
        return (None if unreadable else embed_pixels(np.stack(thumbs), mirror_invariant)), unreadable

    vectors, unreadable = [], []
    with ThreadPoolExecutor(max_workers=num_workers) as pool:
        for start in range(0, len(paths), BLOCK):
            block = paths[start : start + BLOCK]
            for chunk_vectors, chunk_unreadable in pool.map(embed_chunk, _chunks(block, CHUNK)):
                vectors.append(chunk_vectors)
                unreadable += chunk_unreadable
            if progress:
                done = start + len(block)
                progress(done / len(paths), f"embedded {done:,} of {len(paths):,} images")
    if unreadable:
        raise ValueError(
            f"{len(unreadable)} images can't be read, e.g. {unreadable[:3]}; "
            "fix or exclude them first"
        )
    return np.concatenate(vectors) if vectors else np.empty((0, DIM), np.float32)


def _thumbnail_or_none(path: str) -> Optional[np.ndarray]:
    try:
        return _thumbnail(path)
    except (OSError, ValueError):
        return None


def _chunks(items: list, size: int) -> list:
    return [items[k : k + size] for k in range(0, len(items), size)]


def compute_pixel_similarity(
    samples: fo.core.collections.SampleCollection,
    brain_key: str = DEFAULT_BRAIN_KEY,
    mirror_invariant: bool = True,
    num_workers: int = threads.IMAGE_THREADS,
    progress: Progress = None,
):
    """Builds a sklearn similarity index of ``samples`` from pixel embeddings,
    stored as a regular brain run under ``brain_key``.

    The run records that it is a pixel index, so every find uses its
    distances uncentred (see the module docstring), verifies candidates and
    applies the pixel defaults.

    Args:
        samples: the dataset or view to index
        brain_key: the brain key of the new run
        mirror_invariant: make horizontally mirrored copies embed the same
        num_workers: number of threads that decode images
        progress: optional ``callback(fraction, label)``

    Returns:
        the :class:`fiftyone.brain.similarity.SimilarityIndex`
    """
    embeddings = embed_images(samples.values("filepath"), num_workers, mirror_invariant, progress)
    index = fob.compute_similarity(samples, embeddings=embeddings, backend="sklearn", brain_key=brain_key)
    similarity.record_index_kind(samples, brain_key, INDEX_KIND)
    return index
