"""Approximate (near) duplicates from any FiftyOne similarity index.

The embeddings are taken from the index (``get_embeddings()``) and searched
here with numpy, in bounded blocks, so every backend works the same way. The
grouping rule is the one of ``SimilarityIndex.find_duplicates`` in
fiftyone-brain:

-   walk the samples in index order; a sample not yet marked as a duplicate
    is kept, and every later sample within the threshold of it is marked;
-   each duplicate joins the group of its nearest kept sample, which is the
    group's representative;
-   in fraction mode the threshold is bisected, as the brain does, until the
    wanted number of samples are duplicates.

Distances are in the index's metric (cosine distance = 1 - cosine similarity).
Like the brain's sklearn backend, sklearn indexes are mean-centered first.
"""

from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np

import fiftyone as fo
from fiftyone import ViewField as F

from . import groups

DEFAULT_THRESHOLD = 0.5
DEFAULT_FRACTION = 0.1
GROUP_FIELD = "approx_dup_group_id"
DIST_FIELD = "approx_dup_dist"
APPROX_DUP_VIEW = "approx_dup_view"
APPROX_DUP_GROUPS_VIEW = "approx_dup_groups_view"
FIND_LABEL = "Dedup: Find approximate duplicates"
SUPPORTED_METRICS = ("cosine", "euclidean")
NO_INDEX_MESSAGE = (
    "This dataset has no similarity index. Create one first, for example "
    "fiftyone.brain.compute_similarity(dataset, embeddings='my_embeddings', "
    "brain_key='sim'), or with a model"
)
TILE_ROWS = 2048
TILE_COLS = 8192
PAIR_CHUNK = 1 << 16

Progress = Optional[Callable[[float, str], None]]


class Pairs(NamedTuple):
    """Candidate pairs ``i < j`` (positions in index order) and their distances,
    sorted by ``i``."""

    i: np.ndarray
    j: np.ndarray
    dist: np.ndarray


class Groups(NamedTuple):
    """The grouping of ``n`` samples at one threshold.

    ``rep[k]`` is the position of the representative of sample ``k``'s group
    (``k`` itself for a representative) or -1 when ``k`` is in no group;
    ``dist[k]`` is the distance to the representative.
    """

    rep: np.ndarray
    dist: np.ndarray
    threshold: Optional[float]


@dataclass
class ApproxFindResult:
    """What a find run found."""

    num_images_with_approx_dups: int
    num_dups: int
    num_groups: int
    threshold: Optional[float]
    num_not_indexed: int

    def to_dict(self) -> dict:
        return asdict(self)


def similarity_brain_keys(dataset: fo.Dataset) -> list:
    """The brain keys of the dataset's sample-level similarity indexes."""
    return [
        key
        for key in dataset.list_brain_runs(type="similarity")
        if dataset.get_brain_info(key).config.patches_field is None
    ]


def load_index_embeddings(samples: fo.core.collections.SampleCollection, brain_key: str) -> tuple:
    """Loads the embeddings of ``samples`` from a similarity index.

    Args:
        samples: the dataset or view to search
        brain_key: the key of a sample-level similarity index

    Returns:
        ``(embeddings, sample_ids, metric)``: float32 embeddings in index
        order (mean-centered for sklearn indexes), restricted to ``samples``

    Raises:
        ValueError: if ``brain_key`` is not a usable similarity index
    """
    dataset = groups.root_dataset(samples)
    config = _similarity_config(dataset, brain_key)
    embeddings, sample_ids, _ = dataset.load_brain_results(brain_key).get_embeddings()
    wanted = set(samples.values("id"))
    in_scope = np.fromiter((i in wanted for i in sample_ids), bool, len(sample_ids))
    embeddings = np.asarray(embeddings[in_scope], dtype=np.float32)
    if config.method == "sklearn" and len(embeddings):
        embeddings -= embeddings.mean(axis=0, dtype=np.float64).astype(np.float32)
    return embeddings, list(np.asarray(sample_ids)[in_scope]), config.metric


