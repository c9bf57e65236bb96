"""Leakage checks: the samples of a target (e.g. train) that duplicate a
sample of a reference collection (e.g. test), exactly or approximately.

The references are a saved view or a tag of the same dataset, or another
dataset. Only the target is written; reference samples that are also in the
target are never searched nor marked (a sample can't leak into itself).
"""

import logging
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

import fiftyone as fo

from . import approx_dups, exact_dups, similarity
from .neighbors import find_pairs, nearest_matches
from .progress import Progress
from .results import (Result, SampleCollection, Workflow, dataset_name, new_run, replace_fields,
                      root_dataset, write_values)

logger = logging.getLogger(__name__)

REFERENCE_KINDS = ("saved_view", "tag", "dataset")
EXACT_LEAK_FIELD = "is_exact_leak"
EXACT_LEAK_VIEW = "exact_leak_view"
APPROX_REF_FIELD = "approx_leak_ref_id"
APPROX_DIST_FIELD = "approx_leak_dist"
APPROX_LEAK_VIEW = "approx_leak_view"
EXACT_LEAK_RUN = "exact_leak_run"
APPROX_LEAK_RUN = "approx_leak_run"
# where each check leaves its result; its run id ties the marks to the check
# that wrote them, as for the finds (see results)
EXACT_LEAKS = Workflow(name="exact leakage", find_label=exact_dups.FIND_LABEL,
                       view_name=EXACT_LEAK_VIEW, group_field=exact_dups.FILEHASH_FIELD,
                       group_order="created_at", run_field=EXACT_LEAK_RUN,
                       result_fields=(EXACT_LEAK_FIELD, EXACT_LEAK_RUN))
APPROX_LEAKS = Workflow(name="approximate leakage", find_label=approx_dups.FIND_LABEL,
                        view_name=APPROX_LEAK_VIEW, group_field=APPROX_REF_FIELD,
                        group_order=APPROX_DIST_FIELD, run_field=APPROX_LEAK_RUN,
                        result_fields=(APPROX_REF_FIELD, APPROX_DIST_FIELD, APPROX_LEAK_RUN))
NOTHING_TO_CHECK = "There are no samples outside the references to check for leaks"


@dataclass
class ExactLeakResult(Result):
    """What an exact leakage check did and found."""

    num_leaked: int
    num_references: int
    num_hashed: int
    num_unreadable: int
    unreadable_paths: list


@dataclass
class ApproxLeakResult(Result):
    """What an approximate leakage check found."""

    num_leaked: int
    num_references: int
    threshold: float
    num_not_indexed: int


class Scope(NamedTuple):
    """The sample ids a check searches.

    Attributes:
        targets: ids of the target samples outside the references
        shared: ids of the references when they are in the target's dataset,
            else None
    """

    targets: set
    shared: Optional[set]


class LeakEmbeddings(NamedTuple):
    """Index embeddings of the targets and of the references, centered on
    their common mean for sklearn indexes (as one search over both would be)."""

    queries: np.ndarray
    query_ids: list
    references: np.ndarray
    reference_ids: list
    metric: str


def reference_collection(dataset: fo.Dataset, kind: str, name: Optional[str]) -> SampleCollection:
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


def check_scope(samples: SampleCollection, references: SampleCollection) -> Scope:
    """The ids to search. The shared references are a set in memory rather
    than an ``exclude(ids)`` stage, which outgrows MongoDB's 16 MB command
    limit near a million ids.

    Raises:
        ValueError: if no target sample is outside the references
    """
    shared = None
    if dataset_name(references) == dataset_name(samples):
        shared = set(references.values("id"))
    targets = set(samples.values("id")) - (shared or set())
    if not targets:
        raise ValueError(NOTHING_TO_CHECK)
    return Scope(targets, shared)


def find_exact_leaks(
    samples: SampleCollection,
    references: SampleCollection,
    rehash: bool = False,
    progress: Progress = None,
    num_readers: Optional[int] = None,
) -> ExactLeakResult:
    """Marks the samples of ``samples`` whose file is byte-identical to a
    file of ``references`` in ``is_exact_leak`` and saves ``exact_leak_view``.

    Missing hashes are computed on both sides (stored in ``filehash``, as a
    find does).

    Args:
        samples: the dataset or view to check
        references: a view of the same dataset, or another dataset
        rehash: hash every file again
        progress: optional ``callback(fraction, label)``
        num_readers: threads that read files (None: sized automatically)

    Returns:
        an :class:`ExactLeakResult`

    Raises:
        ValueError: if ``samples`` has no sample outside ``references``
    """
    samples, references = exact_dups.hashable_samples(samples), exact_dups.hashable_samples(references)
    scope = check_scope(samples, references)
    hashed = exact_dups.compute_filehashes(samples, rehash, progress, num_readers=num_readers)
    ref_hashed = exact_dups.compute_filehashes(references, rehash, progress, num_readers=num_readers)
    known = set(references.exists(exact_dups.FILEHASH_FIELD).values(exact_dups.FILEHASH_FIELD))
    known.discard(exact_dups.EMPTY_DIGEST)  # empty files are failed downloads, not copies
    ids, hashes = samples.exists(exact_dups.FILEHASH_FIELD).values(["id", exact_dups.FILEHASH_FIELD])
    leaked = [i for i, h in zip(ids, hashes) if h in known and i in scope.targets]
    dataset = root_dataset(samples)
    exact_dups.set_marker(dataset, EXACT_LEAK_FIELD, leaked)
    replace_fields(dataset, ((EXACT_LEAK_RUN, fo.StringField),))
    run = new_run(dataset, EXACT_LEAKS)
    write_values(dataset, {EXACT_LEAK_RUN: [run] * len(leaked)}, leaked)
    leak_view = dataset.match(EXACT_LEAKS.run_match(run)).sort_by(exact_dups.BY_HASH)
    dataset.save_view(EXACT_LEAK_VIEW, leak_view, overwrite=True)
    unreadable = hashed.unreadable_paths + ref_hashed.unreadable_paths
    logger.info("%d samples duplicate a reference file exactly", len(leaked))
    return ExactLeakResult(
        num_leaked=len(leaked),
        num_references=len(references),
        num_hashed=hashed.num_hashed + ref_hashed.num_hashed,
        num_unreadable=len(unreadable),
        unreadable_paths=unreadable[: exact_dups.MAX_LISTED_FAILURES],
    )


