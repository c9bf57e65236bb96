"""What confirms a candidate pair of near duplicates before it is grouped.

An index only says that two embeddings are close. Before grouping, a pair
is dropped when the user marked its samples "not duplicates" in the review
(:mod:`review_marks`), and, with verification on, when the two images
themselves do not show the same photo (:mod:`verification`: "the same
photo, edited" versus "another shot of the same scene"). Which candidates
are compared (each image's nearest few) and which are confirmed (those that
verify, and those whose two images verify against a common third) is
decided here; :mod:`verification` only compares two images.
"""

import logging
from typing import Optional

import numpy as np

from . import review_marks, verification
from .nearest_rows import nearest_of_each, nearest_of_either
from .neighbors import Groups, Pairs, join_linked_groups
from .progress import Progress
from .results import SampleCollection

logger = logging.getLogger(__name__)

MAX_CANDIDATES_PER_IMAGE = 5  # see nearest_candidates
# an image's further candidates are compared once it has this many copies confirmed, or
# one copy when they are this close (a share of the farthest candidate's distance: 0.02 for
# the pixel index's 0.3), see check_candidates
SEVERAL_COPIES = 2
CLOSE_SHARE = 1 / 15


class PairChecks:
    """A pair filter for :func:`neighbors.search_duplicates`, over samples
    given by their ids in index order.

    Attributes:
        nearest: the candidate pairs compared per image, for the search
            (:func:`neighbor_search.find_pairs`); None: all
        num_kept_apart: candidate pairs the "not duplicates" marks removed
        num_rejected: candidate pairs verification rejected, or left
            unverified (beyond both images' nearest candidates, or further
            candidates of images with no copy: :func:`check_candidates`)
        scores: ``{(i, j): score}`` of every verified pair kept (``i < j``)
    """

    def __init__(self, samples: SampleCollection, ids: list, verify: bool, mirror: bool = True,
                 progress: Progress = None):
        self.samples, self.ids, self.verify, self.mirror = samples, ids, verify, mirror
        self.progress = progress
        self.nearest = MAX_CANDIDATES_PER_IMAGE if verify else None
        self.marks = review_marks.kept_apart_sets(samples)
        self.num_kept_apart = self.num_rejected = 0
        self.scores: dict = {}
        self._paths: Optional[list] = None

    def __call__(self, pairs: Pairs) -> Pairs:
        pairs = self._without_kept_apart(pairs)
        if self.verify and len(pairs.i):
            pairs = self._verified(pairs)
        return pairs

    def _without_kept_apart(self, pairs: Pairs) -> Pairs:
        if not self.marks:
            return pairs
        ids = np.asarray(self.ids, dtype=object)
        apart = review_marks.kept_apart_mask(self.samples, ids[pairs.i], ids[pairs.j], self.marks)
        self.num_kept_apart += int(apart.sum())
        return _subset(pairs, ~apart)

    def _verified(self, pairs: Pairs) -> Pairs:
        keep, scores = check_candidates(pairs.i, pairs.j, pairs.dist, self._filepaths(), self.mirror,
                                        self.progress)
        self.num_rejected += int((~keep).sum())
        self.scores.update(zip(zip(pairs.i[keep].tolist(), pairs.j[keep].tolist()), scores[keep].tolist()))
        logger.info("Verified %d candidate pairs: %d confirmed", int(np.isfinite(scores).sum()), int(keep.sum()))
        return _subset(pairs, keep)

    def _filepaths(self) -> list:
        if self._paths is None:
            by_id = dict(zip(*self.samples.values(["id", "filepath"])))
            self._paths = [by_id[i] for i in self.ids]
        return self._paths

    def joined(self, found: Groups, distance) -> Groups:
        """``found`` with the groups that verified pairs link joined
        (:func:`neighbors.join_linked_groups`); as found without verification."""
        if not self.verify or not self.scores:
            return found
        i, j = np.array(list(self.scores), dtype=np.int64).T
        return join_linked_groups(found, i, j, distance)

    def member_scores(self, rep: np.ndarray) -> list:
        """The verification score of each grouped sample with its
        representative (None for representatives and unverified pairs).

        Args:
            rep: :attr:`neighbors.Groups.rep`

        Returns:
            a score or None per grouped sample, in the order of
            ``np.nonzero(rep >= 0)``
        """
        members = np.nonzero(rep >= 0)[0].tolist()
        return [self.scores.get((min(k, int(rep[k])), max(k, int(rep[k])))) for k in members]


def _subset(pairs: Pairs, keep: np.ndarray) -> Pairs:
    return Pairs(pairs.i[keep], pairs.j[keep], pairs.dist[keep])


