"""The groups of a result (:mod:`review_results`) in review order, and one
group's members, as the review panel shows them.

Groups are ordered most doubtful first (largest distance to the
representative, or lowest verification score) and read one at a time: the
order needs one ``values()`` call over the members' group keys and distances
(cached per dataset, result and find run), a group's members one query on
its key.
"""

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

import fiftyone as fo

from .review_marks import DELETE_FOR_FIELD, KEPT_APART_FIELD, REVIEWED_FIELD
from .review_results import ReviewedResult, present_fields, reviewed_result

ORDER_CACHE_SIZE = 8
_MEMBER_FIELDS = ("id", "filepath", "created_at", "metadata.width", "metadata.height",
                  "metadata.size_bytes", "tags")


# -- groups in review order -------------------------------------------------


@dataclass
class GroupOrder:
    """A result's groups, most doubtful first.

    Attributes:
        result: the result's name
        keys: group keys, in review order
        doubt: each group's largest distance to its representative (or
            lowest score), for display
        sizes: each group's number of members
        reviewed: the keys of reviewed groups
        token: the fingerprint this order was computed for
    """

    result: str
    keys: list
    doubt: list
    sizes: list
    reviewed: set = field(default_factory=set)
    token: str = ""

    def __len__(self) -> int:
        return len(self.keys)

    def position(self, key: str) -> int:
        """The index of ``key``, or -1."""
        try:
            return self.keys.index(key)
        except ValueError:
            return -1


_ORDERS: "OrderedDict[tuple, GroupOrder]" = OrderedDict()


def result_token(dataset: fo.Dataset, result: str) -> str:
    """A fingerprint of a result's stored state (its find run, member count
    and dataset size): a new find or a delete changes it."""
    res = reviewed_result(result)
    view = res.members(dataset)
    if view is None:
        return "none"
    return f"{res.run(dataset)}|{view.count()}|{len(dataset)}|{present_fields(dataset, [res.score_field])}"


def group_order(dataset: fo.Dataset, result: str, token: Optional[str] = None) -> GroupOrder:
    """The groups of ``result`` in review order: largest distance to the
    representative first (or lowest verification score when the score field
    exists), ties by group key. Reads only group keys, distances and review
    flags of the members (one ``values()`` call).

    Args:
        dataset: the dataset
        result: a name of :data:`RESULTS`
        token: the order is cached per dataset, result and token (default:
            :func:`result_token`)

    Returns:
        a :class:`GroupOrder`
    """
    res = reviewed_result(result)
    token = token or result_token(dataset, result)
    cache_key = (str(dataset._doc.id), result, token)
    order = _ORDERS.pop(cache_key, None)
    if order is None:
        order = _compute_order(dataset, res)
        order.token = token
    _ORDERS[cache_key] = order
    while len(_ORDERS) > ORDER_CACHE_SIZE:
        _ORDERS.popitem(last=False)
    return order


def forget_orders(dataset: Optional[fo.Dataset] = None) -> None:
    """Drops cached orders (of one dataset, or all)."""
    for key in list(_ORDERS):
        if dataset is None or key[0] == str(dataset._doc.id):
            del _ORDERS[key]


def mark_order_reviewed(result: str, key: str, done: bool = True) -> None:
    """Records a group's new review flag in the cached orders of ``result``."""
    for order in _ORDERS.values():
        if order.result == result:
            (order.reviewed.add if done else order.reviewed.discard)(key)


def _numbers(values: list, missing: float) -> np.ndarray:
    return np.asarray([missing if v is None else v for v in values], dtype=float)


def _compute_order(dataset: fo.Dataset, res: ReviewedResult) -> GroupOrder:
    view = res.members(dataset)
    dist, score, flags = (present_fields(dataset, [name]) for name in (res.dist_field, res.score_field, REVIEWED_FIELD))
    names = [res.key_field] + dist + score + flags
    columns = dict(zip(names, view.values(names))) if view is not None else {}
    keys = columns.get(res.key_field)
    if not keys:
        return GroupOrder(res.name, [], [], [])
    # int codes per group key, then numpy reductions per group
    uniq, codes = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    n_groups = len(uniq)
    doubt = np.zeros(n_groups)
    if dist:
        np.maximum.at(doubt, codes, np.nan_to_num(_numbers(columns[dist[0]], np.nan), nan=0.0))
    shown, sort_keys = doubt, (uniq, -doubt)
    if score:
        low = np.full(n_groups, np.inf)
        np.minimum.at(low, codes, _numbers(columns[score[0]], np.inf))
        scored = np.isfinite(low)
        # scored groups: lowest score first; then unscored by distance
        shown, sort_keys = np.where(scored, low, doubt), (uniq, -doubt, np.where(scored, low, np.inf), ~scored)
    order = np.lexsort(sort_keys)
    reviewed = set()
    if flags:
        flags = np.fromiter((res.name in (r or ()) for r in columns[REVIEWED_FIELD]), bool, len(keys))
        not_done = np.bincount(codes, weights=(~flags).astype(float), minlength=n_groups)
        reviewed = set(uniq[not_done == 0].tolist())
    sizes = np.bincount(codes, minlength=n_groups)
    return GroupOrder(res.name, uniq[order].tolist(), shown[order].tolist(), sizes[order].tolist(), reviewed)