def leak_embeddings(
    samples: SampleCollection, references: SampleCollection, brain_key: str, scope: Scope
) -> LeakEmbeddings:
    """Index embeddings of the targets of ``scope`` and of ``references``.
    Another dataset needs its own index under the same brain key.

    Raises:
        ValueError: if the references' index is not comparable
    """
    dataset = root_dataset(samples)
    if scope.shared is not None:
        rows = _directed(similarity.index_rows(dataset, brain_key, scope.targets | scope.shared))
        is_ref = np.fromiter((i in scope.shared for i in rows.sample_ids), bool, len(rows.sample_ids))
        ids = np.asarray(rows.sample_ids)
        return LeakEmbeddings(rows.embeddings[~is_ref], list(ids[~is_ref]),
                              rows.embeddings[is_ref], list(ids[is_ref]), rows.metric)
    queries = _directed(similarity.index_rows(dataset, brain_key, scope.targets))
    refs = _directed(similarity.index_rows(root_dataset(references), brain_key, set(references.values("id"))))
    if queries.metric != refs.metric or queries.embeddings.shape[1:] != refs.embeddings.shape[1:]:
        raise ValueError(
            f"Similarity index '{brain_key}' of '{dataset_name(references)}' is not "
            "comparable with this dataset's (other metric or embedding size)"
        )
    n, m = len(queries.embeddings), len(refs.embeddings)
    mean = (n * queries.mean + m * refs.mean) / max(1, n + m)
    query_rows = queries.embeddings + (queries.mean - mean).astype(np.float32)
    ref_rows = refs.embeddings + (refs.mean - mean).astype(np.float32)
    return LeakEmbeddings(query_rows, queries.sample_ids, ref_rows, refs.sample_ids, queries.metric)


def _directed(rows: similarity.IndexRows) -> similarity.IndexRows:
    """``rows`` without the all-zero embeddings, which match nothing."""
    keep = ~rows.degenerate
    return rows._replace(embeddings=rows.embeddings[keep], degenerate=rows.degenerate[keep],
                         sample_ids=list(np.asarray(rows.sample_ids, dtype=object)[keep]))


def find_approximate_leaks(
    samples: SampleCollection,
    references: SampleCollection,
    brain_key: str,
    threshold: float,
    progress: Progress = None,
) -> ApproxLeakResult:
    """Marks the samples of ``samples`` within ``threshold`` of a sample of
    ``references`` and saves ``approx_leak_view`` (sorted by distance).

    Writes ``approx_leak_ref_id`` (the nearest reference's sample id) and
    ``approx_leak_dist`` on leaking samples, replacing any previous check.

    Args:
        samples: the dataset or view to check
        references: a view of the same dataset or another dataset with a
            similarity index under the same ``brain_key``
        brain_key: a sample-level similarity index
        threshold: distance threshold in the index's metric
        progress: optional ``callback(fraction, label)``

    Returns:
        an :class:`ApproxLeakResult`

    Raises:
        ValueError: on a bad brain key or threshold, or nothing to compare;
            nothing is changed then
    """
    dataset = root_dataset(samples)
    similarity.validate_threshold(threshold, similarity.similarity_config(dataset, brain_key).metric)
    scope = check_scope(samples, references)
    rows = leak_embeddings(samples, references, brain_key, scope)
    if not rows.query_ids or not rows.reference_ids:
        raise ValueError(f"Samples or references are missing from similarity index '{brain_key}'")
    pairs = find_pairs(rows.queries, rows.metric, threshold, progress, references=rows.references)
    nearest = nearest_matches(pairs)
    leaked = [rows.query_ids[k] for k in nearest.i]
    replace_fields(dataset, ((APPROX_REF_FIELD, fo.StringField), (APPROX_DIST_FIELD, fo.FloatField),
                             (APPROX_LEAK_RUN, fo.StringField)))
    run = new_run(dataset, APPROX_LEAKS)
    write_values(dataset, {APPROX_REF_FIELD: [rows.reference_ids[k] for k in nearest.j],
                           APPROX_DIST_FIELD: nearest.dist.tolist(), APPROX_LEAK_RUN: [run] * len(leaked)},
                 leaked)
    leak_view = dataset.match(APPROX_LEAKS.run_match(run)).sort_by([(APPROX_DIST_FIELD, 1), ("_id", 1)])
    dataset.save_view(APPROX_LEAK_VIEW, leak_view, overwrite=True)
    logger.info("%d samples are within %s of a reference", len(leaked), threshold)
    return ApproxLeakResult(
        num_leaked=len(leaked),
        num_references=len(references),
        threshold=threshold,
        num_not_indexed=len(scope.targets) - len(rows.query_ids),
    )
