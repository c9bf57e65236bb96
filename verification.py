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
3.  the band-pass detail of both (difference of Gaussians of the
    median-filtered grey image: brightness and contrast changes and most
    noise drop out) is compared cell by cell on a grid over the overlap: the
    score is the share of cells with detail in both images whose details
    correlate. A watermark or sticker spoils a few cells; parallax (another
    viewpoint) or different text spoils most. A cell counts if its detail
    rises above the image's noise floor (that of its smoothest cells), and
    it correlates if it does as well as that noise allows; where the noise
    allows little (:data:`MIN_ATTAINABLE`), it says nothing. Both the textured
    cells and those that correlate must reach more grid rows and columns
    than one straight edge's detail does (:data:`MIN_SPAN`): mosaics of flat
    tiles split in the same place agree along that one edge, whatever else
    they hold. Smooth photos (soft gradients, bokeh) with too few textured
    cells at the finest band are compared at the next coarser one
    (:data:`BANDS`);
4.  the mean colour of each cell must follow one global brightness /
    contrast change (:func:`_tone_share`): mosaics or crops that share a
    layout (tile edges in the same places) but not their content correlate
    in their edges, not in their tones. The change is fitted on channels
    clear of black and white, then applied to one image's pixels and
    clipped to 0-255, as an edit clips them (more contrast turns a dark
    background black), and compared with the other's cell means, each image
    in turn taken as the edited one; the score is the smaller share;
5.  a score in doubt (:data:`REFINE_FROM` up to :data:`DEFAULT_MIN_SCORE`)
    is measured again after refining the key-point alignment to sub-pixel
    accuracy (ECC): rotated, JPEG-damaged copies lose fine detail to a pixel
    of misalignment;
6.  with ``mirror=True`` the mirrored ``b`` is tried too; the better score
    counts.

Identical files score 1. A pair with too little texture to compare (flat or
nearly flat images: sky, bokeh, smooth wallpaper, solid colours) is never
confirmed: matching mean colours said "same photo" for different near-flat
crops of one wallpaper in the scale benchmark (benchmarks/scale_quality.py),
and a delete must never rest on that. Byte-identical copies of such images
are still found by the exact workflow. A pair with an image that has no
detail at all (:meth:`_Image.flat`) scores 0 at once, without key points or
alignments: a fifth of the compared pairs among the scale benchmark's 50,000
photos, where it decides the same pairs in a tenth less time.

Cost: about 2-5 ms per pair on one core at the default size (a refined pair
~10 ms more), and about 5 ms per decoded image (Pillow's JPEG draft mode,
detail bands, ORB). At most :data:`MAX_DECODED` images are held decoded;
:mod:`pair_batches` orders the pairs and chooses which to keep.
``pair_checks.nearest_candidates`` bounds the pairs to verify to a few per
image.

