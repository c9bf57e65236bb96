"""What a review stores on the samples, and the "not duplicates" marks that
find and delete respect.

Everything lives on the samples, so it stays with the dataset, follows
clones and exports, vanishes with deleted samples, and is read and written
in bulk at any dataset size. No find ever writes these fields, so they
survive reruns.

``dedup_kept_apart`` (list of strings): the "not duplicates" marks
    "Keep all" on a group adds one new *keep-apart set id* to every member.
    Two samples that share a set id must never be grouped together again
    (:func:`kept_apart_mask`, :func:`split_groups`), and a sample with any
    mark is *protected*: no remove, deduplicate or review delete touches it
    (:func:`protected_ids`, :func:`deletable`). A set id is
    ``"<result>:<group key>:<random hex>"``, so an undo can take back exactly
    the marks one group added. 100,000 marks are 100,000 short lists:
    reading them is one ``values()`` call.

``dedup_reviewed`` (list of strings): the results in which the user reviewed
    this sample's group (:mod:`review_groups`). A group counts as reviewed
    while all its current members carry the result's name: a new member found
    by a later find makes it unreviewed again.

``dedup_delete_for`` (string): a pending delete, set by "keep this one": the
    id of the sample kept instead of this one (:mod:`review`).
"""

import secrets
from collections import defaultdict
from typing import Iterable, NamedTuple, Optional, Sequence

import numpy as np
from bson import ObjectId
from pymongo import UpdateMany

import fiftyone as fo

from .results import SampleCollection

KEPT_APART_FIELD = "dedup_kept_apart"
REVIEWED_FIELD = "dedup_reviewed"
DELETE_FOR_FIELD = "dedup_delete_for"
_FIELD_TYPES = {
    KEPT_APART_FIELD: dict(ftype=fo.ListField, subfield=fo.StringField),
    REVIEWED_FIELD: dict(ftype=fo.ListField, subfield=fo.StringField),
    DELETE_FOR_FIELD: dict(ftype=fo.StringField),
}


class SplitGroups(NamedTuple):
    """Groups split so that no two kept-apart samples share one.

    Attributes:
        groups: lists of sample ids (two or more each), in input order
        num_pairs_kept_apart: how many pairs of the input groups were kept
            apart
    """

    groups: list
    num_pairs_kept_apart: int


def has_field(dataset: fo.Dataset, name: str) -> bool:
    """Whether the sample field exists, reloading the schema once if not: the
    App server or another process may have added it since this dataset
    object was loaded."""
    if dataset.has_sample_field(name):
        return True
    dataset.reload()
    return dataset.has_sample_field(name)


def ensure_review_fields(dataset: fo.Dataset) -> None:
    """Adds the review's sample fields that are missing. The schema is read
    afresh first: the App server's dataset object may be older than a field
    another process added or deleted (a stale schema failed "no field" once)."""
    dataset.reload()
    for name, kwargs in _FIELD_TYPES.items():
        if not dataset.has_sample_field(name):
            kwargs = dict(kwargs)
            dataset.add_sample_field(name, kwargs.pop("ftype"), **kwargs)


def kept_apart_sets(samples: SampleCollection) -> dict:
    """The keep-apart set ids of every marked sample of the dataset of
    ``samples`` (one ``values()`` call).

    Args:
        samples: a dataset or a view of it

    Returns:
        ``{sample id: frozenset of set ids}``
    """
    dataset = samples._root_dataset
    if not has_field(dataset, KEPT_APART_FIELD):
        return {}
    ids, marks = dataset.exists(KEPT_APART_FIELD).values(["id", KEPT_APART_FIELD])
    return {i: frozenset(m) for i, m in zip(ids, marks) if m}


def kept_apart_mask(
    samples: SampleCollection,
    ids_a: Sequence[str],
    ids_b: Sequence[str],
    sets: Optional[dict] = None,
) -> np.ndarray:
    """Which candidate pairs must not be grouped: ``True`` where ``ids_a[k]``
    and ``ids_b[k]`` were kept apart ("keep all" on a group holding both).

    Args:
        samples: the dataset (or a view of it) the ids belong to
        ids_a: sample ids, one per candidate pair
        ids_b: the other sample of each pair
        sets: :func:`kept_apart_sets` if already read

    Returns:
        a bool array of ``len(ids_a)``
    """
    n = len(ids_a)
    mask = np.zeros(n, dtype=bool)
    sets = kept_apart_sets(samples) if sets is None else sets
    if not sets or n == 0:
        return mask
    a = np.asarray(ids_a, dtype=object)
    b = np.asarray(ids_b, dtype=object)
    both = np.fromiter((x in sets for x in a), bool, n) & np.fromiter((x in sets for x in b), bool, n)
    for k in np.nonzero(both)[0]:
        mask[k] = not sets[a[k]].isdisjoint(sets[b[k]])
    return mask


def _pairs_kept_apart(marked: list) -> int:
    return sum(not marked[x].isdisjoint(marked[y])
               for x in range(len(marked)) for y in range(x + 1, len(marked)))


def _split(group: list, sets: dict, keep_conflicts: bool) -> list:
    """The parts of one group: each member joins the first part holding none
    of the samples it was kept apart from."""
    parts = []  # [members, union of their set ids]
    for member in group:
        marks = sets.get(member, frozenset())
        for part in parts:
            if part[1].isdisjoint(marks):
                part[0].append(member)
                part[1] |= marks
                break
        else:
            if keep_conflicts or not parts:
                parts.append([[member], set(marks)])
    return [members for members, _ in parts if len(members) > 1]