def _similarity_config(dataset: fo.Dataset, brain_key: Optional[str]):
    if not brain_key or brain_key not in dataset.list_brain_runs():
        if not similarity_brain_keys(dataset):
            raise ValueError(NO_INDEX_MESSAGE)
        raise ValueError(f"Dataset '{dataset.name}' has no brain run '{brain_key}'")
    config = dataset.get_brain_info(brain_key).config
    if config.type != "similarity":
        raise ValueError(
            f"Brain run '{brain_key}' is a '{config.type}' run, not a similarity index"
        )
    if config.patches_field is not None:
        raise ValueError(
            f"Similarity index '{brain_key}' indexes object patches; pick an image-level index"
        )
    if config.metric not in SUPPORTED_METRICS:
        raise ValueError(
            f"Similarity index '{brain_key}' uses metric '{config.metric}'; "
            f"supported metrics are {SUPPORTED_METRICS}"
        )
    return config


def _prepare(embeddings: np.ndarray, metric: str) -> tuple:
    """float32 rows ready for matrix products, plus squared norms for euclidean."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms == 0, 1, norms), None
    return x, np.einsum("ij,ij->i", x, x)


def _distance_tiles(x: np.ndarray, sq_norms, progress: Progress = None):
    """Yields ``(row0, col0, tile)`` over the upper triangle of the matrix of
    approximate distances (cosine distance, or squared euclidean distance),
    self-distances set to inf. Never holds more than one tile.

    The float32 matrix-product form loses precision for close pairs; callers
    re-measure what they keep with :func:`exact_distances`.
    """
    n = len(x)
    for row0 in range(0, n, TILE_ROWS):
        rows = x[row0 : row0 + TILE_ROWS]
        for col0 in range(row0, n, TILE_COLS):
            tile = rows @ x[col0 : col0 + TILE_COLS].T
            if sq_norms is None:
                np.subtract(1.0, tile, out=tile)
            else:
                tile *= -2.0
                tile += sq_norms[row0 : row0 + len(rows), None]
                tile += sq_norms[None, col0 : col0 + tile.shape[1]]
            if col0 == row0:
                diag = np.arange(min(len(rows), tile.shape[1]))
                tile[diag, diag] = np.inf
            yield row0, col0, tile
        if progress:
            done = min(n, row0 + TILE_ROWS)
            progress((done / n) * (2 - done / n), f"compared {done}/{n} samples")


def _tile_limit(max_dist: float, sq_norms) -> float:
    """The tile value under which a pair may be within ``max_dist``, with a
    margin for float32 rounding."""
    if sq_norms is None:
        return max_dist + 1e-4
    return max_dist**2 + 1e-4 * float(sq_norms.max(initial=0.0))


def exact_distances(x: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str) -> np.ndarray:
    """Distances between rows ``i`` and ``j`` of prepared rows, in float64."""
    out = np.empty(len(i), dtype=np.float64)
    for start in range(0, len(i), PAIR_CHUNK):
        a = x[i[start : start + PAIR_CHUNK]].astype(np.float64)
        b = x[j[start : start + PAIR_CHUNK]].astype(np.float64)
        if metric == "cosine":
            out[start : start + len(a)] = 1.0 - np.einsum("ij,ij->i", a, b)
        else:
            out[start : start + len(a)] = np.linalg.norm(a - b, axis=1)
    return out


def find_pairs(embeddings: np.ndarray, metric: str, max_dist: float, progress: Progress = None) -> Pairs:
    """All pairs within ``max_dist`` of each other, by exact blocked search.

    Args:
        embeddings: ``n x d`` array
        metric: "cosine" or "euclidean"
        max_dist: the largest distance kept
        progress: optional ``callback(fraction, label)``

    Returns:
        :class:`Pairs`, with distances re-measured in float64
    """
    x, sq_norms = _prepare(embeddings, metric)
    limit = _tile_limit(max_dist, sq_norms)
    found = [(np.empty(0, np.int64), np.empty(0, np.int64))]
    for row0, col0, tile in _distance_tiles(x, sq_norms, progress):
        r, c = np.nonzero(tile <= limit)
        upper = c + col0 > r + row0
        found.append((r[upper] + row0, c[upper] + col0))
    i, j = (np.concatenate(parts) for parts in zip(*found))
    dist = exact_distances(x, i, j, metric)
    close = dist <= max_dist
    i, j, dist = i[close], j[close], dist[close]
    order = np.lexsort((j, i))
    return Pairs(i[order], j[order], dist[order])


def nearest_neighbor_distances(embeddings: np.ndarray, metric: str, progress: Progress = None) -> np.ndarray:
    """Each sample's distance to its nearest other sample (inf when alone)."""
    x, sq_norms = _prepare(embeddings, metric)
    n = len(x)
    best = np.full(n, np.inf, dtype=np.float32)
    nearest = np.arange(n)
    for row0, col0, tile in _distance_tiles(x, sq_norms, progress):
        for axis, offset, other in ((1, row0, col0), (0, col0, row0)):
            span = slice(offset, offset + tile.shape[1 - axis])
            arg = tile.argmin(axis=axis)
            value = np.take_along_axis(tile, np.expand_dims(arg, axis), axis).squeeze(axis)
            better = value < best[span]
            best[span][better] = value[better]
            nearest[span][better] = arg[better] + other
    found = nearest != np.arange(n)
    dist = np.full(n, np.inf)
    dist[found] = exact_distances(x, np.arange(n)[found], nearest[found], metric)
    return dist


