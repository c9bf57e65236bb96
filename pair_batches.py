"""The order in which many image pairs are compared, the batches of images
decoded together, and which decoded images to keep between batches: a
decoded image costs more than a comparison (about 5 ms against 2.5 ms on one
core) and about 1 MB, so consecutive pairs should share images and a bounded
number of them stays decoded (:func:`verification.verify_pairs`).
"""

import heapq
from typing import Iterator

import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import reverse_cuthill_mckee


def local_order(paths_a: list, paths_b: list) -> list:
    """The pairs in an order where consecutive pairs share images, so that a
    batch of images covers many pairs: the images are numbered along the
    graph of the pairs (reverse Cuthill-McKee: linked images get nearby
    numbers), the pairs sorted by their higher number. At 1,500 photos this
    decoded half as many images as an order by path.

    Args:
        paths_a: the first image of each pair
        paths_b: the second image of each pair

    Returns:
        the pair indices, in that order
    """
    if not paths_a:
        return []
    number = {path: k for k, path in enumerate(sorted(set(paths_a) | set(paths_b)))}
    a = np.array([number[p] for p in paths_a], dtype=np.int64)
    b = np.array([number[p] for p in paths_b], dtype=np.int64)
    links = scipy.sparse.coo_matrix((np.ones(len(a), np.int32), (a, b)), shape=(len(number),) * 2).tocsr()
    place = np.empty(len(number), dtype=np.int64)
    place[reverse_cuthill_mckee(links + links.T, symmetric_mode=True)] = np.arange(len(number))
    return np.lexsort((np.minimum(place[a], place[b]), np.maximum(place[a], place[b]))).tolist()


def batches(order: list, paths_a: list, paths_b: list, max_images: int) -> Iterator[list]:
    """Consecutive runs of ``order`` whose pairs hold at most ``max_images``
    distinct images, so memory stays bounded however many pairs there are.

    Args:
        order: pair indices (see :func:`local_order`)
        paths_a: the first image of each pair
        paths_b: the second image of each pair
        max_images: images one batch may hold

    Returns:
        an iterator of lists of pair indices
    """
    batch, seen = [], set()
    for k in order:
        new = {paths_a[k], paths_b[k]} - seen
        if batch and len(seen) + len(new) > max_images:
            yield batch
            batch, seen = [], set()
            new = {paths_a[k], paths_b[k]}
        batch.append(k)
        seen |= new
    if batch:
        yield batch


def schedule(order: list, paths_a: list, paths_b: list, max_images: int,
             batch_images: int) -> Iterator[tuple]:
    """Batches of pairs, each with the decoded images to let go before it.

    The caller keeps decoded images from one batch to the next: before a
    batch it lets go of the images named, then decodes that batch's images
    it does not hold. Let go are the images not needed again, and, while
    more than ``max_images`` would be held, those needed again the latest
    (Belady's rule, the fewest decodes for a known order). At 50,000 photos
    (``max_images`` 512, batches of 128) this decodes each image 4.7 times
    on average, against 6.4 when each batch of 512 was decoded afresh.

    Args:
        order: pair indices (see :func:`local_order`)
        paths_a: the first image of each pair
        paths_b: the second image of each pair
        max_images: images held at once, at most
        batch_images: images one batch may hold (at least 2, at most
            ``max_images``; smaller batches leave room to keep images)

    Returns:
        an iterator of ``(pair indices, paths to let go)``
    """
    runs = list(batches(order, paths_a, paths_b, batch_images))
    needs = [{paths_a[k] for k in run} | {paths_b[k] for k in run} for run in runs]
    uses = {}  # path -> the batches that need it, latest first
    for n in range(len(runs) - 1, -1, -1):
        for path in needs[n]:
            uses.setdefault(path, []).append(n)
    held = set()
    for run, need in zip(runs, needs):
        for path in need:
            uses[path].pop()
        spare = held - need
        unused = {path for path in spare if not uses[path]}
        excess = len(held | need) - len(unused) - max_images
        latest = heapq.nlargest(max(excess, 0), spare - unused, key=lambda path: uses[path][-1])
        dropped = sorted(unused) + latest
        held = (held - set(dropped)) | need
        yield run, dropped
