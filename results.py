"""How a find's result is stored and handed on: the fields it writes, the
saved view it leaves, and the description of a workflow that the display
and delete operators are given (:class:`Workflow`).
"""

from dataclasses import asdict, dataclass
from typing import NamedTuple
import fiftyone as fo

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


@dataclass(frozen=True)
class Workflow:
    """Where one find operator leaves its result.

    Attributes:
        name: "exact" or "approximate", for messages
        find_label: the label of the find operator that writes the result
        view_name: the saved view of every grouped sample
        group_field: the field whose value the members of a group share
        group_order: the field that orders the members of a group in the App
        result_fields: the fields the find writes (cleared after a delete)
    """

    name: str
    find_label: str
    view_name: str
    group_field: str
    group_order: str
    result_fields: tuple

    def load_view(self, dataset: fo.Dataset) -> fo.DatasetView:
        """The saved result view.

        Raises:
            ValueError: if the find has not been run on ``dataset``
        """
        if self.view_name not in dataset.list_saved_views():
            raise ValueError(
                f"Dataset '{dataset.name}' has no '{self.view_name}': run '{self.find_label}' first"
            )
        return dataset.load_saved_view(self.view_name)

    def groups_view(self, dataset: fo.Dataset) -> fo.DatasetView:
        """The result view as dynamic groups, for the App."""
        return self.load_view(dataset).group_by(self.group_field, order_by=self.group_order)


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


def replace_fields(dataset: fo.Dataset, fields: tuple) -> None:
    """Clears each ``(name, type)`` sample field, adding it if missing: a new
    find replaces the previous result."""
    for field, ftype in fields:
        if dataset.has_sample_field(field):
            dataset.exists(field).clear_sample_field(field)
        else:
            dataset.add_sample_field(field, ftype)


def write_values(dataset: fo.Dataset, values_by_field: dict, ids: list) -> None:
    """Sets ``{field: values}`` on the samples ``ids`` (values in the order
    of ``ids``), one bulk write per field."""
    for field, values in values_by_field.items():
        dataset.set_values(field, dict(zip(ids, values)), key_field="id")