def greedy_duplicates(n: int, pairs: Pairs, threshold: float) -> np.ndarray:
    """The brain's greedy rule: in index order, a sample not yet marked is
    kept and marks every later sample within ``threshold``.

    Returns:
        a boolean array, True for duplicates
    """
    close = pairs.dist <= threshold
    i, j = pairs.i[close], pairs.j[close]
    is_dup = np.zeros(n, dtype=bool)
    sources, starts = np.unique(i, return_index=True)
    ends = np.append(starts[1:], len(i))
    for source, start, end in zip(sources.tolist(), starts.tolist(), ends.tolist()):
        if not is_dup[source]:
            is_dup[j[start:end]] = True
    return is_dup


def assign_groups(n: int, pairs: Pairs, threshold: float) -> Groups:
    """Groups each duplicate with its nearest kept sample (ties: the earlier)."""
    is_dup = greedy_duplicates(n, pairs, threshold)
    close = pairs.dist <= threshold
    dup = np.concatenate([pairs.j[close], pairs.i[close]])
    kept = np.concatenate([pairs.i[close], pairs.j[close]])
    dist = np.concatenate([pairs.dist[close], pairs.dist[close]])
    usable = is_dup[dup] & ~is_dup[kept]
    dup, kept, dist = dup[usable], kept[usable], dist[usable]
    order = np.lexsort((kept, dist, dup))
    dup, kept, dist = dup[order], kept[order], dist[order]
    first = np.unique(dup, return_index=True)[1]
    rep = np.full(n, -1, dtype=np.int64)
    rep_dist = np.zeros(n, dtype=np.float32)
    rep[dup[first]] = kept[first]
    rep_dist[dup[first]] = dist[first]
    reps = np.unique(kept[first])
    rep[reps] = reps
    return Groups(rep, rep_dist, threshold)


def tune_threshold(n: int, pairs: Pairs, num_keep: int, max_dist: float) -> float:
    """The threshold the brain's bisection settles on to keep ``num_keep`` of
    ``n`` samples, evaluated on stored pairs instead of new searches.

    Thresholds above ``max_dist`` (beyond the stored pairs) are taken to keep
    fewer than ``num_keep``, which the caller ensures for ``max_dist`` itself.
    """

    def kept(threshold):
        return n - int(greedy_duplicates(n, pairs, min(threshold, max_dist)).sum())

    threshold, low, high = 1.0, 0.0, None
    num_kept = -1
    while True:
        last, num_kept = num_kept, kept(threshold)
        if num_kept == num_keep or (
            num_kept == last and high is not None and high - low < 1e-6
        ):
            return threshold
        if num_kept < num_keep:
            high = threshold
            threshold = 0.5 * (low + threshold)
        else:
            low = threshold
            threshold = 0.5 * (threshold + high) if high is not None else 2 * threshold