Every constant here was chosen on ``benchmarks/quality.py``'s tuning photos
and on ``benchmarks/scale_quality.py``'s sets (:data:`MIN_ATTAINABLE` and the
coarsest band's :data:`MIN_SPAN` on the pairs its 50,000 photos wrongly
confirmed); the README reports ``quality.py``'s held-out photos.
"""

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageOps

from . import pair_batches, threads
from .progress import Progress

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
# difference-of-Gaussians bands, finest first: the first with enough textured cells decides
BANDS = ((0.7, 2.0), (1.5, 4.0), (3.0, 8.0))
MIN_DETAIL = 1.0  # grey levels: a cell with less detail in both images says nothing
MIN_TEXTURED_CELLS = 12  # of GRID x GRID: fewer, and a few chance matches would decide
# grid rows and columns the textured cells, and those that agree, must reach, per band
# of BANDS: one more than one straight edge can texture. The edge between two flat tiles
# textures the cells it crosses, and any two mosaics split there agree on it; its detail
# reaches ~3 outer sigmas either side, i.e. the next row of cells (~24 pixels) at the
# coarsest band, where two such mosaics of 50,000 photos were confirmed on three rows
MIN_SPAN = (3, 3, 4)
# a cell where noise lets the details correlate by less than this says nothing: its
# bar (CELL_MIN_CORRELATION times that) is one a chance correlation passes. Such cells
# (one image's detail below its noise floor, the other's faint) made 4 of the 6 pairs
# of different near-flat mosaics confirmed among benchmarks/scale_quality.py's 50,000
MIN_ATTAINABLE = 0.35
# chosen on quality.py's tuning photos and benchmarks/scale_quality.py's sets: at 0.5
# unrelated crops of self-similar wallpapers pass (21 pairs among 5,000 photos, 2 at 0.6
# and 0.7); 0.6 and 0.7 differ by a few copies, and 0.7 keeps a margin from that edge;
# 0.8 loses copies. A delete must not rest on a doubtful pair.
DEFAULT_MIN_SCORE = 0.7
TONE_GAIN = (0.5, 2.0)  # the contrast change a copy may have (edits of +-30% and more)
TONE_TOLERANCE = (6.0, 0.05)  # a cell's mean may miss the global change by 6 levels + 5%
# cell means this bright or dark in a channel may be clipped by an edit: left out of the
# tone's fit (a cell this bright in both images says nothing at all)
TONE_SATURATED = 240.0
TONE_DARK = 15.0
NOISE_GRID = 16
MAX_NOISE_VARIANCE = 4.0
MAX_DECODED = 512  # images held decoded at once by verify_pairs (~1 MB each)
SURE_SCORE = 0.9  # no other alignment or orientation is tried past this
REFINE_FROM = 0.2  # scores from here up to DEFAULT_MIN_SCORE get a refined alignment
ECC_CRITERIA = (3, 30, 1e-4)  # cv2.TERM_CRITERIA_COUNT | EPS, 30 iterations
# the pixel index's candidate threshold (plain cosine distance): looser than
# pixel_embeddings.DEFAULT_THRESHOLD; verification removes the look-alikes
CANDIDATE_THRESHOLD = 0.3


class _Image:
    """One decoded image: grey pixels, fine and coarse detail, ORB features."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            data = f.read()
        self.digest = hashlib.blake2b(data, digest_size=16).digest()
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (SIZE, SIZE))
            ImageOps.exif_transpose(image, in_place=True)  # a copy would cost as much as the decode
            if image.mode != "RGB":
                image = image.convert("RGB")
            scale = SIZE / max(image.size)
            if scale < 1:  # Pillow's BOX keeps small text apart; OpenCV's INTER_AREA blurred it (see tests)
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                     Image.Resampling.BOX)
            rgb = np.asarray(image, dtype=np.float32)
        self.grey = np.ascontiguousarray(rgb @ np.array([0.299, 0.587, 0.114], np.float32))
        self.rgb = rgb.astype(np.uint8)
        self._denoised = cv2.medianBlur(np.clip(self.grey, 0, 255).astype(np.uint8), 3).astype(np.float32)
        self._bands = [None] * len(BANDS)
        self._flat = None
        self._features = {}

    def band(self, k: int) -> tuple:
        """The detail band ``k`` of :data:`BANDS` and its noise floor,
        computed when first asked for (most pairs decide on the finest)."""
        if self._bands[k] is None:
            band = _band(self._denoised, BANDS[k])
            self._bands[k] = band, _noise_floor(band)
        return self._bands[k]

    def flat(self) -> bool:
        """Whether no grid cell of the image has detail above its noise
        floor in any band: a pair with it has too little texture to compare,
        so the key points and alignments need not be tried."""
        if self._flat is None:
            self._flat = not any(_has_detail(*self.band(k)) for k in range(len(BANDS)))
        return self._flat

    def features(self, mirrored: bool):
        if mirrored not in self._features:
            grey8 = np.clip(_oriented(self.grey, mirrored), 0, 255).astype(np.uint8)
            orb = cv2.ORB_create(nfeatures=ORB_FEATURES, edgeThreshold=ORB_PATCH, patchSize=ORB_PATCH,
                                 fastThreshold=FAST_THRESHOLD)
            kp, desc = orb.detectAndCompute(grey8, None)
            pts = cv2.KeyPoint_convert(kp) if kp else np.empty((0, 2), np.float32)
            self._features[mirrored] = (pts, desc)
        return self._features[mirrored]


def _oriented(pixels: np.ndarray, mirrored: bool) -> np.ndarray:
    """``pixels`` flipped left-right into a contiguous copy if ``mirrored``,
    else ``pixels`` itself."""
    return np.ascontiguousarray(pixels[:, ::-1]) if mirrored else pixels


def _band(grey: np.ndarray, sigmas: tuple) -> np.ndarray:
    """Band-pass detail (difference of Gaussians)."""
    return cv2.GaussianBlur(grey, (0, 0), sigmas[0]) - cv2.GaussianBlur(grey, (0, 0), sigmas[1])


