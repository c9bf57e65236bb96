"""The review library against a real database: "not duplicates" marks
(review_marks), results read through their workflows and the current find
run (review_results), review order and groups (review_groups), decisions and
the bulk apply (review)."""

import datetime
import time

import numpy as np
import pytest
from bson import ObjectId

import fiftyone as fo
from image_dedup import approx_dups, leakage, results
from image_dedup import review, review_groups, review_marks, review_results
from image_dedup.neighbors import Groups
from support import copy_file, run, write_image

APPROX = approx_dups.WORKFLOW


def find_exact(dataset, **params):
    """Runs the exact find operator, as the App does."""
    run("find_exact_duplicate_images", dataset, **params)


def store_approx_groups(dataset, groups: dict) -> None:
    """Stores approximate groups ``{rep id: {member id: dist}}`` exactly as
    the approximate find stores its search's grouping (new run, fields, views)."""
    ids = dataset.values("id")
    pos = {i: k for k, i in enumerate(ids)}
    rep, dist = np.full(len(ids), -1), np.zeros(len(ids))
    for r, members in groups.items():
        for m, d in {r: 0.0, **members}.items():
            rep[pos[m]], dist[pos[m]] = pos[r], d
    approx_dups._save_groups(dataset, ids, Groups(rep, dist, None))


def _samples(dataset, tmp_path, n, copies=()):
    """n distinct images, then byte-identical copies of the given indexes."""
    paths = [write_image(tmp_path / f"img{k}.png", seed=k) for k in range(n)]
    paths += [copy_file(paths[k], tmp_path / f"img{k}_copy{j}.png") for j, k in enumerate(copies)]
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    return dataset.values("id")


def test_kept_apart_mask_marks_only_pairs_kept_apart_together(dataset, tmp_path):
    a, b, c, d = _samples(dataset, tmp_path, 4)
    assert not review_marks.kept_apart_mask(dataset, [a], [b]).any()  # no marks at all
    review_marks.keep_apart(dataset, [a, b, c])
    review_marks.keep_apart(dataset, [c, d])
    mask = review_marks.kept_apart_mask(dataset, [a, a, b, c, a, b], [b, c, c, d, d, d])
    assert mask.tolist() == [True, True, True, True, False, False]
    assert review_marks.kept_apart_mask(dataset.view(), np.array([d]), np.array([a])).tolist() == [False]
    assert review_marks.is_protected(dataset, [a, d]).tolist() == [True, True]


def test_split_groups_exact_regroups_conflicts_approx_drops_them(dataset, tmp_path):
    a, b, c, d, e = _samples(dataset, tmp_path, 5)
    review_marks.keep_apart(dataset, [a, b])
    groups, pairs = review_marks.split_groups(dataset, [[a, b, c, d], [c, e]], keep_conflicts=True)
    assert groups == [[a, c, d], [c, e]] and pairs == 1  # b alone: no group
    review_marks.keep_apart(dataset, [c, d])
    split = review_marks.split_groups(dataset, [[a, b, c, d]], keep_conflicts=True)
    assert split.groups == [[a, c], [b, d]] and split.num_pairs_kept_apart == 2
    groups, _ = review_marks.split_groups(dataset, [[a, b, c, d]], keep_conflicts=False)
    assert groups == [[a, c]]  # the representative's part only


def test_keep_all_survives_a_rerun_of_find_and_splits_exact_groups(dataset, tmp_path):
    ids = _samples(dataset, tmp_path, 3, copies=(0, 0))  # img0 three times
    find_exact(dataset)
    group = review_groups.load_group(dataset, "exact", dataset[ids[0]].filehash)
    assert sorted(group.ids) == sorted([ids[0], ids[3], ids[4]])
    review.keep_all(dataset, review_groups.load_group(dataset, "exact", group.key))
    find_exact(dataset, rehash=True)  # a rerun keeps the marks
    assert review_marks.protected_ids(dataset) == set(group.ids)
    hashed = dataset.sort_by("created_at").exists("filehash")
    groups, pairs = review_marks.split_exact_groups(dataset, *hashed.values(["id", "filehash"]))
    assert groups == [] and pairs == 3
    # a new copy joins the first member it was not kept apart from
    new = dataset.add_sample(fo.Sample(filepath=copy_file(dataset[ids[0]].filepath, tmp_path / "new.png")))
    find_exact(dataset)
    groups, pairs = review_marks.split_exact_groups(
        dataset, *dataset.sort_by("created_at").values(["id", "filehash"]))
    assert groups == [[ids[0], new]] and pairs == 3


