"""Helpers the tests share: image files, file names of a view, and running
the plugin's operators as the App and scripts do (execution through
``execute_operator``, form resolution through the same ``resolve_type``
request the App sends while the user types)."""

import asyncio
import os
import shutil

import numpy as np
from PIL import Image

import database  # noqa: F401  (a private database before fiftyone is imported)
import fiftyone.operators as foo
import fiftyone.operators.executor as foe
from database import PLUGIN


def write_image(path, seed: int, size=(64, 48)) -> str:
    """Writes a distinct random RGB image and returns its path."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


def copy_file(src, dst) -> str:
    shutil.copyfile(src, dst)
    return str(dst)


def files(view) -> list:
    """The sorted file names of a view's samples."""
    return sorted(os.path.basename(p) for p in view.values("filepath"))


def run(name: str, dataset=None, view=None, selected=None, **params):
    """Executes ``@fo-dedup/image-dedup/<name>`` and returns the result."""
    ctx = dict(dataset=dataset, view=view, selected=selected or [], params=params)
    return foo.execute_operator(f"{PLUGIN}/{name}", ctx={k: v for k, v in ctx.items() if v is not None})


def form(name: str, dataset, view=None, selected=None, **params) -> dict:
    """The operator's input form for ``params``, as JSON: {input name: property}."""
    request = dict(dataset_name=dataset.name, params=params, selected=selected or [])
    if view is not None:
        request["view"] = view._serialize()
    uri = f"{PLUGIN}/{name}"
    prop = asyncio.run(foe.resolve_type(foo.OperatorRegistry(), uri, request))
    return prop.to_json()["type"]["properties"]


def threshold_field(properties: dict) -> dict:
    """The approximate form's threshold property (its name follows its default)."""
    (name,) = [n for n in properties if n.startswith("threshold_value")]
    return properties[name]


def labels(properties: dict) -> list:
    """The labels of the form's notices and warnings."""
    return [p["view"].get("label") for p in properties.values() if p["view"].get("label")]


def blocking(properties: dict) -> list:
    """The names of the inputs that keep the form from executing."""
    return [name for name, p in properties.items() if p.get("invalid")]


def near_embeddings() -> np.ndarray:
    """Ten 16-d embeddings: 0-3 and 7-9 distinct (orthogonal), 4 and 5 near 0,
    6 near 1."""
    emb = np.eye(16)[:10] * 10.0
    rng = np.random.default_rng(0)
    for copy, original in ((4, 0), (5, 0), (6, 1)):
        emb[copy] = emb[original] + rng.normal(scale=0.3, size=16)
    return emb


def clustered_embeddings(n=1200, dim=32, seed=0) -> np.ndarray:
    """Clusters of 1-6 points around random centers, with varied spread."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, size=n)
    labels = np.repeat(np.arange(n), sizes)[:n]
    centers = rng.normal(size=(n, dim))
    spread = rng.uniform(0.02, 0.4, size=n)[labels, None]
    emb = centers[labels] + spread * rng.normal(size=(n, dim))
    return emb[rng.permutation(n)]


def pair_set(pairs) -> set:
    """The ``(i, j)`` pairs of a :class:`neighbors.Pairs`."""
    return set(zip(pairs.i.tolist(), pairs.j.tolist()))


def deleted(count: int) -> dict:
    """A delete operator's output when it deleted ``count`` samples and found
    no file changed since the find."""
    return {"num_deleted": count, "num_skipped": 0, "skipped_paths": []}
