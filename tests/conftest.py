"""Fixtures the tests share. :mod:`database` gives every run a private
mongod and imports the plugin; :mod:`support` holds the helpers."""

import pytest

import database  # noqa: F401  (must come before fiftyone)
import fiftyone as fo
import fiftyone.brain as fob
from support import near_embeddings, write_image


@pytest.fixture
def dataset():
    ds = fo.Dataset()
    yield ds
    ds.delete()


@pytest.fixture
def near_dataset(dataset, tmp_path):
    """Ten images (img0-img9) in an sklearn index "sim" of
    :func:`support.near_embeddings`: 4, 5 near 0; 6 near 1. img0-img2 are
    tagged "test", the others "train"."""
    paths = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(10)]
    dataset.add_samples([fo.Sample(filepath=p, tags=["test"] if i < 3 else ["train"])
                         for i, p in enumerate(paths)])
    fob.compute_similarity(dataset, embeddings=near_embeddings(), backend="sklearn", brain_key="sim")
    return dataset
