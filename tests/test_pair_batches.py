"""The schedule of many image comparisons (pair_batches.py): which images
are decoded for each batch of pairs and which stay decoded between batches."""

import random

from image_dedup import pair_batches  # noqa: E402  (tests/conftest.py imports the plugin)


def replay(pairs: list, max_images: int, batch_images: int) -> tuple:
    """Runs the schedule as verify_pairs does; returns the images decoded,
    in order, and the most held at once. Fails if a batch's images are not
    all held when it runs."""
    paths_a, paths_b = [a for a, _ in pairs], [b for _, b in pairs]
    order = pair_batches.local_order(paths_a, paths_b)
    held, decoded, most = set(), [], 0
    for run, dropped in pair_batches.schedule(order, paths_a, paths_b, max_images, batch_images):
        assert set(dropped) <= held
        held -= set(dropped)
        need = {paths_a[k] for k in run} | {paths_b[k] for k in run}
        decoded += sorted(need - held)
        held |= need
        most = max(most, len(held))
    return decoded, most


def test_every_pair_is_scheduled_once():
    pairs = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "e"), ("a", "e")]
    order = pair_batches.local_order([a for a, _ in pairs], [b for _, b in pairs])
    runs = [run for run, _ in pair_batches.schedule(order, *zip(*pairs), 2, 2)]
    assert sorted(k for run in runs for k in run) == list(range(len(pairs)))


def test_the_image_needed_sooner_stays_decoded():
    # room for 3: before (c, d), one of a and b must go; a is needed next, b last
    pairs = [("a", "b"), ("c", "d"), ("a", "c"), ("b", "d")]
    paths_a, paths_b = [a for a, _ in pairs], [b for _, b in pairs]
    plan = list(pair_batches.schedule(list(range(4)), paths_a, paths_b, 3, 2))
    assert [dropped for _, dropped in plan] == [[], ["b"], [], ["a", "c"]]


def test_images_stay_decoded_across_batches_within_the_bound():
    rng = random.Random(0)
    images = [f"img{k}" for k in range(200)]
    pairs = [(rng.choice(images), rng.choice(images)) for _ in range(1500)]
    pairs = [(a, b) for a, b in pairs if a != b]
    for max_images, batch_images in ((40, 10), (40, 40), (8, 2)):
        decoded, most = replay(pairs, max_images, batch_images)
        assert most <= max_images
        assert set(decoded) == {p for pair in pairs for p in pair}
    kept, _ = replay(pairs, 40, 10)
    afresh, _ = replay(pairs, 10, 10)  # no room to keep: every batch decodes all its images
    assert len(kept) < len(afresh)
    everything, _ = replay(pairs, 200, 10)
    assert len(everything) == 200  # room for all: each image decoded once
