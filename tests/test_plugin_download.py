"""The install path: `fiftyone plugins download <archive url>` into an empty
plugins directory, then `fiftyone operators list` and `fiftyone plugins requirements`, with the
venv's CLI.

The archive is built like a GitHub zipball (one top-level folder) from the
tracked files of the working tree, so uncommitted edits are what gets
installed, and served from 127.0.0.1 only while the download runs.
"""

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import zipfile
from contextlib import contextmanager

from app_support import OPERATORS
from database import PLUGIN, ROOT

FIFTYONE = os.path.join(os.path.dirname(sys.executable), "fiftyone")


def zip_repository(path):
    """Zips the working-tree copies of the tracked files under ``image-dedup-main/``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in filter(None, listed.split("\0")):
            if os.path.isfile(os.path.join(ROOT, name)):  # tracked files deleted since: skip
                archive.write(os.path.join(ROOT, name), f"image-dedup-main/{name}")


@contextmanager
def serve(folder):
    """Serves ``folder`` over HTTP on 127.0.0.1 until the block exits."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def fiftyone(*args, env):
    done = subprocess.run([FIFTYONE, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"fiftyone {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_download_from_an_archive_url_installs_the_eight_operators(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    zip_repository(served / "image-dedup.zip")
    plugins_dir = tmp_path / "plugins"
    plugins_dir.mkdir()
    env = {**os.environ, "FIFTYONE_PLUGINS_DIR": str(plugins_dir)}

    with serve(served) as url:
        fiftyone("plugins", "download", f"{url}/image-dedup.zip", env=env)

    assert (plugins_dir / PLUGIN / "fiftyone.yml").is_file()
    listed = fiftyone("operators", "list", env=env)
    assert set(re.findall(rf"{PLUGIN}/\w+", listed)) == {f"{PLUGIN}/{name}" for name in OPERATORS}
    assert "blake3" in fiftyone("plugins", "requirements", PLUGIN, "--print", env=env)
    fiftyone("plugins", "requirements", PLUGIN, "--ensure", "--error-level", "0", env=env)
