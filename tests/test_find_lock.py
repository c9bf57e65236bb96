"""Two finds on one dataset at once: the second is refused with a clear
message while the first runs; a find killed mid-run does not block the next.

The first find runs in another process and blocks while hashing a named
pipe (FIFO) in the dataset, until the test opens the pipe's other end.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import fiftyone as fo
import fiftyone.core.odm as foo
from support import files, run

from image_dedup import find_lock

FIND_EXACT = "find_exact_duplicate_images"
FIND_APPROX = "find_approximate_duplicate_images"


@pytest.fixture
def blocking_dataset(near_dataset, tmp_path):
    """The near dataset plus a sample whose file is a FIFO: hashing it waits
    for a writer."""
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    near_dataset.add_sample(fo.Sample(filepath=str(pipe)))
    return near_dataset, str(pipe)


def start_find(dataset) -> subprocess.Popen:
    """An exact find on ``dataset`` in another process; returns once it holds
    the lock."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import database, fiftyone as fo; from support import run;"
        f"print(run('{FIND_EXACT}', fo.load_dataset(sys.argv[2])).result)"
    )
    first = subprocess.Popen([sys.executable, "-c", code, os.path.dirname(__file__), dataset.name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    locks = foo.get_db_conn()[find_lock.COLLECTION]
    deadline = time.time() + 60
    while locks.find_one({"_id": str(dataset._doc.id)}) is None:
        assert first.poll() is None, first.communicate()
        assert time.time() < deadline, "the first find never took the lock"
        time.sleep(0.1)
    return first


def unblock(pipe: str) -> None:
    """Opens and closes the pipe's writing end: a waiting reader sees an empty
    file and goes on. Without a reader, nothing happens."""
    try:
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: no reader
        pass


@pytest.mark.parametrize("second, params", [(FIND_EXACT, {}), (FIND_APPROX, {"sim_choices": "sim"})])
def test_a_second_find_is_refused_while_one_runs(blocking_dataset, second, params):
    dataset, pipe = blocking_dataset
    first = start_find(dataset)
    guard = threading.Timer(30, unblock, [pipe])  # without a lock, the second find would wait here
    guard.start()
    try:
        with pytest.raises(fo.operators.executor.ExecutionError, match="Another duplicate find is running"):
            run(second, dataset, **params)
        assert "approx_dup_view" not in dataset.list_saved_views()  # the refused find wrote nothing
    finally:
        guard.cancel()
        unblock(pipe)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    dataset.reload()
    assert files(dataset.load_saved_view("exact_dup_view")) == []
    assert run(second, dataset, **params).result  # the lock was released


def test_a_killed_find_does_not_block_the_next(blocking_dataset):
    dataset, pipe = blocking_dataset
    first = start_find(dataset)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    dataset.delete_samples(dataset.match(fo.ViewField("filepath") == pipe))
    result = run(FIND_EXACT, dataset).result
    assert result["num_images_with_exact_dups"] == 0
    assert foo.get_db_conn()[find_lock.COLLECTION].find_one({"_id": str(dataset._doc.id)}) is None
