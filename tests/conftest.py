"""Test setup: a private throwaway mongod, the plugin on FIFTYONE_PLUGINS_DIR,
and real image files written per test.

The environment must be set before fiftyone is imported: without a database
URI, FiftyOne would attach to any FiftyOne database already running here.
"""

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = "@fo-dedup/image-dedup"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_private_mongod() -> str:
    package_dir = os.path.dirname(importlib.util.find_spec("fiftyone").origin)
    mongod = os.path.join(package_dir, "db", "bin", "mongod")
    dbpath = tempfile.mkdtemp(prefix="dedup-test-db-")
    port = _free_port()
    proc = subprocess.Popen(
        [mongod, "--dbpath", dbpath, "--port", str(port), "--bind_ip", "127.0.0.1",
         "--nounixsocket", "--logpath", os.path.join(dbpath, "mongod.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def stop():
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(dbpath, ignore_errors=True)

    atexit.register(stop)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return f"mongodb://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"mongod did not start; see {dbpath}/mongod.log")


if "FIFTYONE_DATABASE_URI" not in os.environ:
    os.environ["FIFTYONE_DATABASE_URI"] = _start_private_mongod()
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
os.environ["FIFTYONE_PLUGINS_DIR"] = ROOT
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
os.environ.setdefault("FIFTYONE_DEDUP_CACHE_DIR", tempfile.mkdtemp(prefix="dedup-test-cache-"))


def _import_plugin_package(name: str = "image_dedup"):
    """Imports the repository root as a package, as FiftyOne does, so the
    library modules can be tested directly (they import each other relatively)."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_import_plugin_package()

import fiftyone as fo  # noqa: E402


def write_image(path, seed: int, size=(64, 48)) -> str:
    """Writes a distinct random RGB image and returns its path."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


def copy_file(src, dst) -> str:
    shutil.copyfile(src, dst)
    return str(dst)


@pytest.fixture
def dataset():
    ds = fo.Dataset()
    yield ds
    ds.delete()