def test_available_results_and_order_most_doubtful_first(dataset, tmp_path):
    ids = _samples(dataset, tmp_path, 9)
    assert review_results.available_results(dataset) == []
    store_approx_groups(dataset, {ids[0]: {ids[1]: 0.05}, ids[2]: {ids[3]: 0.3, ids[4]: 0.01},
                                  ids[5]: {ids[6]: 0.2}})
    assert review_results.available_results(dataset) == ["approx"]
    order = review_groups.group_order(dataset, "approx")
    assert order.keys == [ids[2], ids[5], ids[0]]
    assert order.doubt == pytest.approx([0.3, 0.2, 0.05]) and order.sizes == [3, 2, 2]
    # with a verification score, the lowest score comes first
    dataset.add_sample_field(review_results.SCORE_FIELD, fo.FloatField)
    dataset.set_values(review_results.SCORE_FIELD, {ids[1]: 0.2, ids[6]: 0.9, ids[3]: 0.5}, key_field="id")
    order = review_groups.group_order(dataset, "approx")
    assert order.keys == [ids[0], ids[2], ids[5]]


def test_samples_merged_from_another_dataset_are_not_shown(dataset, tmp_path):
    ids = _samples(dataset, tmp_path, 4, copies=(0,))
    find_exact(dataset)
    store_approx_groups(dataset, {ids[1]: {ids[2]: 0.1}})
    other = fo.Dataset()
    try:
        (tmp_path / "other").mkdir()
        other_ids = _samples(other, tmp_path / "other", 3, copies=(0,))
        find_exact(other)
        store_approx_groups(other, {other_ids[1]: {other_ids[2]: 0.2}})
        dataset.add_collection(other)  # with other's result fields and run ids
        assert dataset.exists(APPROX.group_field).count() == 4
        assert review_groups.group_order(dataset, "approx").keys == [ids[1]]
        assert review_groups.load_group(dataset, "approx", other_ids[1]).members == []
        exact = review_groups.group_order(dataset, "exact")
        assert exact.keys == [dataset[ids[0]].filehash] and exact.sizes == [2]
        assert review_groups.load_group(dataset, "approx", ids[1]).ids == [ids[1], ids[2]]
    finally:
        other.delete()


def test_group_shows_representative_first_with_metadata(dataset, tmp_path):
    ids = _samples(dataset, tmp_path, 4)
    store_approx_groups(dataset, {ids[1]: {ids[0]: 0.1, ids[2]: 0.25}})
    group = review_groups.load_group(dataset, "approx", ids[1])
    assert group.ids == [ids[1], ids[2], ids[0]]  # representative, then farthest first
    rep = group.members[0]
    assert rep.is_representative and rep.dist == 0.0 and group.keeper == ids[1]
    assert (rep.width, rep.height) == (64, 48) and rep.size_bytes > 0
    assert [m.dist for m in group.members[1:]] == pytest.approx([0.25, 0.1])
    assert review_groups.load_group(dataset, "approx", "0" * 24).members == []


