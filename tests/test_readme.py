"""The README's Python code runs as written, after the quick start.

Every ```python block of README.md is executed, in README order and in one
namespace (as a reader pasting them into one session would), against the demo
dataset: ``scripts/demo.py`` builds "dedup-demo" and runs its workflows, as
``./run.sh demo --keep`` leaves it. The README is read at test time, so this
checks the README that is committed; ``DEDUP_README=<path>`` checks another
file instead.

``fo.launch_app`` starts the real App server (on a free port; ``BROWSER``
set to ``true``, so that no browser window is opened); what the App shows is
checked by the browser tests.
"""

import importlib.util
import os
import re
import traceback
import urllib.request

import pytest

import database  # noqa: F401  (a private database before fiftyone is imported)
import fiftyone as fo
from database import ROOT, free_port

README = os.environ.get("DEDUP_README", os.path.join(ROOT, "README.md"))
BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def python_blocks(text: str) -> list:
    """(first code line number, code) of every ```python block."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def section(text: str, title: str) -> str:
    """The text of the ``## title`` section, up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def load_demo():
    spec = importlib.util.spec_from_file_location(
        "dedup_demo", os.path.join(ROOT, "scripts", "demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo_dataset(tmp_path, monkeypatch):
    before = set(fo.list_datasets())
    demo = load_demo()
    dataset = demo.build_dataset(str(tmp_path / "images"), persistent=True)
    demo.run_workflows(dataset)
    monkeypatch.setenv("BROWSER", "true")  # webbrowser runs `true`: no window, no error
    monkeypatch.setattr(fo.config, "default_app_address", "127.0.0.1")
    monkeypatch.setattr(fo.config, "default_app_port", free_port())
    yield dataset
    fo.close_app()
    for name in set(fo.list_datasets()) - before:  # the demo's and any the README made
        fo.delete_dataset(name)


def test_python_section_says_how_the_plugin_is_found():
    text = section(open(README, encoding="utf-8").read(), "Python")
    assert text, f"{README} has no '## Python' section"
    found = "FIFTYONE_PLUGINS_DIR" in text or "fiftyone plugins download" in text
    assert found, "the Python section does not say how FiftyOne finds the plugin " \
        "(FIFTYONE_PLUGINS_DIR or `fiftyone plugins download`)"


def test_every_python_block_runs_on_the_demo_dataset(demo_dataset):
    text = open(README, encoding="utf-8").read()
    blocks = python_blocks(text)
    assert blocks, f"no ```python block in {README}"
    namespace = {"__name__": "__readme__"}
    failures = []
    for line, code in blocks:
        try:
            exec(compile(code, f"{os.path.basename(README)}:{line}", "exec"), namespace)
        except Exception:  # noqa: BLE001  (every block's error is reported)
            last = traceback.format_exc().strip().splitlines()
            failures.append(f"block at line {line}: {last[-1]}\n" + "\n".join(last[-6:]))
    assert not failures, f"{len(failures)} of {len(blocks)} README blocks failed:\n\n" + \
        "\n\n".join(failures)
    with urllib.request.urlopen(namespace["session"].url, timeout=30) as response:
        assert response.status == 200  # the App the README launched is up
