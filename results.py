"""How a find's result is stored and handed on: the fields it writes, the
saved view it leaves, and the description of a workflow that the display
and delete operators are given (:class:`Workflow`).

Each find run gets an id, kept in ``dataset.info`` under :data:`STATE_KEY`
(per workflow: the current run and the tag of an open review) and written on
every sample it marks (``Workflow.run_field``). The result views take only
the current run's samples, so samples merged in from another dataset with
that dataset's result fields are never taken for this dataset's duplicates.
"""

import datetime
import os
import uuid
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple, Optional
from bson import ObjectId
import numpy as np
from pymongo import UpdateOne

import fiftyone as fo
from fiftyone import ViewField as F

STATE_KEY = "dedup_results"
SampleCollection = fo.core.collections.SampleCollection


class Result:
    """Base of the dataclasses a find returns: ``to_dict()`` is the
    operator's JSON output."""

    def to_dict(self) -> dict:
        return asdict(self)


class GroupCounts(NamedTuple):
    """How many samples a find put in groups, and in how many groups."""

    num_in_groups: int
    num_groups: int

    @property
    def num_dups(self) -> int:
        """What a deduplicate would remove: all but one per group."""
        return self.num_in_groups - self.num_groups


def files_exist(paths: list, keys: list) -> list:
    """Whether each file is still there (the check of workflows that keep no
    content fingerprint)."""
    return [os.path.isfile(path) for path in paths]


@dataclass(frozen=True)
class Workflow:
    """Where one find operator leaves its result.

    Attributes:
        name: "exact" or "approximate", for messages
        find_label: the label of the find operator that writes the result
        view_name: the saved view of every grouped sample
        group_field: the field whose value the members of a group share
        group_order: the field that orders the members of a group in the App
        run_field: the field holding the id of the find run that marked a
            sample
        result_fields: the fields the find writes (cleared after a delete)
        check_files: ``check_files(paths, group_keys)`` says, right before a
            delete, which files still belong to their group
    """

    name: str
    find_label: str
    view_name: str
    group_field: str
    group_order: str
    run_field: str
    result_fields: tuple
    check_files: Callable[[list, list], list] = files_exist

    def load_view(self, dataset: fo.Dataset) -> fo.DatasetView:
        """The saved result view.

        Raises:
            ValueError: if the find has not been run on ``dataset``
        """
        run = current_run(dataset, self)
        if self.view_name not in dataset.list_saved_views() or run is None:
            raise ValueError(
                f"Dataset '{dataset.name}' has no '{self.view_name}': run '{self.find_label}' first"
            )
        return dataset.load_saved_view(self.view_name).match(F(self.run_field) == run)

    def run_match(self, run: str) -> fo.core.expressions.ViewExpression:
        """The samples a run marked."""
        return F(self.run_field) == run

    def groups_view(self, dataset: fo.Dataset) -> fo.DatasetView:
        """The result view as dynamic groups, for the App."""
        return self.load_view(dataset).group_by(self.group_field, order_by=self.group_order)


def _state(dataset: fo.Dataset, workflow: Workflow) -> dict:
    return dict(dataset.info.get(STATE_KEY, {}).get(workflow.name, {}))


def _set_state(dataset: fo.Dataset, workflow: Workflow, state: dict) -> None:
    states = dict(dataset.info.get(STATE_KEY, {}))
    states[workflow.name] = state
    dataset.info[STATE_KEY] = states
    dataset.save()


def new_run(dataset: fo.Dataset, workflow: Workflow) -> str:
    """Starts a find's new result: a new run id (any open review ends).

    Returns:
        the run id, to write in ``workflow.run_field`` of marked samples
    """
    run = uuid.uuid4().hex
    _set_state(dataset, workflow, {"run": run})
    return run


def current_run(dataset: fo.Dataset, workflow: Workflow) -> Optional[str]:
    """The id of the find run whose result is current, or None."""
    return _state(dataset, workflow).get("run")