# -- one group --------------------------------------------------------------


@dataclass
class Member:
    """One sample of a group, as the panel shows it."""

    id: str
    filepath: str
    width: Optional[int]
    height: Optional[int]
    size_bytes: Optional[int]
    dist: Optional[float]
    score: Optional[float]
    is_representative: bool  # the find's representative (or reference)
    is_reference: bool  # a leakage reference
    delete_for: Optional[str]  # pending delete: the sample kept instead
    protected: bool
    tags: list


@dataclass
class Group:
    """A group's members, representative first, then most doubtful first.

    Attributes:
        result: the result's name
        key: the group key
        members: :class:`Member` list
        keeper: the sample kept: the one the user chose ("keep this one"),
            else the representative
        reviewed: whether every member (references aside) is marked reviewed
        missing_reference: the group key of a leakage group whose
            references are not in this dataset
    """

    result: str
    key: str
    members: list
    keeper: Optional[str]
    reviewed: bool
    missing_reference: Optional[str] = None

    @property
    def ids(self) -> list:
        """The members' sample ids."""
        return [m.id for m in self.members]

    def others(self, keeper: Optional[str] = None) -> list:
        """The members other than ``keeper`` (default: :attr:`keeper`)."""
        keeper = keeper or self.keeper
        return [m.id for m in self.members if m.id != keeper]

    @property
    def to_delete(self) -> list:
        """The members marked to delete."""
        return [m.id for m in self.members if m.delete_for]


def load_group(dataset: fo.Dataset, result: str, key: str, compute_metadata: bool = True) -> Group:
    """Reads one group's members (one query on its key, one for the
    references of a leakage group); metadata is computed for members that
    have none, when asked.

    Args:
        dataset: the dataset
        result: a name of :data:`RESULTS`
        key: the group key
        compute_metadata: compute missing metadata (image size, file size)

    Returns:
        a :class:`Group`; no members if the group no longer exists
    """
    res = reviewed_result(result)
    view = res.members(dataset)
    if view is None:
        return Group(res.name, key, [], None, False)
    views = [view.match({res.key_field: key})] + ([res.workflow.references(dataset, key)] if res.leak else [])
    if compute_metadata and dataset.has_sample_field("metadata"):
        for part in views:
            missing = part.exists("metadata", False)
            if len(missing):
                missing.compute_metadata()
    rows = _rows(dataset, views[0], res)
    references = _rows(dataset, views[1], res) if res.leak else []
    missing_reference = key if res.leak and rows and not references else None
    return _make_group(res, key, rows, references, missing_reference)


def _rows(dataset: fo.Dataset, view: fo.DatasetView, res: ReviewedResult) -> list:
    names = list(_MEMBER_FIELDS) + present_fields(dataset, [res.dist_field, res.score_field, REVIEWED_FIELD,
                                                     DELETE_FOR_FIELD, KEPT_APART_FIELD])
    return [dict(zip(names, values)) for values in zip(*view.values(names))]


def _first_added(rows: list) -> Optional[str]:
    return min(rows, key=lambda r: (r["created_at"], r["id"]))["id"] if rows else None


def _make_group(res: ReviewedResult, key: str, rows: list, references: list,
                missing_reference: Optional[str]) -> Group:
    every = references + rows
    if res.key_is_id:
        rep = key if any(r["id"] == key for r in every) else None
    else:
        rep = _first_added(references if res.leak else rows)
    ids = {r["id"] for r in every}
    chosen = [r[DELETE_FOR_FIELD] for r in every if r.get(DELETE_FOR_FIELD) in ids]
    keeper = chosen[0] if chosen else rep
    if keeper is None and every:
        keeper = min(every, key=lambda r: (r.get(res.dist_field) or 0.0, r["created_at"], r["id"]))["id"]
    reference_ids = {r["id"] for r in references}
    members = [Member(
        id=r["id"], filepath=r["filepath"], width=r.get("metadata.width"),
        height=r.get("metadata.height"), size_bytes=r.get("metadata.size_bytes"),
        dist=0.0 if r["id"] == rep or not res.dist_field else r.get(res.dist_field),
        score=r.get(res.score_field) if res.score_field else None,
        is_representative=r["id"] == rep, is_reference=r["id"] in reference_ids,
        delete_for=r.get(DELETE_FOR_FIELD), protected=bool(r.get(KEPT_APART_FIELD)),
        tags=list(r.get("tags") or []),
    ) for r in every]
    members.sort(key=lambda m: (not m.is_representative, not m.is_reference, -(m.dist or 0.0), m.id))
    reviewed = bool(rows) and all(res.name in (r.get(REVIEWED_FIELD) or []) for r in rows)
    return Group(res.name, key, members, keeper, reviewed, missing_reference)
