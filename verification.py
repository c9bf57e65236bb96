"""Verification of candidate near-duplicate pairs by comparing the two images.

An index (pixel embeddings, or any model's embeddings) finds candidate pairs
at a loose threshold; each candidate is then confirmed or rejected here, so
that "the same photo, edited" (resized, recompressed, cropped, slightly
rotated, mirrored, brightened, watermarked) is told apart from "another shot
of the same scene" (a stereo view, the next frame, a burst frame shifted
sideways) and from same-layout documents with different text.

For a pair ``(a, b)``, at a small size (:data:`SIZE` pixels on the long side):

1.  ORB key points of both, matched, and a similarity transform (scale,
    rotation, shift) from ``b`` to ``a`` fitted by RANSAC; if too few
    matches agree, ``b`` is simply stretched onto ``a``'s frame;
2.  ``b`` is warped onto ``a``; the overlap must cover most of one of the two
    images (an edited copy lies inside its original; two frames of a burst
    overlap only partly);
3.  the band-pass detail of both (difference of Gaussians: brightness and
    contrast changes and noise drop out) is compared cell by cell on a grid
    over the overlap: the score is the share of textured cells whose details
    correlate. A watermark or sticker spoils a few cells; parallax (another
    viewpoint) or different text spoils most;
4.  with ``mirror=True`` the mirrored ``b`` is tried too; the better score
    counts.

Identical files score 1. A pair with too little texture to compare (flat or
nearly flat images: sky, bokeh, smooth wallpaper, solid colours) is never
confirmed: matching mean colours said "same photo" for different near-flat
crops of one wallpaper in the scale benchmark (benchmarks/scale_quality.py),
and a delete must never rest on that. Byte-identical copies of such images
are still found by the exact workflow.

Cost: about 2-4 ms per pair on one core at the default size, images decoded
with Pillow's JPEG draft mode; each image is decoded once per call however
many pairs it is in.
"""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
from PIL import Image, ImageOps

try:
    import cv2
except ImportError:  # pragma: no cover - opencv-python-headless is a dependency
    cv2 = None

SIZE = 256  # long side of the compared images, pixels
GRID = 8  # cells per side of the comparison grid
MIN_INLIERS = 8
ORB_FEATURES = 600
ORB_PATCH = 15
FAST_THRESHOLD = 5
RATIO = 0.85  # Lowe's ratio test of ORB matches
MIN_COVERAGE = 0.62  # below: partial overlap (score 0), full weight from 0.85
FULL_COVERAGE = 0.85
CELL_MIN_CORRELATION = 0.85
DETAIL_SIGMAS = (0.7, 2.0)
MIN_DETAIL = 1.0  # grey levels: a cell with less detail in both images says nothing
MIN_TEXTURED_CELLS = 12  # of GRID x GRID: fewer, and a few chance matches would decide
# 0.5 was tuned on quality.py's tuning photos; at scale (benchmarks/scale_quality.py,
# 1,500 varied photos cut from wallpapers and other photos) it grouped 14% unrelated
# pairs (different regions of self-similar wallpapers); 0.7 grouped 3.1%, at the cost
# of recall (held-out F1 0.951 -> 0.905). A delete must not rest on a doubtful pair.
DEFAULT_MIN_SCORE = 0.7
SHIFTS = ((0, 0),)  # (dy, dx) shifts tried per cell; more tolerate misalignment, at a cost
# the pixel index's candidate threshold (plain cosine distance): looser than
# pixel_embeddings.DEFAULT_THRESHOLD; verification removes the look-alikes
CANDIDATE_THRESHOLD = 0.3


