"""The README's Python code runs as written, after the quick start.

Every ```python block of README.md is executed, in README order and in one
namespace (as a reader pasting them into one session would), against the demo
dataset: ``scripts/demo.py`` builds "dedup-demo" and runs its workflows, as
``./run.sh demo --keep`` leaves it. The README is read at test time, so this
checks the README that is committed; ``DEDUP_README=<path>`` checks another
file instead.

Not covered here: ``fo.launch_app`` is replaced by a stand-in session (the App
itself is driven by the browser tests), so a block may assign
``session.view``.
"""

import importlib.util
import os
import re
import traceback

import pytest

import database  # noqa: F401  (a private database before fiftyone is imported)
import fiftyone as fo
from database import ROOT

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


class StandInSession:
    """What the README may do with a session: open it on a dataset or view,
    set a view (a DatasetView or None, as fiftyone's Session requires)."""

    def __init__(self, dataset=None, view=None, **kwargs):
        assert dataset is None or isinstance(dataset, (fo.Dataset, fo.DatasetView))
        self.dataset = dataset
        self.view = view
        self.url = "http://localhost:5151/"

    @property
    def view(self):
        return self._view

    @view.setter
    def view(self, view):
        if view is not None and not isinstance(view, fo.DatasetView):
            raise ValueError(f"`Session.view` must be a DatasetView or None; found {type(view)}")
        self._view = view

    def wait(self, *args, **kwargs):
        pass

    def close(self):
        pass


@pytest.fixture
def demo_dataset(tmp_path, monkeypatch):
    before = set(fo.list_datasets())
    demo = load_demo()
    dataset = demo.build_dataset(str(tmp_path / "images"), persistent=True)
    demo.run_workflows(dataset)
    monkeypatch.setattr(fo, "launch_app", StandInSession)
    yield dataset
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