def test_leakage_groups_show_the_reference(near_dataset, tmp_path):
    ds = near_dataset
    ids = ds.values("id")  # 4 and 5 are near 0, 6 near 1; 0-2 are tagged "test"
    leakage.find_approximate_leaks(ds.match_tags("train"), ds.match_tags("test"), "sim", 0.2)
    assert review_results.available_results(ds) == ["approx_leak"]
    group = review_groups.load_group(ds, "approx_leak", ids[0])
    assert group.ids[0] == ids[0] and sorted(group.ids[1:]) == sorted([ids[4], ids[5]])
    assert group.members[0].is_reference and group.keeper == ids[0]
    # a reference that is not in the dataset (e.g. deleted since the check)
    ds.delete_samples([ids[1]])
    other = review_groups.load_group(ds, "approx_leak", ids[1])
    assert other.ids == [ids[6]] and other.missing_reference == ids[1]
    # exact leak: a train copy of a test image leaked; the original is the reference
    copy = ds.add_sample(fo.Sample(filepath=copy_file(ds[ids[2]].filepath, tmp_path / "copy.png"),
                                   tags=["train"]))
    leakage.find_exact_leaks(ds.match_tags("train"), ds.match_tags("test"))
    assert set(review_results.available_results(ds)) == {"approx_leak", "exact_leak"}
    key = review_groups.group_order(ds, "exact_leak").keys[0]
    group = review_groups.load_group(ds, "exact_leak", key)
    assert group.ids == [ids[2], copy] and group.keeper == ids[2]
    assert group.members[0].is_reference and not group.members[1].is_reference


def server_deletes() -> int:
    """Delete statements the database server has run so far (the tests'
    private mongod: nothing else deletes while a test runs)."""
    return fo.core.odm.get_db_conn().client.admin.command("serverStatus")["opcounters"]["delete"]


def test_keep_one_then_apply_deletes_in_one_bulk_call(dataset, tmp_path):
    ids = _samples(dataset, tmp_path, 7)
    store_approx_groups(dataset, {ids[0]: {ids[1]: 0.1, ids[2]: 0.2}, ids[3]: {ids[4]: 0.1},
                                  ids[5]: {ids[6]: 0.3}})
    assert review.keep_one(dataset, review_groups.load_group(dataset, "approx", ids[0]), ids[2]) == 2
    group = review_groups.load_group(dataset, "approx", ids[0])
    assert group.keeper == ids[2] and group.reviewed and sorted(group.to_delete) == sorted([ids[0], ids[1]])
    review.keep_one(dataset, review_groups.load_group(dataset, "approx", ids[3]), ids[3])
    review.keep_all(dataset, review_groups.load_group(dataset, "approx", ids[5]))
    order = review_groups.group_order(dataset, "approx")
    assert order.reviewed == {ids[0], ids[3], ids[5]}
    assert review.count_marked_to_delete(dataset) == 3
    before = server_deletes()
    assert review.apply_decisions(dataset) == 3
    assert server_deletes() - before == 1
    assert sorted(dataset.values("id")) == sorted([ids[2], ids[3], ids[5], ids[6]])
    assert review.count_marked_to_delete(dataset) == 0


def test_apply_never_deletes_the_last_member(dataset, tmp_path):
    ids = _samples(dataset, tmp_path, 6)
    store_approx_groups(dataset, {ids[0]: {ids[1]: 0.1}, ids[2]: {ids[3]: 0.1}})
    review.keep_one(dataset, review_groups.load_group(dataset, "approx", ids[0]), ids[0])
    review.keep_one(dataset, review_groups.load_group(dataset, "approx", ids[2]), ids[2])
    dataset.delete_samples([ids[0]])  # the kept sample went elsewhere
    # a cycle (1 kept for 4, 4 kept for 1) and a chain (5 -> 3 -> 2)
    field = review_marks.DELETE_FOR_FIELD
    dataset.set_values(field, {ids[4]: ids[1], ids[5]: ids[3]}, key_field="id")
    dataset.set_values(field, {ids[1]: ids[4]}, key_field="id")
    pending = review.resolve_deletes(dataset)
    assert pending.to_delete == sorted([ids[3], ids[4], ids[5]]) and pending.kept == [ids[1]]
    assert review.apply_decisions(dataset) == 3
    assert sorted(dataset.values("id")) == sorted([ids[1], ids[2]])