class _Image:
    """One decoded image: grey pixels, detail, ORB features."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            self.digest = hashlib.blake2b(f.read(), digest_size=16).digest()
        with Image.open(path) as image:
            image.draft("RGB", (SIZE, SIZE))
            image = ImageOps.exif_transpose(image).convert("RGB")
            scale = SIZE / max(image.size)
            if scale < 1:
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                     Image.Resampling.BOX)
            rgb = np.asarray(image, dtype=np.float32)
        self.grey = np.ascontiguousarray(rgb @ np.array([0.299, 0.587, 0.114], np.float32))
        self.detail = _detail(self.grey)
        self.detail_mirrored = np.ascontiguousarray(self.detail[:, ::-1])
        self._features = {}

    def features(self, mirrored: bool):
        if mirrored not in self._features:
            grey = self.grey[:, ::-1] if mirrored else self.grey
            grey8 = np.ascontiguousarray(np.clip(grey, 0, 255).astype(np.uint8))
            orb = cv2.ORB_create(nfeatures=ORB_FEATURES, edgeThreshold=ORB_PATCH, patchSize=ORB_PATCH,
                                 fastThreshold=FAST_THRESHOLD)
            kp, desc = orb.detectAndCompute(grey8, None)
            pts = np.float32([k.pt for k in kp]) if kp else np.empty((0, 2), np.float32)
            self._features[mirrored] = (pts, desc)
        return self._features[mirrored]


def _detail(grey: np.ndarray) -> np.ndarray:
    """Band-pass detail (difference of Gaussians)."""
    return cv2.GaussianBlur(grey, (0, 0), DETAIL_SIGMAS[0]) - cv2.GaussianBlur(grey, (0, 0), DETAIL_SIGMAS[1])


def _transform(a: _Image, b: _Image, mirrored: bool) -> Optional[np.ndarray]:
    """The 2x3 similarity transform from (mirrored) b to a, or None."""
    pa, da = a.features(False)
    pb, db = b.features(mirrored)
    if da is None or db is None or len(pa) < MIN_INLIERS or len(pb) < MIN_INLIERS:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    knn = matcher.knnMatch(db, da, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    src = pb[[m.queryIdx for m in good]]
    dst = pa[[m.trainIdx for m in good]]
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                  ransacReprojThreshold=3.0, maxIters=500)
    if matrix is None or int(inliers.sum()) < MIN_INLIERS:
        return None
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    angle = abs(float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))))
    if not (0.3 < scale < 3.0) or angle > 15:
        return None
    return matrix


def _stretch(a: _Image, b: _Image) -> np.ndarray:
    ha, wa = a.grey.shape
    hb, wb = b.grey.shape
    return np.float32([[wa / wb, 0, 0], [0, ha / hb, 0]])


def _cell_means(values: np.ndarray) -> np.ndarray:
    """The mean of ``values`` over each cell of a GRID x GRID grid."""
    return cv2.resize(values, (GRID, GRID), interpolation=cv2.INTER_AREA)


def _score_aligned(a: _Image, b: _Image, matrix: np.ndarray, mirrored: bool) -> float:
    ha, wa = a.grey.shape
    hb, wb = b.grey.shape
    detail_b = b.detail_mirrored if mirrored else b.detail
    warped = cv2.warpAffine(detail_b, matrix, (wa, ha), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones_like(detail_b), matrix, (wa, ha), flags=cv2.INTER_NEAREST)
    cov_a = float(mask.mean())  # share of a covered by b
    cov_b = cov_a * wa * ha / (abs(np.linalg.det(matrix[:, :2])) * wb * hb)  # share of b inside a
    coverage = max(cov_a, min(cov_b, 1.0))
    weight = float(np.clip((coverage - MIN_COVERAGE) / (FULL_COVERAGE - MIN_COVERAGE), 0, 1))
    if weight == 0:
        return 0.0
    inside = cv2.erode(mask, np.ones((5, 5), np.uint8))
    inside[:2], inside[-2:], inside[:, :2], inside[:, -2:] = 0, 0, 0, 0
    x = a.detail * inside
    n = _cell_means(inside)
    safe = np.maximum(n, 1e-6)
    mx = _cell_means(x) / safe
    vx = np.maximum(_cell_means(x * x) / safe - mx * mx, 0)
    corr = np.full((GRID, GRID), -1.0, np.float32)
    vy_max = np.zeros((GRID, GRID), np.float32)
    for dy, dx in SHIFTS:  # tolerate the alignment's sub-pixel errors, cell by cell
        y = (np.roll(warped, (dy, dx), axis=(0, 1)) if dy or dx else warped) * inside
        my = _cell_means(y) / safe
        vy = np.maximum(_cell_means(y * y) / safe - my * my, 0)
        cxy = _cell_means(x * y) / safe - mx * my
        np.maximum(corr, cxy / np.sqrt(np.maximum(vx * vy, 1e-12)), out=corr)
        np.maximum(vy_max, vy, out=vy_max)
    vy = vy_max
    textured = (n >= 0.5) & (np.maximum(vx, vy) >= MIN_DETAIL**2)
    if textured.sum() < MIN_TEXTURED_CELLS:
        return -1.0  # too little texture to say
    matched = textured & (corr >= CELL_MIN_CORRELATION)
    return weight * float(matched.sum()) / float(textured.sum())


def verify_pair(a: _Image, b: _Image, mirror: bool = True) -> float:
    """The score of one pair of decoded images (see :func:`verify_pairs`)."""
    if a.digest == b.digest:
        return 1.0
    best = -1.0
    for mirrored in (False, True) if mirror else (False,):
        matrix = _transform(a, b, mirrored)
        candidates = [matrix] if matrix is not None else []
        candidates.append(_stretch(a, b))
        for m in candidates:
            best = max(best, _score_aligned(a, b, m, mirrored))
        if best >= 0.9:
            break
    return max(best, 0.0)  # too little texture to compare: not confirmed


def verify_pairs(
    paths_a: list,
    paths_b: list,
    mirror: bool = True,
    num_workers: int = 2,
) -> np.ndarray:
    """Scores pairs of image files: 1 for the same photo (possibly edited),
    near 0 for different photos or different shots of one scene.

    Args:
        paths_a: image files, one per pair
        paths_b: the other image file of each pair
        mirror: also compare each ``b`` mirrored left-right, so a mirrored
            copy counts as the same photo
        num_workers: threads

    Returns:
        a float64 array of ``len(paths_a)`` scores in [0, 1]; keep pairs with
        a score ``>= DEFAULT_MIN_SCORE``. An unreadable image scores 0.

    Raises:
        ImportError: if OpenCV (``opencv-python-headless``) is not installed
    """
    if cv2 is None:
        raise ImportError("verification needs OpenCV: pip install opencv-python-headless")
    if len(paths_a) != len(paths_b):
        raise ValueError("paths_a and paths_b must have the same length")
    cv2.setNumThreads(1)
    unique = sorted(set(paths_a) | set(paths_b))

    def load(path):
        try:
            return _Image(path)
        except (OSError, ValueError):
            return None

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        images = dict(zip(unique, pool.map(load, unique)))

        def one(pair):
            a, b = images[pair[0]], images[pair[1]]
            if a is None or b is None:
                return 0.0
            return verify_pair(a, b, mirror)

        scores = list(pool.map(one, zip(paths_a, paths_b), chunksize=16))
    return np.asarray(scores, dtype=np.float64)


def confirm_pairs(
    i: np.ndarray, j: np.ndarray, scores: np.ndarray, min_score: float = DEFAULT_MIN_SCORE
) -> np.ndarray:
    """Which candidate pairs to keep: those that verify, plus those whose two
    images both verify against a common third image.

    Two edits of one photo (say a crop and a rotated copy) may overlap too
    little to verify against each other while each verifies against the
    original; the greedy grouping, which keeps the first sample in index
    order, would then split them if the crop came first.

    Args:
        i: first positions of the candidate pairs
        j: second positions
        scores: :func:`verify_pairs` scores of the pairs
        min_score: the score a pair needs to verify

    Returns:
        a boolean mask over the pairs
    """
    verified = np.asarray(scores) >= min_score
    linked = {}
    for a, b in zip(np.asarray(i)[verified].tolist(), np.asarray(j)[verified].tolist()):
        linked.setdefault(a, set()).add(b)
        linked.setdefault(b, set()).add(a)
    keep = verified.copy()
    for k in np.nonzero(~verified)[0].tolist():
        a, b = int(i[k]), int(j[k])
        if linked.get(a, set()) & linked.get(b, set()):
            keep[k] = True
    return keep