def _transform(a: _Image, b: _Image, mirrored: bool) -> Optional[np.ndarray]:
    """The 2x3 similarity transform from (mirrored) b to a, or None."""
    pa, da = a.features(False)
    pb, db = b.features(mirrored)
    if da is None or db is None or len(pa) < MIN_INLIERS or len(pb) < MIN_INLIERS:
        return None
    # each of b's descriptors' two nearest in a (what a brute-force knnMatch computes,
    # as arrays instead of a Python object per match)
    distance, nearest = cv2.batchDistance(db, da, cv2.CV_32S, normType=cv2.NORM_HAMMING, K=2)
    good = np.flatnonzero(distance[:, 0] < RATIO * distance[:, 1])
    if len(good) < MIN_INLIERS:
        return None
    src, dst = pb[good], pa[nearest[good, 0]]
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


def _cell_means(*layers: np.ndarray, grid: int = GRID) -> list:
    """The mean of each layer (H x W, or H x W x 3) over each cell of a
    ``grid`` x ``grid`` grid: one array per layer (the layers are not
    stacked into one array first: that copy cost more than the means)."""
    return [cv2.resize(layer, (grid, grid), interpolation=cv2.INTER_AREA) for layer in layers]


def _mirror_first(matrix: np.ndarray, width: int) -> np.ndarray:
    """The warp that mirrors an image ``width`` pixels wide, then applies
    ``matrix``: warping by it equals warping the mirrored copy by
    ``matrix``, without making that copy."""
    flip = np.float64([[-1, 0, width - 1], [0, 1, 0], [0, 0, 1]])
    return (np.vstack([matrix, [0, 0, 1]]) @ flip)[:2].astype(np.float32)


def _score_aligned(a: _Image, b: _Image, matrix: np.ndarray, mirrored: bool) -> float:
    ha, wa = a.grey.shape
    hb, wb = b.grey.shape
    mask = cv2.warpAffine(np.ones_like(b.grey), matrix, (wa, ha), flags=cv2.INTER_NEAREST)
    cov_a = float(mask.mean())  # share of a covered by b
    cov_b = cov_a * wa * ha / (abs(np.linalg.det(matrix[:, :2])) * wb * hb)  # share of b inside a
    coverage = max(cov_a, min(cov_b, 1.0))
    weight = float(np.clip((coverage - MIN_COVERAGE) / (FULL_COVERAGE - MIN_COVERAGE), 0, 1))
    if weight == 0:
        return 0.0
    inside = cv2.erode(mask, np.ones((5, 5), np.uint8))
    inside[:2], inside[-2:], inside[:, :2], inside[:, -2:] = 0, 0, 0, 0
    warp_b = _mirror_first(matrix, wb) if mirrored else matrix
    for k in range(len(BANDS)):
        (band_a, noise_a), (band_b, noise_b) = a.band(k), b.band(k)
        warped = cv2.warpAffine(band_b, warp_b, (wa, ha), flags=cv2.INTER_LINEAR)
        share = _matched_share(band_a, warped, inside, noise_a, noise_b, MIN_SPAN[k])
        if share is None:
            continue  # too little texture in this band: the next, coarser one
        if weight * share < REFINE_FROM:
            return weight * share  # too low to matter: no need to look at the tones
        rgb_b = cv2.warpAffine(b.rgb, warp_b, (wa, ha))
        return weight * min(share, _tone_share(a.rgb, rgb_b, inside, enough=share))
    return -1.0  # too little texture to say


def _tone_share(x: np.ndarray, y: np.ndarray, inside: np.ndarray, enough: float = 1.0) -> float:
    """The share of grid cells whose mean colour in one image follows one
    global brightness/contrast change of the other's, clipped to 0-255 pixel
    by pixel as an edit clips it: the same gain on the three channels (white
    balance and hue stay), fitted on the cells that follow it best, so a
    watermark or sticker does not bend the fit. Either image may be the
    edited one: the better direction counts (the second is not tried if the
    first reaches ``enough``). Cells near white in both say nothing; with too
    few other cells, neither does the tone (1.0)."""
    (share,) = _cell_means(inside)
    cells = share >= 0.5
    if cells.sum() < 4:
        return 0.0

    def means(image: np.ndarray) -> np.ndarray:
        (total,) = _cell_means(image * inside[..., None])
        return total[cells] / share[cells, None]

    mx, my = means(x), means(y)
    informative = ~((mx >= TONE_SATURATED) & (my >= TONE_SATURATED)).all(axis=1)
    if informative.sum() < MIN_TEXTURED_CELLS:
        return 1.0
    first = _edited_share(x, mx, my, means, informative)
    if first >= enough:
        return first
    return max(first, _edited_share(y, my, mx, means, informative))


