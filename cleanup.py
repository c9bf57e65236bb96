"""What a remove or a deduplicate does to a find's result: which samples it
may touch (the groups as they are now), and the bulk delete or tag.

A delete only touches samples of the find's saved view. Groups are re-read
when it runs: a sample whose copies were all deleted since the find is no
longer a duplicate and is kept.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

import fiftyone as fo

from . import representatives
from .results import Workflow

logger = logging.getLogger(__name__)

ACTIONS = ("delete", "tag")
DEFAULT_TAG = "duplicate"
_ID_CHUNK = 100_000


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
    members = defaultdict(list)
    for sample_id, key in zip(*view.values(["id", group_field])):
        members[key].append(sample_id)
    return [ids for ids in members.values() if len(ids) > 1]


def count_to_delete(dataset: fo.Dataset, workflow: Workflow, keep_representative: bool) -> int:
    """How many samples :func:`apply_cleanup` would delete or tag now (the
    same for every representative rule: one per group is kept).

    Raises:
        ValueError: if the workflow's find has not been run
    """
    groups = live_groups(workflow.load_view(dataset), workflow.group_field)
    return sum(len(ids) - keep_representative for ids in groups)


def apply_cleanup(dataset: fo.Dataset, workflow: Workflow, cleanup: Cleanup) -> int:
    """Deletes (one bulk delete) or tags (bulk) the duplicates of the
    workflow's result view.

    A delete then clears the result so the view is empty; a tag leaves it, so
    the same samples can be reviewed and deleted later. Tagging again adds
    no second tag.

    Args:
        dataset: the dataset
        workflow: whose result to clean up
        cleanup: what to do

    Returns:
        the number of samples deleted or tagged

    Raises:
        ValueError: on a bad ``cleanup`` or no result; nothing is changed then
    """
    cleanup.validate(dataset)
    view = workflow.load_view(dataset)
    groups = live_groups(view, workflow.group_field)
    if cleanup.keep_representative:
        groups = representatives.representatives_first(view, groups, cleanup.rule, cleanup.field)
    start = 1 if cleanup.keep_representative else 0
    doomed = [sample_id for ids in groups for sample_id in ids[start:]]
    if cleanup.action == "tag":
        for begin in range(0, len(doomed), _ID_CHUNK):
            dataset.select(doomed[begin : begin + _ID_CHUNK]).tag_samples(cleanup.tag)
        logger.info("Tagged %d %s duplicates '%s'", len(doomed), workflow.name, cleanup.tag)
        return len(doomed)
    dataset.delete_samples(doomed)
    dataset.exists(workflow.result_fields[0]).clear_sample_fields(list(workflow.result_fields))
    logger.info("Deleted %d %s duplicates", len(doomed), workflow.name)
    return len(doomed)
