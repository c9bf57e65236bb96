"""The review decisions on one group (keep all, keep this one, tag or delete
the others, undo) and the bulk apply of the pending deletes. The panel in
:mod:`review_panel` only calls these; what they store on the samples is
described in :mod:`review_marks`.

"Keep this one" does not delete: it points every other member's
``dedup_delete_for`` at the kept sample. :func:`apply_decisions` deletes
every such sample in one ``delete_samples`` call, but only when the sample
it points to survives (directly, or through a chain of such pointers), so
the last remaining member of a group is never deleted.
"""

from typing import NamedTuple, Optional

import fiftyone as fo

from .review_groups import Group, forget_orders, mark_order_reviewed
from .review_marks import (DELETE_FOR_FIELD, REVIEWED_FIELD, ensure_review_fields, drop_marks, has_field,
                           keep_apart, protected_ids, update_list_field, without_items)

DEFAULT_TAG = "duplicate"
_ID_CHUNK = 100_000


class PendingDeletes(NamedTuple):
    """What :func:`apply_decisions` would do now.

    Attributes:
        to_delete: ids of the samples it deletes
        kept: ids of the samples marked to delete that must stay
    """

    to_delete: list
    kept: list


def _set_reviewed(dataset: fo.Dataset, group: Group, done: bool = True) -> None:
    ensure_review_fields(dataset)
    without = without_items(REVIEWED_FIELD, {"$eq": ["$$this", group.result]})
    flags = {"$concatArrays": [{"$ifNull": [without, []]}, [group.result]]} if done else without
    update_list_field(dataset, REVIEWED_FIELD, group.ids, flags)
    mark_order_reviewed(group.result, group.key, done)


def _clear_delete_marks(dataset: fo.Dataset, group: Group) -> None:
    """Clears pending deletes of members (those pointing into the group)."""
    ids = set(group.ids)
    pending = {m.id: None for m in group.members if m.delete_for and m.delete_for in ids}
    if pending:
        dataset.set_values(DELETE_FOR_FIELD, pending, key_field="id")


def keep_all(dataset: fo.Dataset, group: Group) -> str:
    """"Not duplicates": marks every member kept apart from the others (so no
    later find groups them together and no delete touches them), clears
    pending deletes in the group and marks it reviewed.

    Args:
        dataset: the dataset
        group: the group, as :func:`review_groups.load_group` read it

    Returns:
        the keep-apart set id
    """
    _clear_delete_marks(dataset, group)
    set_id = keep_apart(dataset, group.ids, group.result, group.key)
    _set_reviewed(dataset, group)
    return set_id


def keep_one(dataset: fo.Dataset, group: Group, keeper: str) -> int:
    """"Keep this one": ``keeper`` becomes the group's kept sample and every
    other member is marked to delete (pending, see :func:`apply_decisions`).
    Protected members are not marked. Marks the group reviewed.

    Args:
        dataset: the dataset
        group: the group
        keeper: the id of the member to keep

    Returns:
        the number of members marked to delete

    Raises:
        ValueError: if ``keeper`` is not a member
    """
    if keeper not in group.ids:
        raise ValueError(f"Sample {keeper} is not in group {group.key}")
    ensure_review_fields(dataset)
    values = {m.id: keeper for m in group.members if m.id != keeper and not m.protected}
    values[keeper] = None
    dataset.set_values(DELETE_FOR_FIELD, values, key_field="id")
    _set_reviewed(dataset, group)
    return len(values) - 1


def tag_others(dataset: fo.Dataset, group: Group, tag: str = DEFAULT_TAG, keeper: Optional[str] = None) -> int:
    """Tags the members other than the kept one with ``tag`` (no second tag)
    and marks the group reviewed.

    Args:
        dataset: the dataset
        group: the group
        tag: the tag
        keeper: the member not tagged (default: the group's kept sample)

    Returns:
        how many members were tagged
    """
    if not tag:
        raise ValueError("tag must be a non-empty string")
    others = group.others(keeper)
    if others:
        dataset.select(others).tag_samples(tag)
    _set_reviewed(dataset, group)
    return len(others)


def delete_others(dataset: fo.Dataset, group: Group, keeper: Optional[str] = None) -> int:
    """Deletes the members other than the kept one now (one bulk delete),
    except protected ones, and only if the kept sample still exists.

    Args:
        dataset: the dataset
        group: the group
        keeper: the member kept (default: the group's kept sample)

    Returns:
        the number of samples deleted
    """
    keeper = keeper or group.keeper
    if keeper is None or not len(dataset.select([keeper])):
        return 0
    protected = protected_ids(dataset)
    doomed = [i for i in group.others(keeper) if i not in protected]
    live = dataset.select(doomed).values("id") if doomed else []
    _set_reviewed(dataset, group)
    if live:
        dataset.delete_samples(live)
    forget_orders(dataset)
    return len(live)


def undo(dataset: fo.Dataset, group: Group) -> None:
    """Takes back a group's decision: its review flag, its pending deletes
    and the "not duplicates" marks that a keep all on this group added."""
    _clear_delete_marks(dataset, group)
    drop_marks(dataset, group.ids, f"{group.result}:{group.key}:")
    if dataset.has_sample_field(REVIEWED_FIELD):
        _set_reviewed(dataset, group, done=False)


def count_marked_to_delete(dataset: fo.Dataset) -> int:
    """How many samples wait for :func:`apply_decisions`."""
    if not has_field(dataset, DELETE_FOR_FIELD):
        return 0
    return dataset.exists(DELETE_FOR_FIELD).count()


def _existing(dataset: fo.Dataset, ids: list) -> set:
    found = set()
    for begin in range(0, len(ids), _ID_CHUNK):
        found.update(dataset.select(ids[begin:begin + _ID_CHUNK]).values("id"))
    return found


def resolve_deletes(dataset: fo.Dataset) -> PendingDeletes:
    """What :func:`apply_decisions` would delete now.

    A sample marked to delete is deleted only if the sample it was kept for
    survives: exists, is not deleted itself, or is deleted for a sample that
    survives (a chain). A chain ending at a missing sample or in a cycle
    keeps its first sample. Protected samples are never deleted.

    Returns:
        a :class:`PendingDeletes` (sorted id lists)
    """
    if not has_field(dataset, DELETE_FOR_FIELD):
        return PendingDeletes([], [])
    ids, targets = dataset.exists(DELETE_FOR_FIELD).values(["id", DELETE_FOR_FIELD])
    keeper = dict(zip(ids, targets))
    protected = protected_ids(dataset)
    doomed = {i for i in ids if i not in protected}
    existing = _existing(dataset, list({t for t in targets if t not in keeper}))
    changed = True
    while changed:
        changed = False
        for start in sorted(doomed):
            if start not in doomed:
                continue
            seen, node = [start], keeper[start]
            while node in doomed and node not in seen:
                seen.append(node)
                node = keeper[node]
            if node in doomed or not (node in keeper or node in existing):
                doomed.discard(start)  # a missing target or a cycle: keep the first
                changed = True
    return PendingDeletes(sorted(doomed), sorted(set(ids) - doomed))


def apply_decisions(dataset: fo.Dataset) -> int:
    """Deletes every sample marked to delete whose kept sample survives, in
    ONE ``delete_samples`` call, and clears the remaining marks (samples that
    had to stay).

    Returns:
        the number of samples deleted
    """
    doomed, kept = resolve_deletes(dataset)
    if doomed:
        dataset.delete_samples(doomed)
    if kept:
        dataset.set_values(DELETE_FOR_FIELD, dict.fromkeys(kept, None), key_field="id")
    forget_orders(dataset)
    return len(doomed)