def _edited_share(x: np.ndarray, mx: np.ndarray, my: np.ndarray, means: Callable[[np.ndarray], np.ndarray],
                  informative: np.ndarray) -> float:
    """The share of ``informative`` cells whose mean ``my`` is that of ``x``
    after one brightness/contrast change, fitted on the cell means ``mx``,
    ``my`` and clipped pixel by pixel (``means`` gives an image's cell
    means); 0 if the fitted gain is out of :data:`TONE_GAIN`."""
    unclipped = (mx > TONE_DARK) & (mx < TONE_SATURATED) & (my > TONE_DARK) & (my < TONE_SATURATED)
    fitted = np.ones(len(mx), dtype=bool)
    for _ in range(2):
        usable = unclipped & fitted[:, None]
        if usable.sum() < 4:
            usable = np.repeat(fitted[:, None], mx.shape[1], axis=1)
        gain = _gain(mx, my, usable)
        offset = np.median(my[usable] - gain * mx[usable])
        residual = (np.abs(my - offset - gain * mx) - TONE_TOLERANCE[1] * (offset + gain * mx)).max(axis=1)
        fitted = residual <= np.quantile(residual, 0.75)
    if not TONE_GAIN[0] <= gain <= TONE_GAIN[1]:
        return 0.0
    predicted = means(cv2.addWeighted(x, gain, x, 0.0, float(offset)))  # uint8: clipped to 0-255
    agree = (np.abs(my - predicted) <= TONE_TOLERANCE[0] + TONE_TOLERANCE[1] * predicted).all(axis=1)
    return float(agree[informative].mean())


def _gain(mx: np.ndarray, my: np.ndarray, usable: np.ndarray) -> float:
    """One least-squares gain for all channels (cells x channels), fitted
    on the ``usable`` entries."""
    count = np.maximum(usable.sum(axis=0), 1)
    centred_x = np.where(usable, mx - (mx * usable).sum(axis=0) / count, 0.0)
    centred_y = np.where(usable, my - (my * usable).sum(axis=0) / count, 0.0)
    spread = float((centred_x * centred_x).sum()) / max(int(usable.sum()), 1)
    return float((centred_x * centred_y).sum() / usable.sum() / spread) if spread > 1.0 else 1.0


def _matched_share(x: np.ndarray, y: np.ndarray, inside: np.ndarray, noise_x: float = 0.0,
                   noise_y: float = 0.0, min_span: int = MIN_SPAN[0]) -> Optional[float]:
    """The share of textured grid cells (detail above the images' noise
    floors ``noise_x``, ``noise_y``, as variances, and enough of it in both
    to correlate: :data:`MIN_ATTAINABLE`) whose details correlate as well as
    that noise lets them; None if too few cells are textured, or if they, or
    the cells that correlate, reach fewer than ``min_span`` grid rows or
    columns (one straight edge's detail)."""
    x, y = x * inside, y * inside
    n, sx, sy, sxx, syy, sxy = _cell_means(inside, x, y, x * x, y * y, x * y)
    safe = np.maximum(n, 1e-6)
    mx, my = sx / safe, sy / safe
    vx = np.maximum(sxx / safe - mx * mx, 1e-6)
    vy = np.maximum(syy / safe - my * my, 1e-6)
    corr = (sxy / safe - mx * my) / np.sqrt(vx * vy)
    signal_x, signal_y = np.maximum(vx - noise_x, 0), np.maximum(vy - noise_y, 0)
    attainable = np.sqrt(np.clip(signal_x / vx, 0, 1) * np.clip(signal_y / vy, 0, 1))
    textured = (n >= 0.5) & (np.maximum(signal_x, signal_y) >= MIN_DETAIL**2) & (attainable >= MIN_ATTAINABLE)
    if textured.sum() < MIN_TEXTURED_CELLS or _span(textured) < min_span:
        return None
    matched = textured & (corr >= CELL_MIN_CORRELATION * attainable)
    share = float(matched.sum()) / float(textured.sum())
    if share >= REFINE_FROM and _span(matched) < min_span:
        return None  # agreement along one line says nothing (a lower share decides: no)
    return share


def _span(cells: np.ndarray) -> int:
    """The fewer of the grid rows and columns that hold a marked cell."""
    return int(min(cells.any(axis=0).sum(), cells.any(axis=1).sum()))


def _has_detail(band: np.ndarray, noise: float) -> bool:
    """Whether a grid cell of ``band`` has detail above the noise variance
    ``noise``: what :func:`_matched_share` asks of one image's side of a
    textured cell (the other's, and :data:`MIN_ATTAINABLE`, need a pair)."""
    return bool((_cell_variances(band) - noise >= MIN_DETAIL**2).any())


def _noise_floor(band: np.ndarray) -> float:
    """The band's noise variance: that of its smoothest cells, capped (a
    finely textured photo has no smooth cells; its texture is not noise)."""
    return float(min(np.quantile(_cell_variances(band, NOISE_GRID), 0.1), MAX_NOISE_VARIANCE))


