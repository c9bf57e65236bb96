"""What a remove or a deduplicate does to a find's result: which samples it
may touch (the groups as they are now), and the bulk delete or tag.

A delete only touches samples of the find's saved view. Groups are re-read
when it runs: a sample whose copies were all deleted since the find is no
longer a duplicate and is kept. The files are checked again right before a
delete. A tag action starts a review (remembered with the result, see
:mod:`results`): the delete that follows deletes only the samples that still
carry the tag.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

import fiftyone as fo

from . import representatives, results, review_marks
from .results import Result, Workflow

logger = logging.getLogger(__name__)

ACTIONS = ("delete", "tag")
DEFAULT_TAG = "duplicate"
MAX_LISTED_PATHS = 5
_ID_CHUNK = 100_000


@dataclass
class Tagged(Result):
    """What a tag action did."""

    num_tagged: int
    tag: str


@dataclass
class Deleted(Result):
    """What a delete did: the samples it deleted, and those it kept because
    their file changed since the find (the first few paths)."""

    num_deleted: int
    num_skipped: int
    skipped_paths: list


@dataclass(frozen=True)
class Cleanup:
    """What a remove or a deduplicate does with the duplicates it found.

    Attributes:
        keep_representative: keep one sample per group (deduplicate)
        rule: which sample is kept, a name in :data:`representatives.RULES`
        field: the numeric field of the rules that need one
        action: "delete" the others, or "tag" them with ``tag``
        tag: the tag of action "tag"
    """

    keep_representative: bool
    rule: str = representatives.FIRST_ADDED
    field: Optional[str] = None
    action: str = "delete"
    tag: str = DEFAULT_TAG

    def validate(self, dataset: fo.Dataset) -> None:
        """Raises ValueError, naming the parameter, if this can't be applied."""
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got '{self.action}'")
        if self.action == "tag" and not self.tag:
            raise ValueError("tag must be a non-empty string for action 'tag'")
        representatives.validate(dataset, self.rule, self.field)


def live_groups(view: fo.DatasetView, group_field: str) -> list[list[str]]:
    """The groups of ``view`` that still have two or more samples.

    Samples deleted since the find leave smaller groups; a group left with a
    single sample is no longer a duplicate group and is dropped.

    Returns:
        lists of sample ids, each in the view's order
    """
    return _groups_of(*view.values(["id", group_field]))


def _groups_of(ids: list, keys: list) -> list[list[str]]:
    """The ids sharing a key, in order, where two or more do."""
    members = defaultdict(list)
    for sample_id, key in zip(ids, keys):
        members[key].append(sample_id)
    return [group for group in members.values() if len(group) > 1]


def _chosen(groups: list, keep_representative: bool, tagged: Optional[set]) -> list:
    """The members a cleanup deletes or tags: every member, or all but each
    group's first; after a tag review, only the members still tagged, and
    never every member of a group when one is to be kept."""
    chosen = []
    for ids in groups:
        pick = ids[1:] if keep_representative else ids
        if tagged is not None:
            pick = [i for i in ids if i in tagged]
            if keep_representative and len(pick) == len(ids):
                pick = pick[1:]
        chosen += pick
    return chosen


def _tagged_ids(view: fo.DatasetView, tag: Optional[str]) -> Optional[set]:
    return None if tag is None else set(view.match_tags(tag).values("id"))


def count_to_delete(dataset: fo.Dataset, workflow: Workflow, keep_representative: bool) -> int:
    """How many samples a delete would remove now, as the form shows it (the
    same for every representative rule; files are re-checked at delete time).

    Raises:
        ValueError: if the workflow's find has not been run
    """
    view = workflow.load_view(dataset)
    groups = live_groups(view, workflow.group_field)
    return len(_chosen(groups, keep_representative, _tagged_ids(view, results.review_tag(dataset, workflow))))


def _drop_changed_files(groups: list, rows: tuple, workflow: Workflow) -> tuple:
    """Re-checks the files of ``groups`` (``workflow.check_files``): members
    whose file no longer belongs to the group leave it.

    Args:
        groups: lists of sample ids
        rows: the result view's ``(ids, group keys, filepaths)``
        workflow: whose result it is

    Returns:
        ``(groups of the members that still match, paths that did not)``
    """
    ids, keys, paths = rows
    wanted = {i for group in groups for i in group}
    rows = [(i, k, p) for i, k, p in zip(ids, keys, paths) if i in wanted]
    matches = workflow.check_files([p for _, _, p in rows], [k for _, k, _ in rows])
    changed = {i for (i, _, _), ok in zip(rows, matches) if not ok}
    kept = [[i for i in group if i not in changed] for group in groups]
    return [group for group in kept if len(group) > 1], [p for (i, _, p) in rows if i in changed]


def apply_cleanup(dataset: fo.Dataset, workflow: Workflow, cleanup: Cleanup) -> Result:
    """Deletes (one bulk delete) or tags (bulk) the duplicates of the
    workflow's result view.

    A tag starts a review: the delete that follows deletes only the samples
    that still carry the tag (untag one to keep it). Right before a delete,
    the files of the groups are checked again; a sample whose file no longer
    belongs to its group is neither deleted nor counted as a copy. A delete
    then clears the result so the view is empty. Tagging again adds no
    second tag.

    Args:
        dataset: the dataset
        workflow: whose result to clean up
        cleanup: what to do

    Returns:
        a :class:`Tagged` or a :class:`Deleted`

    Raises:
        ValueError: on a bad ``cleanup`` or no result; nothing is changed then
    """
    cleanup.validate(dataset)
    view = workflow.load_view(dataset)
    if cleanup.action == "tag":
        return _tag(dataset, workflow, view, live_groups(view, workflow.group_field), cleanup)
    rows = view.values(["id", workflow.group_field, "filepath"])  # one read of the view
    groups, changed = _drop_changed_files(_groups_of(*rows[:2]), rows, workflow)
    if cleanup.keep_representative:
        groups = representatives.representatives_first(view, groups, cleanup.rule, cleanup.field)
    doomed = _chosen(groups, cleanup.keep_representative, _tagged_ids(view, results.review_tag(dataset, workflow)))
    doomed = review_marks.deletable(dataset, doomed)  # never a sample the review kept
    dataset.delete_samples(doomed)
    written = [f for f in workflow.result_fields if dataset.has_sample_field(f)]
    dataset.exists(workflow.result_fields[0]).clear_sample_fields(written)
    results.set_review_tag(dataset, workflow, None)
    logger.info("Deleted %d %s duplicates (%d files changed since the find were kept)",
                len(doomed), workflow.name, len(changed))
    return Deleted(len(doomed), len(changed), changed[:MAX_LISTED_PATHS])


def _tag(dataset, workflow: Workflow, view, groups: list, cleanup: Cleanup) -> "Tagged":
    if cleanup.keep_representative:
        groups = representatives.representatives_first(view, groups, cleanup.rule, cleanup.field)
    chosen = _chosen(groups, cleanup.keep_representative, None)
    for begin in range(0, len(chosen), _ID_CHUNK):
        dataset.select(chosen[begin : begin + _ID_CHUNK]).tag_samples(cleanup.tag)
    results.set_review_tag(dataset, workflow, cleanup.tag)
    logger.info("Tagged %d %s duplicates '%s'", len(chosen), workflow.name, cleanup.tag)
    return Tagged(len(chosen), cleanup.tag)