def review_tag(dataset: fo.Dataset, workflow: Workflow) -> Optional[str]:
    """The tag of the review a tag action started on the current result, or None."""
    return _state(dataset, workflow).get("review_tag")


def set_review_tag(dataset: fo.Dataset, workflow: Workflow, tag: Optional[str]) -> None:
    """Opens (``tag``) or ends (None) the review of the current result."""
    state = _state(dataset, workflow)
    state.pop("review_tag", None)
    if tag is not None:
        state["review_tag"] = tag
    _set_state(dataset, workflow, state)


def root_dataset(samples: SampleCollection) -> fo.Dataset:
    """The dataset of a dataset or view."""
    return samples if isinstance(samples, fo.Dataset) else fo.load_dataset(samples.dataset_name)


def dataset_name(samples: SampleCollection) -> str:
    """The name of the dataset of a dataset or view."""
    return samples.name if isinstance(samples, fo.Dataset) else samples.dataset_name


def require_samples(samples: SampleCollection, what: str = "search for duplicates") -> None:
    """Raises ValueError if ``samples`` is empty."""
    if len(samples) == 0:
        raise ValueError(f"There are no samples to {what}")


def sample_id_array(samples: SampleCollection, batch_size: int = 100_000) -> np.ndarray:
    """The ids of ``samples``, in their order, as 24-byte ASCII strings.

    Read from the database in batches: 24 MB per million samples, where
    ``values("id")`` holds a Python str per sample (its peak at 1,000,000
    samples was about 500 MB).

    Args:
        samples: a dataset or view
        batch_size: ids converted at a time

    Returns:
        a numpy array of dtype "S24"
    """
    cursor = samples._aggregate(pipeline=[{"$project": {"_id": True}}])
    parts, batch = [np.empty(0, "S24")], []
    for doc in cursor:
        batch.append(str(doc["_id"]))
        if len(batch) == batch_size:
            parts.append(np.array(batch, dtype="S24"))
            batch = []
    parts.append(np.array(batch, dtype="S24"))
    return np.concatenate(parts)


def replace_fields(dataset: fo.Dataset, fields: tuple) -> None:
    """Clears each ``(name, type)`` sample field, adding it if missing: a new
    find replaces the previous result. One update of the samples that have
    any of them (a pass per field cost a second per 20,000 samples; a view's
    ``clear_sample_fields``, which rewrites them through an aggregation,
    0.7 s per 13,000)."""
    present = [field for field, _ in fields if dataset.has_sample_field(field)]
    for field, ftype in fields:
        if field not in present:
            dataset.add_sample_field(field, ftype)
    if present:
        having_any = {"$or": [{field: {"$ne": None}} for field in present]}
        now = datetime.datetime.now(datetime.timezone.utc)
        dataset._sample_collection.update_many(
            having_any, {"$set": {**{field: None for field in present}, "last_modified_at": now}}
        )
        fo.core.sample.Sample._reload_docs(dataset._sample_collection_name)


def write_values(dataset: fo.Dataset, values_by_field: dict, ids: list, batch_size: int = 50_000) -> None:
    """Sets ``{field: values}`` on the samples ``ids`` (values in the order
    of ``ids``) in bulk writes, as ``set_values`` does for one field: a
    ``set_values`` per field doubled the database's work (measured: mongod
    CPU 0.27 s -> 0.53 s per 10,000 samples for two fields). The write
    operations are built ``batch_size`` samples at a time (a million of them
    at once would take about 730 bytes each). The fields must be declared
    already."""
    now = datetime.datetime.now(datetime.timezone.utc)
    fields = list(values_by_field)
    columns = list(values_by_field.values())
    for start in range(0, len(ids), batch_size):
        stop = min(len(ids), start + batch_size)
        batch_ids = ids[start:stop]
        rows = zip(*(column[start:stop] for column in columns))
        ops = [UpdateOne({"_id": ObjectId(sample_id)},
                         {"$set": {**dict(zip(fields, row)), "last_modified_at": now}})
               for sample_id, row in zip(batch_ids, rows)]
        dataset._bulk_write(ops, ids=batch_ids)
