"""Duplicate groups as both workflows store them: a saved view whose samples
share a group field. Decides what a remove or a deduplicate may delete."""

from collections import defaultdict

import fiftyone as fo


def root_dataset(samples: fo.core.collections.SampleCollection) -> fo.Dataset:
    """The dataset of a dataset or view."""
    return samples if isinstance(samples, fo.Dataset) else fo.load_dataset(samples.dataset_name)


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


def live_groups(view: fo.DatasetView, group_field: str) -> list[list[str]]:
    """The groups of ``view`` that still have two or more samples.

    Samples deleted since the find leave smaller groups; a group left with a
    single sample is no longer a duplicate group and is dropped.

    Returns:
        lists of sample ids, each in the view's order (representative first)
    """
    members = defaultdict(list)
    for sample_id, key in zip(*view.values(["id", group_field])):
        members[key].append(sample_id)
    return [ids for ids in members.values() if len(ids) > 1]


def ids_to_delete(groups: list[list[str]], keep_representative: bool) -> list[str]:
    """All members of the groups, or all but the first of each."""
    start = 1 if keep_representative else 0
    return [sample_id for ids in groups for sample_id in ids[start:]]


def count_to_delete(view: fo.DatasetView, group_field: str, keep_representative: bool) -> int:
    """How many samples :func:`delete_duplicates` would delete now."""
    return len(ids_to_delete(live_groups(view, group_field), keep_representative))


def delete_duplicates(
    dataset: fo.Dataset,
    view: fo.DatasetView,
    group_field: str,
    result_fields: tuple,
    keep_representative: bool,
) -> int:
    """Deletes duplicates of ``view`` in one bulk delete, then clears the
    result so the view is empty.

    Args:
        dataset: the dataset of ``view``
        view: the saved result view of a find operator
        group_field: the field whose value its groups share
        result_fields: the fields the find wrote, cleared afterwards
        keep_representative: keep the first sample of each group

    Returns:
        the number of samples deleted
    """
    doomed = ids_to_delete(live_groups(view, group_field), keep_representative)
    dataset.delete_samples(doomed)
    dataset.exists(result_fields[0]).clear_sample_fields(list(result_fields))
    return len(doomed)