def _cell_variances(band: np.ndarray, grid: int = GRID) -> np.ndarray:
    """The variance of ``band`` over each cell of a ``grid`` x ``grid`` grid."""
    mean, mean_square = _cell_means(band, band * band, grid=grid)
    return mean_square - mean * mean


def _refined(a: _Image, b: _Image, matrix: np.ndarray, mirrored: bool) -> Optional[np.ndarray]:
    """``matrix`` refined to sub-pixel accuracy by maximising the correlation
    of the two grey images (OpenCV's ECC), or None if that does not converge.

    Key points fitted on JPEG-damaged, rotated copies can be off by a pixel
    or two, which is enough to decorrelate fine detail; this costs ~10 ms, so
    it runs only for pairs whose first score is in doubt."""
    template = cv2.GaussianBlur(a.grey, (0, 0), 1.0)
    moving = cv2.GaussianBlur(_oriented(b.grey, mirrored), (0, 0), 1.0)
    warp = cv2.invertAffineTransform(matrix).astype(np.float32)  # a's frame -> b's
    try:
        _, warp = cv2.findTransformECC(template, moving, warp, cv2.MOTION_AFFINE, ECC_CRITERIA, None, 1)
    except cv2.error:
        return None
    return cv2.invertAffineTransform(warp)


def verify_pair(a: _Image, b: _Image, mirror: bool = True) -> float:
    """The score of one pair of decoded images (see :func:`verify_pairs`)."""
    return max(_score_or_too_flat(a, b, (False, True) if mirror else (False,)), 0.0)


def _score_or_too_flat(a: _Image, b: _Image, orientations: tuple) -> float:
    """:func:`verify_pair`'s score with ``b`` as is and/or mirrored
    (``orientations``), or -1 if the pair has too little texture to compare
    in them (an image without detail, or too few textured cells where they
    overlap in every alignment tried): such a pair is never confirmed,
    whatever it shows."""
    if a.digest == b.digest:
        return 1.0
    if a.flat() or b.flat():
        return -1.0
    best = -1.0
    for mirrored in orientations:
        matrix = _transform(a, b, mirrored)
        candidates = [(matrix, True)] if matrix is not None else []
        candidates.append((_stretch(a, b), False))  # refining a plain stretch aligned unrelated layouts
        for m, refine in candidates:
            score = _score_aligned(a, b, m, mirrored)
            if refine and REFINE_FROM <= score < DEFAULT_MIN_SCORE:
                refined = _refined(a, b, m, mirrored)
                if refined is not None:
                    score = max(score, _score_aligned(a, b, refined, mirrored))
            best = max(best, score)
            if best >= SURE_SCORE:
                return best
    return best


def verify_pairs(
    paths_a: list,
    paths_b: list,
    mirror: bool = True,
    num_workers: int = threads.IMAGE_THREADS,
    progress: Progress = None,
) -> np.ndarray:
    """Scores pairs of image files: 1 for the same photo (possibly edited),
    near 0 for different photos or different shots of one scene.

    Args:
        paths_a: image files, one per pair
        paths_b: the other image file of each pair
        mirror: also compare each ``b`` mirrored left-right, so a mirrored
            copy counts as the same photo
        num_workers: threads (default: one per core, see :mod:`threads`)
        progress: optional ``callback(fraction, label)``, called as the
            pairs are compared (at most once per percent)

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
    scores = np.zeros(len(paths_a), dtype=np.float64)
    order = pair_batches.local_order(paths_a, paths_b)
    images, done = {}, 0
    plan = pair_batches.schedule(order, paths_a, paths_b, MAX_DECODED, max(2, MAX_DECODED // 4))
    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        for chunk, dropped in plan:
            for path in dropped:
                del images[path]
            new = sorted(({paths_a[k] for k in chunk} | {paths_b[k] for k in chunk}) - images.keys())
            images.update(zip(new, pool.map(_load, new)))

            def one(k):
                a, b = images[paths_a[k]], images[paths_b[k]]
                return 0.0 if a is None or b is None else verify_pair(a, b, mirror)

            scores[chunk] = list(pool.map(one, chunk, chunksize=16))
            done += len(chunk)
            if progress and (100 * done // len(scores) > 100 * (done - len(chunk)) // len(scores)):
                progress(done / len(scores), f"compared {done:,} of {len(scores):,} image pairs")
    return scores


def _load(path: str) -> Optional[_Image]:
    try:
        return _Image(path)
    except (OSError, ValueError):
        return None
