"""Both find operators run as delegated operations and report progress there."""

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
import fiftyone.operators as foo
from fiftyone.operators.delegated import DelegatedOperationService
from fiftyone.operators.executor import ExecutionRunState
from database import PLUGIN
from support import copy_file, write_image


@pytest.fixture
def photos(dataset, tmp_path):
    paths = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(6)]
    paths.append(copy_file(paths[0], tmp_path / "copy.png"))
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    emb = np.eye(8)[:7]
    emb[6] = emb[0]
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    return dataset


@pytest.mark.parametrize(
    "name, params, output",
    [
        ("find_exact_duplicate_images", {}, "num_images_with_exact_dups"),
        ("find_approximate_duplicate_images", dict(sim_choices="sim", threshold_value=0.1),
         "num_images_with_approx_dups"),
    ],
)
def test_delegate_param_queues_the_run(photos, name, params, output):
    queued = foo.execute_operator(
        f"{PLUGIN}/{name}", ctx=dict(dataset=photos, params=dict(params, delegate=True))
    )
    assert queued.delegated and queued.result["run_state"] == ExecutionRunState.QUEUED
    assert "exact_dup_view" not in photos.list_saved_views()  # nothing ran yet

    service = DelegatedOperationService()
    done = service.execute_operation(service.get(queued.result["id"]))
    assert done.result[output] == 2
    operation = service.get(queued.result["id"])
    assert operation.run_state == ExecutionRunState.COMPLETED
    assert operation.status is not None and operation.status.progress == 1.0