def check_candidates(i: np.ndarray, j: np.ndarray, dist: np.ndarray, paths: list,
                     mirror: bool = True, progress: Progress = None) -> tuple:
    """Verification of an index's candidate pairs, as a find runs it: the
    pairs among each image's nearest candidates (:func:`nearest_candidates`)
    are compared (:func:`verification.verify_pairs`) in rounds, and
    confirmed (:func:`confirm_pairs`).

    The first round compares each image's nearest candidate
    (:func:`nearest_rows.nearest_of_each`). Most images of a large
    collection have no copy, and a copy is almost always the nearest
    candidate of itself or of its original: 2,796 of the 2,810 related
    pairs confirmed among 50,000 photos of ``benchmarks/scale_quality.py``
    when every candidate was compared. The first round's pairs link each
    image to one other, in small trees, so it decodes each image about once.

    Each further round compares the other candidates of the images with
    :data:`SEVERAL_COPIES` confirmed copies (an original with many copies,
    where a crop's nearest may be another copy it overlaps too little), and
    those within :data:`CLOSE_SHARE` of the farthest candidate's distance
    of an image with one copy (a page with one copy, whose nearest are
    other pages of its layout). An original with one copy, the usual case,
    has its other candidates left alone: among the 50,000 photos they
    confirmed 8 pairs in 76,749, none of them related.

    Replayed on those 50,000 photos' scores, this compares 41,450 pairs
    instead of 410,729 and loses 14 related confirmed pairs. On
    ``benchmarks/quality.py``'s tuning and held-out photos, where every
    original has copies, it finds the same groups as comparing every
    candidate.

    Args:
        i: first positions of the candidate pairs
        j: second positions
        dist: their distances
        paths: the image file of each position
        mirror: a mirrored copy is the same photo
        progress: optional ``callback(fraction, label)``, called as each
            round's pairs are compared (the fraction is that round's)

    Returns:
        ``(keep, scores)``: a boolean mask of the pairs kept, and their
        float64 scores (NaN where a pair was not compared)
    """
    i, j = np.asarray(i), np.asarray(j)
    candidates = nearest_candidates(i, j, dist)
    close = dist <= CLOSE_SHARE * dist.max(initial=0.0)
    scores = np.full(len(i), np.nan)
    due = candidates & nearest_of_each(i, j, dist)
    round_number = 0
    while due.any():
        compared = np.flatnonzero(due)
        round_number += 1
        scores[compared] = verification.verify_pairs([paths[k] for k in i[compared]],
                                                     [paths[k] for k in j[compared]], mirror,
                                                     progress=_labelled(progress, f"verification round {round_number}"))
        due = candidates & np.isnan(scores) & _worth_comparing(i, j, close, scores, len(paths))
    compared = np.flatnonzero(~np.isnan(scores))
    keep = np.zeros(len(i), dtype=bool)
    keep[compared] = confirm_pairs(i[compared], j[compared], scores[compared])
    return keep, scores


def _worth_comparing(i: np.ndarray, j: np.ndarray, close: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """The pairs that touch an image with several confirmed copies, or with
    one and are ``close`` (see :func:`check_candidates`)."""
    confirmed = scores >= verification.DEFAULT_MIN_SCORE  # NaN: False
    copies = np.bincount(np.concatenate([i[confirmed], j[confirmed]]), minlength=n)
    most = np.maximum(copies[i], copies[j])
    return (most >= SEVERAL_COPIES) | ((most >= 1) & close)


def _labelled(progress: Progress, prefix: str) -> Progress:
    """``progress`` with ``prefix`` before each label (None if None)."""
    return progress and (lambda fraction, label: progress(fraction, f"{prefix}: {label}"))


def nearest_candidates(i: np.ndarray, j: np.ndarray, dist: np.ndarray,
                       k: int = MAX_CANDIDATES_PER_IMAGE) -> np.ndarray:
    """Which candidate pairs to verify: each pair that is among the ``k``
    nearest candidates of either of its two images.

    Candidates at a loose threshold grow with the square of the dataset's
    size (2.8% of all pairs at 1,500 varied photos); an image's copies are
    its nearest neighbours, so this keeps the work at most ``2 k`` pairs per
    image with little loss. The default 5 is the smallest ``k`` that lost
    nothing on ``benchmarks/quality.py``'s tuning photos, where an original
    has a dozen copies (F1 0.995 at 5 and 10, 0.990 at 3, 0.981 at 2; 19%
    fewer pairs than 10); among scale_quality.py's 1,500 photos, every
    related pair was the nearest candidate of one of its two images. A find
    asks the search for these pairs only (:attr:`PairChecks.nearest`), so
    the candidates of the loose threshold are never all held at once.

    Args:
        i: first positions of the candidate pairs
        j: second positions
        dist: their distances
        k: candidates kept per image

    Returns:
        a boolean mask over the pairs
    """
    return nearest_of_either(i, j, dist, k)


def confirm_pairs(
    i: np.ndarray, j: np.ndarray, scores: np.ndarray, min_score: float = verification.DEFAULT_MIN_SCORE
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
        scores: :func:`verification.verify_pairs` scores of the pairs
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