def search_duplicates(
    embeddings: np.ndarray,
    metric: str,
    threshold: Optional[float] = None,
    fraction: Optional[float] = None,
    progress: Progress = None,
) -> Groups:
    """Groups near duplicates by a distance threshold or a wanted fraction.

    Args:
        embeddings: ``n x d`` array, in index order
        metric: "cosine" or "euclidean"
        threshold: the distance under which samples are duplicates
        fraction: instead of ``threshold``, the fraction of samples that
            should be duplicates
        progress: optional ``callback(fraction, label)``

    Returns:
        :class:`Groups`
    """
    n = len(embeddings)
    if fraction is None:
        return assign_groups(n, find_pairs(embeddings, metric, threshold, progress), threshold)
    num_keep = int(round((1.0 - fraction) * n))
    if num_keep >= n:
        return Groups(np.full(n, -1), np.zeros(n, np.float32), None)
    pairs, max_dist = _pairs_for_fraction(embeddings, metric, n - num_keep, progress)
    threshold = tune_threshold(n, pairs, num_keep, max_dist)
    return assign_groups(n, pairs, threshold)


def _pairs_for_fraction(embeddings, metric, num_dups, progress):
    """Pairs up to a distance at which more than ``num_dups`` samples are
    duplicates (or up to the largest possible distance).

    The first guess is the distance within which ``2 * num_dups`` samples have
    a neighbour: near duplicates come in groups of two or more.
    """
    n = len(embeddings)
    nearest = np.sort(nearest_neighbor_distances(embeddings, metric, progress))
    diameter = 2.0 * (1.0 if metric == "cosine" else float(np.linalg.norm(embeddings, axis=1).max()))
    max_dist = float(nearest[min(2 * num_dups, n) - 1]) or diameter * 1e-6
    while True:
        pairs = find_pairs(embeddings, metric, max_dist, progress)
        if max_dist >= diameter or greedy_duplicates(n, pairs, max_dist).sum() > num_dups:
            return pairs, max_dist
        max_dist = min(2.0 * max_dist, diameter)


def _validate(method: str, threshold, fraction, metric: str) -> None:
    if method == "threshold":
        limit = 2.0 if metric == "cosine" else np.inf
        if threshold is None or not 0.0 <= threshold <= limit:
            raise ValueError(
                f"threshold_value must be between 0 and {limit} for metric '{metric}', got {threshold}"
            )
    elif method == "fraction":
        if fraction is None or not 0.0 <= fraction < 1.0:
            raise ValueError(f"dup_fraction must be at least 0 and below 1, got {fraction}")
    else:
        raise ValueError(f"method_choices must be 'threshold' or 'fraction', got '{method}'")


