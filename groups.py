"""Duplicate groups as both workflows store them: a saved view whose samples
share a group field. Decides what a remove or a deduplicate may touch, which
member of a group is kept, and resolves the reference collection of a
leakage check.

Representative rules (:data:`RULES`); ties always fall to the sample added
first (``created_at``, then sample id), and samples without a value (no
metadata, field unset) are kept only when no member has one:

-   ``first_added``: the sample added to the dataset first
-   ``search``: the group's first sample in the result view (for approximate
    groups: the representative the search kept)
-   ``highest_resolution``: the most pixels (``metadata.width * height``)
-   ``largest_file``: the largest ``metadata.size_bytes``
-   ``field_max`` / ``field_min``: the highest / lowest value of a numeric field
"""

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Optional

import fiftyone as fo
from fiftyone import ViewField as F

FIRST_ADDED = "first_added"
SEARCH = "search"
RULES = (FIRST_ADDED, SEARCH, "highest_resolution", "largest_file", "field_max", "field_min")
ACTIONS = ("delete", "tag")
DEFAULT_TAG = "duplicate"
REFERENCE_KINDS = ("saved_view", "tag", "dataset")
NUMERIC_FIELDS = (fo.IntField, fo.FloatField)
_METADATA_KEYS = {
    "highest_resolution": F("metadata.width") * F("metadata.height"),
    "largest_file": F("metadata.size_bytes"),
}
_ID_CHUNK = 100_000


class Result:
    """Base of the dataclasses a find returns: ``to_dict()`` is the
    operator's JSON output."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Cleanup:
    """What a remove or a deduplicate does with the duplicates it found.

    Attributes:
        keep_representative: keep one sample per group (deduplicate)
        rule: which sample is kept, one of :data:`RULES`
        field: the numeric field of rules ``field_max`` / ``field_min``
        action: "delete" the others, or "tag" them with ``tag``
        tag: the tag of action "tag"
    """

    keep_representative: bool
    rule: str = FIRST_ADDED
    field: Optional[str] = None
    action: str = "delete"
    tag: str = DEFAULT_TAG

    def validate(self, dataset: fo.Dataset) -> None:
        """Raises ValueError, naming the parameter, if this can't be applied."""
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got '{self.action}'")
        if self.action == "tag" and not self.tag:
            raise ValueError("tag must be a non-empty string for action 'tag'")
        if self.rule not in RULES:
            raise ValueError(f"representative must be one of {RULES}, got '{self.rule}'")
        if self.rule.startswith("field_") and self.field not in numeric_fields(dataset):
            raise ValueError(
                f"representative_field must be a numeric sample field for rule '{self.rule}', "
                f"got '{self.field}'; numeric fields: {numeric_fields(dataset)}"
            )


def root_dataset(samples: fo.core.collections.SampleCollection) -> fo.Dataset:
    """The dataset of a dataset or view."""
    return samples if isinstance(samples, fo.Dataset) else fo.load_dataset(samples.dataset_name)


def dataset_name(samples: fo.core.collections.SampleCollection) -> str:
    """The name of the dataset of a dataset or view."""
    return samples.name if isinstance(samples, fo.Dataset) else samples.dataset_name


def numeric_fields(dataset: fo.Dataset) -> list[str]:
    """The top-level int and float sample fields, by name."""
    return sorted(dataset.get_field_schema(ftype=NUMERIC_FIELDS))


def replace_fields(dataset: fo.Dataset, fields: tuple) -> None:
    """Clears each ``(name, type)`` sample field, adding it if missing: a new
    find replaces the previous result."""
    for field, ftype in fields:
        if dataset.has_sample_field(field):
            dataset.exists(field).clear_sample_field(field)
        else:
            dataset.add_sample_field(field, ftype)


def load_result_view(dataset: fo.Dataset, view_name: str, find_label: str) -> fo.DatasetView:
    """Loads the saved view a find operator left, or says which to run first.

    Raises:
        ValueError: if the find operator has not been run on this dataset
    """
    if view_name not in dataset.list_saved_views():
        raise ValueError(
            f"Dataset '{dataset.name}' has no '{view_name}': run '{find_label}' first"
        )
    return dataset.load_saved_view(view_name)


