"""A find queued from the operator ("Delegate execution") is run by the real
delegated-operation service, ``fiftyone delegated launch``, started as its own
process in the same environment (this run's database, FIFTYONE_PLUGINS_DIR),
as open-source FiftyOne users must run it."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import database  # noqa: F401  (a private database before fiftyone is imported)
import fiftyone as fo
import fiftyone.brain as fob
import fiftyone.operators as foo
from fiftyone.operators.delegated import DelegatedOperationService
from fiftyone.operators.executor import ExecutionRunState
from database import PLUGIN
from support import copy_file, write_image

DEADLINE = 180  # seconds for the service to start and run both finds (2 shared cores)


@pytest.fixture
def photos(tmp_path):
    """Six distinct images and a byte copy of the first, with an sklearn index
    "sim" where the copy equals its original; persistent, as a dataset another
    process works on should be."""
    paths = [write_image(tmp_path / f"img{i}.png", seed=i) for i in range(6)]
    paths.append(copy_file(paths[0], tmp_path / "copy.png"))
    dataset = fo.Dataset(persistent=True)
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    emb = np.eye(8)[:7]
    emb[6] = emb[0]
    fob.compute_similarity(dataset, embeddings=emb, backend="sklearn", brain_key="sim")
    yield dataset
    dataset.delete()


@pytest.fixture
def service(tmp_path):
    """``fiftyone delegated launch`` running; stopped with Ctrl+C (SIGINT)."""
    log_path = tmp_path / "service.log"
    cli = os.path.join(os.path.dirname(sys.executable), "fiftyone")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([cli, "delegated", "launch"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)

    def output():
        return log_path.read_text(errors="replace")

    try:
        deadline = time.time() + DEADLINE
        while "Delegated operation service running" not in output():
            assert proc.poll() is None, f"the service exited ({proc.returncode}):\n{output()}"
            assert time.time() < deadline, f"the service did not start:\n{output()}"
            time.sleep(0.2)
        yield proc, output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def wait_for(op_ids, proc, output) -> dict:
    """Polls the operations until none is queued or running; {id: operation}."""
    service = DelegatedOperationService()
    deadline = time.time() + DEADLINE
    while True:
        ops = {op_id: service.get(op_id) for op_id in op_ids}
        states = {op_id: op.run_state for op_id, op in ops.items()}
        if all(s in (ExecutionRunState.COMPLETED, ExecutionRunState.FAILED)
               for s in states.values()):
            return ops
        assert proc.poll() is None, f"the service exited ({proc.returncode}):\n{output()}"
        assert time.time() < deadline, f"still {states} after {DEADLINE} s:\n{output()}"
        time.sleep(0.5)


def test_the_delegated_service_runs_queued_finds(photos, service):
    proc, output = service
    # queued as the form's "Delegate execution" checkbox queues them
    exact = foo.execute_operator(f"{PLUGIN}/find_exact_duplicate_images",
                                 ctx=dict(dataset=photos, params=dict(delegate=True)))
    approx = foo.execute_operator(
        f"{PLUGIN}/find_approximate_duplicate_images",
        ctx=dict(dataset=photos, params=dict(sim_choices="sim", threshold_value=0.1,
                                             delegate=True)))
    for queued in (exact, approx):
        assert queued.delegated
        assert queued.result["run_state"] in (ExecutionRunState.QUEUED, ExecutionRunState.RUNNING,
                                              ExecutionRunState.COMPLETED)

    ids = {"exact": exact.result["id"], "approx": approx.result["id"]}
    ops = wait_for(list(ids.values()), proc, output)
    for name, op_id in ids.items():
        op = ops[op_id]
        error = op.run_state == ExecutionRunState.FAILED and op.result and op.result.error
        assert op.run_state == ExecutionRunState.COMPLETED, f"{name}: {error}\n{output()}"
    assert ops[ids["exact"]].result.result["num_images_with_exact_dups"] == 2
    assert ops[ids["approx"]].result.result["num_images_with_approx_dups"] == 2

    # the results are in the database, where the App reads them
    photos.reload()
    assert {"exact_dup_view", "approx_dup_view"} <= set(photos.list_saved_views())
    assert len(photos.load_saved_view("exact_dup_view")) == 2
    assert ops[ids["approx"]].status.progress == 1.0  # progress reported on the run
    assert proc.poll() is None  # the service keeps polling for more work
