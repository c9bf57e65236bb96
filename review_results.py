"""Which results a review can show (:data:`RESULTS`), each read through the
description of the workflow that wrote it.

:data:`exact_dups.WORKFLOW` and :data:`approx_dups.WORKFLOW` give their
saved view filtered on the current find run, so samples merged in from
another dataset with that dataset's result fields are not taken for this
dataset's duplicates. The two leakage checks are described by a
:class:`LeakCheck` built from :mod:`leakage`'s names (a leakage check keeps
no run id: its result is its saved view as it is).

-   ``exact``: grouped by ``filehash``; representative: the first added
-   ``approx``: grouped by the representative's id, with the distance to it;
    a verification score (:data:`SCORE_FIELD`) is shown and sorted on when
    the field exists
-   ``exact_leak``: leaked samples grouped by ``filehash``, shown with the
    samples of the dataset with that hash that did not leak (the references)
-   ``approx_leak``: leaked samples grouped by the id of the reference they
    match, shown with it
"""

from dataclasses import dataclass
from typing import Optional, Union

import fiftyone as fo

from . import approx_dups, exact_dups, leakage
from .results import Workflow, current_run

SCORE_FIELD = approx_dups.SCORE_FIELD


@dataclass(frozen=True)
class LeakCheck:
    """Where a leakage check leaves its result (the leakage counterpart of
    :class:`results.Workflow`).

    Attributes:
        view_name: the saved view of the leaked samples
        group_field: the field whose value a leaked sample shares with its
            references
        marker: the boolean field marking leaked samples, when references
            share the group key (exact); None when the key is the
            reference's id (approximate)
    """

    view_name: str
    group_field: str
    marker: Optional[str] = None

    def load_view(self, dataset: fo.Dataset) -> fo.DatasetView:
        """The saved view of the leaked samples.

        Raises:
            ValueError: if no check has been run on ``dataset``
        """
        if self.view_name not in dataset.list_saved_views():
            raise ValueError(f"Dataset '{dataset.name}' has no '{self.view_name}'")
        return dataset.load_saved_view(self.view_name)

    def references(self, dataset: fo.Dataset, key: str) -> fo.DatasetView:
        """The samples of ``dataset`` that the leaked samples of group
        ``key`` match (none when they are in another dataset)."""
        if self.marker is not None:
            return dataset.match({self.group_field: key, self.marker: {"$ne": True}})
        return dataset.select([key]) if is_object_id(key) else dataset.limit(0)

    def stamp(self, dataset: fo.Dataset) -> Optional[str]:
        """When the check last saved its view, or None."""
        infos = [i for i in dataset.list_saved_views(info=True) if i.get("name") == self.view_name]
        return str(infos[0].get("last_modified_at")) if infos else None


@dataclass(frozen=True)
class ReviewedResult:
    """A result the review panel can show.

    Attributes:
        name: the result's name, a key of :data:`RESULTS`
        label: its name in the panel
        workflow: where the find left it
        dist_field: distance to the representative (None: exact, 0)
        score_field: an optional verification score (higher: surer)
        key_is_id: whether the group key is the representative's sample id
            (else the representative is the first added member)
    """

    name: str
    label: str
    workflow: Union[Workflow, LeakCheck]
    dist_field: Optional[str] = None
    score_field: Optional[str] = None
    key_is_id: bool = False

    @property
    def key_field(self) -> str:
        """The field whose value the members of a group share."""
        return self.workflow.group_field

    @property
    def leak(self) -> bool:
        """Whether groups pair leaked samples with references."""
        return isinstance(self.workflow, LeakCheck)

    def members(self, dataset: fo.Dataset) -> Optional[fo.DatasetView]:
        """The grouped samples of the current result, or None if there is none."""
        try:
            return self.workflow.load_view(dataset)
        except ValueError:
            return None

    def run(self, dataset: fo.Dataset) -> Optional[str]:
        """What identifies the current result: the find's run id (a leakage
        check: when it saved its view)."""
        return self.workflow.stamp(dataset) if self.leak else current_run(dataset, self.workflow)


RESULTS = {r.name: r for r in (
    ReviewedResult("exact", "Exact duplicates", exact_dups.WORKFLOW),
    ReviewedResult("approx", "Approximate duplicates", approx_dups.WORKFLOW,
                   approx_dups.DIST_FIELD, SCORE_FIELD, key_is_id=True),
    ReviewedResult("exact_leak", "Exact leakage", LeakCheck(
        leakage.EXACT_LEAK_VIEW, exact_dups.FILEHASH_FIELD, leakage.EXACT_LEAK_FIELD)),
    ReviewedResult("approx_leak", "Approximate leakage", LeakCheck(
        leakage.APPROX_LEAK_VIEW, leakage.APPROX_REF_FIELD), leakage.APPROX_DIST_FIELD, key_is_id=True),
)}


def reviewed_result(name: str) -> ReviewedResult:
    """The result named ``name``.

    Raises:
        ValueError: if there is no such result
    """
    if name not in RESULTS:
        raise ValueError(f"result must be one of {tuple(RESULTS)}, got '{name}'")
    return RESULTS[name]


def available_results(dataset: fo.Dataset) -> list:
    """The names of the results that have at least one grouped sample on
    ``dataset`` now, in :data:`RESULTS` order."""
    views = ((name, res.members(dataset)) for name, res in RESULTS.items())
    return [name for name, view in views if view is not None and len(view.limit(1))]


def present_fields(dataset: fo.Dataset, names: list) -> list:
    """The fields of ``names`` that are set (not None) and exist on ``dataset``."""
    return [n for n in names if n and dataset.has_sample_field(n)]


def is_object_id(value: str) -> bool:
    """Whether ``value`` looks like a sample id."""
    return isinstance(value, str) and len(value) == 24 and all(c in "0123456789abcdef" for c in value)