def reference_collection(
    dataset: fo.Dataset, kind: str, name: Optional[str]
) -> fo.core.collections.SampleCollection:
    """The collection a leakage check compares against.

    Args:
        dataset: the dataset being searched
        kind: "saved_view" (of ``dataset``), "tag" (samples of ``dataset``
            with that tag) or "dataset" (another dataset)
        name: the saved view, tag or dataset name

    Raises:
        ValueError: if it does not exist or has no samples
    """
    if kind == "saved_view" and name in dataset.list_saved_views():
        refs = dataset.load_saved_view(name)
    elif kind == "tag" and name:
        refs = dataset.match_tags(name)
    elif kind == "dataset" and name in fo.list_datasets() and name != dataset.name:
        refs = fo.load_dataset(name)
    elif not name:
        raise ValueError(f"Pick the {kind} to compare against")
    else:
        raise ValueError(f"No {kind} named '{name}' to compare against (compare_to={kind})")
    if len(refs) == 0:
        raise ValueError(f"The {kind} '{name}' has no samples to compare against")
    return refs


def shared_reference_ids(
    samples: fo.core.collections.SampleCollection,
    refs: fo.core.collections.SampleCollection,
) -> Optional[set]:
    """The ids of ``refs`` when it is in the same dataset as ``samples``
    (those samples are skipped: a sample can't leak into itself), else None.

    A set in memory rather than an ``exclude(ids)`` stage, which outgrows
    MongoDB's 16 MB command limit near a million ids.
    """
    if dataset_name(refs) != dataset_name(samples):
        return None
    return set(refs.values("id"))


def ids_outside(samples: fo.core.collections.SampleCollection, skipped: Optional[set]) -> set:
    """The ids of ``samples`` that are not in ``skipped``."""
    return set(samples.values("id")) - (skipped or set())


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


def count_to_delete(view: fo.DatasetView, group_field: str, keep_representative: bool) -> int:
    """How many samples :func:`apply_cleanup` would delete or tag now (the
    same for every representative rule: one per group is kept)."""
    return sum(len(ids) - keep_representative for ids in live_groups(view, group_field))


def _rank_keys(view: fo.DatasetView, rule: str, field: Optional[str]) -> dict:
    """{sample id: sort key}, the smallest key being the preferred sample."""
    if rule in _METADATA_KEYS:
        view.exists("metadata", False).compute_metadata()
        value = _METADATA_KEYS[rule]
    else:
        value = F(field) if rule.startswith("field_") else None
    ids, added = view.values(["id", "created_at"])
    values = view.values(value) if value is not None else [0] * len(ids)
    sign = 1 if rule == "field_min" else -1
    return {
        i: (v is None, sign * v if v is not None else 0, a, i)
        for i, a, v in zip(ids, added, values)
    }


def representatives_first(
    view: fo.DatasetView, groups: list[list[str]], rule: str, field: Optional[str] = None
) -> list[list[str]]:
    """Moves each group's representative under ``rule`` to the front.

    Metadata is computed (in bulk) for members that have none when the rule
    needs it.
    """
    if rule == SEARCH:
        return groups
    keys = _rank_keys(view, rule, field)
    result = []
    for ids in groups:
        best = min(ids, key=keys.__getitem__)
        result.append([best] + [i for i in ids if i != best])
    return result


def apply_cleanup(
    dataset: fo.Dataset,
    view: fo.DatasetView,
    group_field: str,
    result_fields: tuple,
    cleanup: Cleanup,
) -> int:
    """Deletes (one bulk delete) or tags (bulk) the duplicates of ``view``.

    A delete then clears the result so the view is empty; a tag leaves it, so
    the same samples can be reviewed and deleted later. Tagging again adds
    no second tag.

    Args:
        dataset: the dataset of ``view``
        view: the saved result view of a find operator
        group_field: the field whose value its groups share
        result_fields: the fields the find wrote
        cleanup: what to do

    Returns:
        the number of samples deleted or tagged

    Raises:
        ValueError: on a bad ``cleanup``; nothing is changed then
    """
    cleanup.validate(dataset)
    groups = live_groups(view, group_field)
    if cleanup.keep_representative:
        groups = representatives_first(view, groups, cleanup.rule, cleanup.field)
    start = 1 if cleanup.keep_representative else 0
    doomed = [sample_id for ids in groups for sample_id in ids[start:]]
    if cleanup.action == "tag":
        for begin in range(0, len(doomed), _ID_CHUNK):
            dataset.select(doomed[begin : begin + _ID_CHUNK]).tag_samples(cleanup.tag)
        return len(doomed)
    dataset.delete_samples(doomed)
    dataset.exists(result_fields[0]).clear_sample_fields(list(result_fields))
    return len(doomed)
