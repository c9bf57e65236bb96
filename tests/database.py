"""A private, throwaway MongoDB for the tests and benchmarks, and the plugin
imported as FiftyOne imports it. Import this module before fiftyone.

The environment must be set before fiftyone is imported: without a database
URI, FiftyOne would attach to any FiftyOne database already running here.
"""

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time

from plugin_import import ROOT, import_plugin_package

PLUGIN = "@fo-dedup/image-dedup"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def throwaway_folder(prefix: str) -> str:
    """A new temp folder, removed when this process exits."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def start_private_mongod() -> str:
    """Starts FiftyOne's bundled mongod in a temp dir (stopped at exit).

    Returns:
        its URI
    """
    package_dir = os.path.dirname(importlib.util.find_spec("fiftyone").origin)
    mongod = os.path.join(package_dir, "db", "bin", "mongod")
    dbpath = throwaway_folder("dedup-test-db-")
    port = free_port()
    proc = subprocess.Popen(
        [mongod, "--dbpath", dbpath, "--port", str(port), "--bind_ip", "127.0.0.1",
         "--nounixsocket", "--logpath", os.path.join(dbpath, "mongod.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def stop():  # registered after the folder's removal, so it runs before it
        proc.terminate()
        proc.wait(timeout=30)

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
    os.environ["FIFTYONE_DATABASE_URI"] = start_private_mongod()
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
os.environ["FIFTYONE_PLUGINS_DIR"] = ROOT
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
if "FIFTYONE_DEDUP_CACHE_DIR" not in os.environ:  # the tests' subprocesses share their parent's
    os.environ["FIFTYONE_DEDUP_CACHE_DIR"] = throwaway_folder("dedup-test-cache-")
import_plugin_package()