def find_approximate_duplicates(
    samples: fo.core.collections.SampleCollection,
    brain_key: str,
    method: str = "threshold",
    threshold: float = DEFAULT_THRESHOLD,
    fraction: float = DEFAULT_FRACTION,
    progress: Progress = None,
) -> ApproxFindResult:
    """Groups the near duplicates among ``samples`` and saves the result views.

    Writes ``approx_dup_group_id`` (the representative's sample id) and
    ``approx_dup_dist`` (distance to the representative) on grouped samples,
    replacing any previous result, and saves ``approx_dup_view`` and
    ``approx_dup_groups_view``.

    Args:
        samples: the dataset or view to search
        brain_key: a sample-level similarity index of the dataset
        method: "threshold" or "fraction"
        threshold: distance threshold, for method "threshold"
        fraction: fraction of samples to mark as duplicates, for "fraction"
        progress: optional ``callback(fraction, label)``

    Returns:
        an :class:`ApproxFindResult`

    Raises:
        ValueError: on a bad brain key, a bad parameter or no samples;
            nothing is changed then
    """
    dataset = groups.root_dataset(samples)
    metric = _similarity_config(dataset, brain_key).metric
    _validate(method, threshold, fraction, metric)
    if len(samples) == 0:
        raise ValueError("There are no samples to search for duplicates")
    embeddings, ids, metric = load_index_embeddings(samples, brain_key)
    if not ids:
        raise ValueError(f"None of the samples are in similarity index '{brain_key}'")
    found = search_duplicates(
        embeddings,
        metric,
        threshold=threshold if method == "threshold" else None,
        fraction=fraction if method == "fraction" else None,
        progress=progress,
    )
    num_in_groups, num_groups = _save_groups(dataset, ids, found)
    return ApproxFindResult(
        num_images_with_approx_dups=num_in_groups,
        num_dups=num_in_groups - num_groups,
        num_groups=num_groups,
        threshold=found.threshold,
        num_not_indexed=len(samples) - len(ids),
    )


def _save_groups(dataset: fo.Dataset, ids: list, found: Groups) -> tuple:
    """Replaces the stored groups with ``found`` and saves both views."""
    for field, ftype in ((GROUP_FIELD, fo.StringField), (DIST_FIELD, fo.FloatField)):
        if dataset.has_sample_field(field):
            dataset.exists(field).clear_sample_field(field)
        else:
            dataset.add_sample_field(field, ftype)
    members = np.nonzero(found.rep >= 0)[0]
    member_ids = [ids[k] for k in members]
    dataset.set_values(
        GROUP_FIELD, dict(zip(member_ids, (ids[r] for r in found.rep[members]))), key_field="id"
    )
    dataset.set_values(
        DIST_FIELD, dict(zip(member_ids, found.dist[members].tolist())), key_field="id"
    )
    dataset.save_view(APPROX_DUP_VIEW, approx_dup_view(dataset), overwrite=True)
    dataset.save_view(APPROX_DUP_GROUPS_VIEW, _grouped(approx_dup_view(dataset)), overwrite=True)
    return len(members), int((found.rep[members] == members).sum())


def approx_dup_view(dataset: fo.Dataset) -> fo.DatasetView:
    """Grouped samples, ordered by group, representative first, then by
    distance. A match and a sort: constant size at any dataset size."""
    is_member = F("_id").to_string() != F(GROUP_FIELD)
    return dataset.exists(GROUP_FIELD).sort_by(
        [(GROUP_FIELD, 1), (is_member, 1), (DIST_FIELD, 1)]
    )


def _grouped(view: fo.DatasetView) -> fo.DatasetView:
    return view.group_by(GROUP_FIELD, order_by=DIST_FIELD)


def load_approx_dup_view(dataset: fo.Dataset) -> fo.DatasetView:
    """The saved ``approx_dup_view``.

    Raises:
        ValueError: if find has not been run
    """
    return groups.load_result_view(dataset, APPROX_DUP_VIEW, FIND_LABEL)


def approx_dup_groups_view(dataset: fo.Dataset) -> fo.DatasetView:
    """The saved ``approx_dup_groups_view``: dynamic groups for the App."""
    return groups.load_result_view(dataset, APPROX_DUP_GROUPS_VIEW, FIND_LABEL)


def count_to_delete(dataset: fo.Dataset, keep_representative: bool) -> int:
    """How many samples a remove (or a deduplicate) would delete now."""
    view = load_approx_dup_view(dataset)
    return groups.count_to_delete(view, GROUP_FIELD, keep_representative)


def delete_duplicates(dataset: fo.Dataset, keep_representative: bool) -> int:
    """Deletes every grouped sample, or all but each group's representative,
    in one bulk delete.

    Returns:
        the number of samples deleted
    """
    view = load_approx_dup_view(dataset)
    return groups.delete_duplicates(
        dataset, view, GROUP_FIELD, (GROUP_FIELD, DIST_FIELD), keep_representative
    )