def test_protected_samples_are_never_deleted(dataset, tmp_path):
    ids = _samples(dataset, tmp_path, 3)
    store_approx_groups(dataset, {ids[0]: {ids[1]: 0.1, ids[2]: 0.2}})
    review_marks.keep_apart(dataset, [ids[1], "0" * 24])  # kept in another review
    group = review_groups.load_group(dataset, "approx", ids[0])
    assert review.keep_one(dataset, group, ids[0]) == 1
    assert review_marks.deletable(dataset, ids) == [ids[0], ids[2]]
    assert review.delete_others(dataset, review_groups.load_group(dataset, "approx", ids[0])) == 1
    assert sorted(dataset.values("id")) == sorted(ids[:2])


def test_tag_others_and_undo(dataset, tmp_path):
    ids = _samples(dataset, tmp_path, 3)
    store_approx_groups(dataset, {ids[0]: {ids[1]: 0.1, ids[2]: 0.2}})
    group = review_groups.load_group(dataset, "approx", ids[0])
    assert review.tag_others(dataset, group) == 2
    assert review.tag_others(dataset, group) == 2
    assert dataset.count_sample_tags() == {"duplicate": 2}
    review.keep_all(dataset, review_groups.load_group(dataset, "approx", ids[0]))
    review_marks.keep_apart(dataset, [ids[0], ids[2]], "exact", "other")  # another group's mark stays
    review.undo(dataset, review_groups.load_group(dataset, "approx", ids[0]))
    group = review_groups.load_group(dataset, "approx", ids[0])
    assert not group.reviewed and review_marks.protected_ids(dataset) == {ids[0], ids[2]}
    assert not review_marks.kept_apart_mask(dataset, [ids[0]], [ids[1]]).any()
    assert review_marks.kept_apart_mask(dataset, [ids[0]], [ids[2]]).all()


def test_100k_groups_are_ordered_from_keys_and_read_a_group_at_a_time(dataset):
    n_groups = 100_000
    rng = np.random.default_rng(0)
    # bulk-inserted sample documents (add_samples of 100,000 takes a minute
    # on 2 busy cores): the fields FiftyOne 1.22 writes for an image sample,
    # and those of an approximate find run
    results.replace_fields(dataset, ((APPROX.group_field, fo.StringField), (approx_dups.DIST_FIELD, fo.FloatField),
                                     (APPROX.run_field, fo.StringField)))
    find_run = results.new_run(dataset, APPROX)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    docs = [{"_id": ObjectId(), "filepath": f"/nonexistent/{g}.jpg", "tags": [], "metadata": None,
             "created_at": now, "last_modified_at": now, "_media_type": "image",
             "_rand": float(r), "_dataset_id": dataset._doc.id, APPROX.run_field: find_run,
             APPROX.group_field: f"{g:024x}", approx_dups.DIST_FIELD: float(d)}
            for g, (r, d) in enumerate(zip(rng.random(n_groups), rng.random(n_groups)))]
    dataset._sample_collection.insert_many(docs)
    dataset.save_view(APPROX.view_name, approx_dups.approx_dup_view(dataset, find_run))
    assert len(dataset) == n_groups
    start = time.perf_counter()
    order = review_groups.group_order(dataset, "approx")
    elapsed = time.perf_counter() - start
    assert len(order) == n_groups and elapsed < 10
    assert order.doubt == sorted(order.doubt, reverse=True)
    start = time.perf_counter()
    group = review_groups.load_group(dataset, order.result, order.keys[0], compute_metadata=False)
    assert len(group.members) == 1 and time.perf_counter() - start < 2
    again = review_groups.group_order(dataset, "approx", token=order.token)
    assert again is order  # cached
    kept = review_marks.kept_apart_mask(dataset, order.keys[:50_000], order.keys[50_000:])
    assert not kept.any()
