"""What confirms a candidate pair of near duplicates before it is grouped.

An index only says that two embeddings are close. Before grouping, a pair
is dropped when the user marked its samples "not duplicates" in the review
(:mod:`review_marks`), and, with verification on, when the two images
themselves do not show the same photo (:mod:`verification`: "the same
photo, edited" versus "another shot of the same scene").
"""

import logging
from typing import Optional

import numpy as np

from . import review_marks, verification
from .neighbors import Groups, Pairs, join_linked_groups
from .results import SampleCollection

logger = logging.getLogger(__name__)


class PairChecks:
    """A pair filter for :func:`neighbors.search_duplicates`, over samples
    given by their ids in index order.

    Attributes:
        num_kept_apart: candidate pairs the "not duplicates" marks removed
        num_rejected: candidate pairs verification rejected (or left
            unverified: beyond both images' nearest candidates)
        scores: ``{(i, j): score}`` of every verified pair kept (``i < j``)
    """

    def __init__(self, samples: SampleCollection, ids: list, verify: bool, mirror: bool = True):
        self.samples, self.ids, self.verify, self.mirror = samples, ids, verify, mirror
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
        keep, scores = verification.check_candidates(pairs.i, pairs.j, pairs.dist, self._filepaths(), self.mirror)
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