def split_groups(
    samples: SampleCollection,
    groups: Iterable[Sequence[str]],
    keep_conflicts: bool = False,
    sets: Optional[dict] = None,
) -> SplitGroups:
    """Splits groups so that no two kept-apart samples share one.

    Members are taken in order (representative first): each joins the first
    part holding none of the samples it was kept apart from. With
    ``keep_conflicts`` (exact groups: all members are the same bytes, any
    split is valid) a member that fits no part starts a new one; without it
    (approximate groups: members are near the representative, not each
    other) it leaves the group. Parts of one sample are dropped.

    Args:
        samples: the dataset (or a view) the ids belong to
        groups: lists of sample ids, representative first
        keep_conflicts: start new groups for conflicting members
        sets: :func:`kept_apart_sets` if already read

    Returns:
        a :class:`SplitGroups`
    """
    sets = kept_apart_sets(samples) if sets is None else sets
    result, num_pairs = [], 0
    for group in groups:
        group = list(group)
        marked = [sets[m] for m in group if m in sets]
        if len(marked) < 2:
            result.extend([group] if len(group) > 1 else [])
            continue
        num_pairs += _pairs_kept_apart(marked)
        result.extend(_split(group, sets, keep_conflicts))
    return SplitGroups(result, num_pairs)


def split_exact_groups(samples: SampleCollection, ids: Sequence[str], hashes: Sequence[str]) -> SplitGroups:
    """:func:`split_groups` for exact duplicates: groups the samples by
    ``hashes`` (in the given order, e.g. first added first), then splits
    each so that no two kept-apart samples share a group.

    Args:
        samples: the dataset (or a view) the ids belong to
        ids: sample ids
        hashes: the file hash of each (None: left out)

    Returns:
        a :class:`SplitGroups` of ids with the same hash (two or more each);
        the find marks these samples only
    """
    by_hash = defaultdict(list)
    for sample_id, digest in zip(ids, hashes):
        if digest is not None:
            by_hash[digest].append(sample_id)
    return split_groups(samples, (g for g in by_hash.values() if len(g) > 1), keep_conflicts=True)


def protected_ids(samples: SampleCollection) -> set:
    """The ids of every sample of the dataset of ``samples`` with a "not
    duplicates" mark: no delete may touch them."""
    return set(kept_apart_sets(samples))


def is_protected(samples: SampleCollection, ids: Sequence[str]) -> np.ndarray:
    """Which of ``ids`` carry a "not duplicates" mark: a bool array of
    ``len(ids)``."""
    protected = protected_ids(samples)
    return np.fromiter((i in protected for i in ids), bool, len(ids))


def deletable(samples: SampleCollection, ids: Sequence[str]) -> list:
    """``ids`` without the protected ones, in order: what a delete may take."""
    protected = protected_ids(samples)
    return [i for i in ids if i not in protected]


def keep_apart(samples: SampleCollection, ids: Sequence[str], result: str = "manual", key: str = "") -> str:
    """Marks ``ids`` as not duplicates of each other: adds one new
    keep-apart set id to each.

    Args:
        samples: the dataset (or a view) the ids belong to
        ids: sample ids
        result: the result the decision was taken in (the set id's prefix)
        key: the group key it was taken on

    Returns:
        the new set id
    """
    dataset = samples._root_dataset
    ensure_review_fields(dataset)
    set_id = f"{result}:{key}:{secrets.token_hex(6)}"
    update_list_field(dataset, KEPT_APART_FIELD, ids, {"$concatArrays": [_list(KEPT_APART_FIELD), [set_id]]})
    return set_id


def update_list_field(dataset: fo.Dataset, field: str, ids: Sequence[str], new_value: dict) -> None:
    """Sets the list ``field`` of the samples ``ids`` to the aggregation
    expression ``new_value`` (which may read the field), in one database
    update: nothing is read first (the App server's schema of the dataset can
    lag behind a field another process added, which failed "no field" there)."""
    update = UpdateMany({"_id": {"$in": [ObjectId(i) for i in ids]}},
                        [{"$set": {field: new_value, "last_modified_at": "$$NOW"}}])
    dataset._bulk_write([update], ids=list(ids))


def _list(field: str) -> dict:
    """The field's list, empty where unset."""
    return {"$ifNull": [f"${field}", []]}


def without_items(field: str, condition: dict) -> dict:
    """The field's list without the items ``$$this`` meeting ``condition``;
    None when nothing is left."""
    kept = {"$filter": {"input": _list(field), "cond": {"$not": [condition]}}}
    return {"$cond": [{"$eq": [{"$size": kept}, 0]}, None, kept]}


def drop_marks(dataset: fo.Dataset, ids: Sequence[str], prefix: str) -> None:
    """Takes back the keep-apart set ids starting with ``prefix`` (those one
    group's keep all added) from the samples ``ids``."""
    if not has_field(dataset, KEPT_APART_FIELD):
        return
    starts_with_prefix = {"$eq": [{"$indexOfCP": ["$$this", prefix]}, 0]}
    update_list_field(dataset, KEPT_APART_FIELD, ids, without_items(KEPT_APART_FIELD, starts_with_prefix))
