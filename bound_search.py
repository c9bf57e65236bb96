"""A cheaper exact threshold search: candidates from a bound on each pair.

Rotate the rows onto their principal axes (an orthogonal change of basis:
dot products and distances stay the same) and split each row ``u`` into a
head, its first ``m`` coordinates, and a tail. By Cauchy-Schwarz,

    u . v = u_head . v_head + u_tail . v_tail <= u_head . v_head + |u_tail| |v_tail|

so the rows ``[u_head, |u_tail|]`` bound every pair's dot product from above,
hence its distance from below, in one matrix product of ``m + 1`` columns
instead of ``d``. A pair whose bound is beyond the threshold is beyond it:
the exact search misses nothing, and re-measures the few candidates left.

The bound prunes where the heads hold most of each row's length, or where
the rows point in many directions (heads of unrelated rows are then nearly
orthogonal); it does not where the threshold is wide. A sample of rows
decides: the smaller head (``d/4``, then ``d/2``) whose extra candidates stay
under :data:`MAX_EXTRA_RATE` of the pairs, else none (full rows).
"""

from typing import Optional

import numpy as np

from .neighbor_search import _distance_tiles

HEAD_SHARES = (4, 2)  # heads of d // 4, then d // 2 columns
# extra candidates per pair compared, at most: re-measuring one costs about as
# much as 250 pairs' saved matrix-product work (d=256, head 64)
MAX_EXTRA_RATE = 1e-3
SAMPLE_ROWS = 256
FIT_ROWS = 4096  # rows the principal axes are fitted on (any orthogonal axes keep the bound)
MIN_COMPARISONS = 10_000_000  # below this, full rows cost little anyway
MIN_DIM = 32
CHUNK_ROWS = 8192


def bound_rows(x: np.ndarray, y: Optional[np.ndarray], sq_x: Optional[np.ndarray],
               sq_y: Optional[np.ndarray], limit: float) -> Optional[tuple]:
    """Rows whose distance tiles bound the tiles of ``x`` and ``y`` from
    below, if they prune enough of the pairs at ``limit``.

    Args:
        x: ``n x d`` float32 rows (unit rows for cosine)
        y: ``m x d`` float32 rows, or None to search ``x`` against itself
        sq_x: squared norms of ``x`` for euclidean, None for cosine
        sq_y: squared norms of ``y`` for euclidean (None for cosine, or
            without ``y``)
        limit: the tile value a candidate must reach (see
            ``neighbor_search._tile_limit``)

    Returns:
        ``(bound_x, bound_y)`` (``bound_y`` None without ``y``) to pass to
        ``_distance_tiles`` with the same squared norms, or None if no head
        prunes enough (or the search is too small to gain)
    """
    n, d = x.shape
    others = len(x) if y is None else len(y)
    if d < MIN_DIM or n * others < MIN_COMPARISONS:
        return None
    axes = _principal_axes(x if y is None else np.concatenate([x[:FIT_ROWS], y[:FIT_ROWS]]))
    sample = np.sort(np.random.default_rng(0).choice(n, min(n, SAMPLE_ROWS), replace=False))
    sq_sample = None if sq_x is None else sq_x[sample]
    sq_others = sq_x if y is None else sq_y
    exact = _count_within(x[sample], sq_sample, x if y is None else y, sq_others, limit)
    for share in HEAD_SHARES:
        head = d // share
        bound_x = _head_rows(x, axes, head)
        bound_y = None if y is None else _head_rows(y, axes, head)
        found = _count_within(bound_x[sample], sq_sample, bound_x if y is None else bound_y, sq_others, limit)
        if found - exact <= MAX_EXTRA_RATE * len(sample) * others:
            return bound_x, bound_y
    return None


def _principal_axes(x: np.ndarray) -> np.ndarray:
    """The eigenvectors of ``x``'s second moment (not centred: the head must
    hold the rows' length), by decreasing eigenvalue, as columns."""
    rows = x[np.random.default_rng(1).choice(len(x), min(len(x), FIT_ROWS), replace=False)]
    _, vectors = np.linalg.eigh((rows.T @ rows).astype(np.float64))
    return vectors[:, ::-1]


def _head_rows(x: np.ndarray, axes: np.ndarray, head: int) -> np.ndarray:
    """``[u_head, |u_tail|]`` of each row, float32 (rotated in float64)."""
    out = np.empty((len(x), head + 1), dtype=np.float32)
    for start in range(0, len(x), CHUNK_ROWS):
        rotated = x[start : start + CHUNK_ROWS].astype(np.float64) @ axes
        out[start : start + len(rotated), :head] = rotated[:, :head]
        out[start : start + len(rotated), head] = np.linalg.norm(rotated[:, head:], axis=1)
    return out


def _count_within(rows, sq_rows, others, sq_others, limit) -> int:
    """How many (row, other) tile values are at most ``limit``."""
    return sum(int(np.count_nonzero(tile <= limit))
               for _, _, tile in _distance_tiles(rows, sq_rows, others, sq_others))
