"""Fixtures and helpers for driving the plugin in the real FiftyOne App.

A persistent dataset of real photos (scikit-image's bundled ones) with exact
and near copies, the App server as a subprocess on 127.0.0.1, and Debian's
Chromium driven by Playwright. The server inherits this process's
environment, set by database.py: FIFTYONE_DATABASE_URI (the private mongod)
and FIFTYONE_PLUGINS_DIR (the repository).

Set DEDUP_SCREENSHOTS_DIR=docs to refresh the committed screenshots; by
default they go to a temporary directory.
"""

import io
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import skimage.data
from PIL import Image
from playwright.sync_api import expect, sync_playwright

import fiftyone as fo
import fiftyone.brain as fob
from database import free_port
from image_dedup import pixel_embeddings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 960}
TIMEOUT_MS = 60_000
DATASET = "dedup-app-test"
expect.set_options(timeout=TIMEOUT_MS)

# operator name: (label in the App, icon file in assets/)
OPERATORS = {
    "find_exact_duplicate_images": ("Dedup: Find exact duplicates", "find.svg"),
    "display_exact_duplicate_groups": ("Dedup: Display exact duplicates", "groups.svg"),
    "remove_all_exact_duplicates": ("Dedup: Remove all exact duplicates", "delete.svg"),
    "deduplicate_exact_duplicates": ("Dedup: Deduplicate exact duplicates", "keep-one.svg"),
    "find_approximate_duplicate_images": ("Dedup: Find approximate duplicates", "approx.svg"),
    "display_approximate_duplicate_groups": ("Dedup: Display approximate duplicates", "groups.svg"),
    "remove_all_approximate_duplicates": ("Dedup: Remove all approximate duplicates", "delete.svg"),
    "deduplicate_approximate_duplicates": ("Dedup: Deduplicate approximate duplicates", "keep-one.svg"),
    "open_review_panel": ("Dedup: Review duplicates", "groups.svg"),
}

PHOTOS = ("astronaut", "coffee", "rocket", "chelsea", "camera", "coins",
          "hubble_deep_field", "immunohistochemistry")
EXACT_PAIRS = {("astronaut.jpg", "astronaut_copy.jpg"), ("coffee.jpg", "coffee_copy.jpg")}
# pixel-embedding cosine distances to the original: 0.00 and 0.18; between
# different photos: 0.76 or more
NEAR_PAIRS = {("rocket.jpg", "rocket_resized.jpg"), ("chelsea.jpg", "chelsea_cropped.jpg")}


def write_photos(folder) -> list:
    """Writes the photos, then byte-identical copies, then edited copies."""
    paths = []
    for name in PHOTOS:
        path = os.path.join(folder, f"{name}.jpg")
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(path, quality=90)
        paths.append(path)
    for original, copy in sorted(EXACT_PAIRS):
        paths.append(shutil.copyfile(os.path.join(folder, original), os.path.join(folder, copy)))
    with Image.open(os.path.join(folder, "rocket.jpg")) as image:
        w, h = image.size
        image.resize((w // 2, h // 2)).save(os.path.join(folder, "rocket_resized.jpg"), quality=40)
    with Image.open(os.path.join(folder, "chelsea.jpg")) as image:
        w, h = image.size
        image.crop((w // 20, h // 20, w - w // 20, h - h // 20)).save(
            os.path.join(folder, "chelsea_cropped.jpg"), quality=85
        )
    return paths + [os.path.join(folder, c) for _, c in sorted(NEAR_PAIRS)]


@pytest.fixture(scope="module")
def app_dataset(tmp_path_factory):
    """12 photos: 8 distinct, 2 exact copies, 2 near copies. Two similarity
    indexes: "noise" (random embeddings, listed first in the form: it finds
    nothing) and "pixels" (pixel embeddings)."""
    paths = write_photos(tmp_path_factory.mktemp("photos"))
    dataset = fo.Dataset(DATASET, overwrite=True, persistent=True)
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    pixel_embeddings.compute_pixel_similarity(dataset, brain_key="pixels")
    noise = np.random.default_rng(0).normal(size=(len(paths), 16))
    fob.compute_similarity(dataset, embeddings=noise, backend="sklearn", brain_key="noise")
    yield dataset
    dataset.delete()


@pytest.fixture
def app_url(app_dataset, tmp_path):
    """The App server, started as a subprocess and always killed. One per
    test: the server keeps the App's state (view, open sample) across tabs."""
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "fiftyone.server.main", "--address", "127.0.0.1",
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for_server(url, server, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_for_server(url, server, log_path, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"App server exited: {log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/fiftyone", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"App server not ready after {timeout} s: {log_path.read_text()}")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh tab on the dataset, once its grid has rendered."""
    context = browser.new_context(viewport=VIEWPORT)
    # as a user who has dismissed the "FiftyOne Enterprise" popover, which
    # otherwise opens over the grid on a first visit
    context.add_init_script("localStorage.setItem('fiftyone-enterprise-tooltip-seen', 'true')")
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(f"{app_url}/datasets/{DATASET}", wait_until="load")
    tab.locator("[data-cy=fo-grid] [data-cy=looker]").first.wait_for()
    yield tab
    context.close()


@pytest.fixture(scope="module")
def shoot(tmp_path_factory):
    """``shoot(page, name)`` saves a 256-colour PNG screenshot."""
    folder = os.environ.get("DEDUP_SCREENSHOTS_DIR") or tmp_path_factory.mktemp("screenshots")
    os.makedirs(folder, exist_ok=True)

    def save(page, name):
        # no hover or focus tooltips; let menus and dialogs finish fading in
        page.mouse.move(VIEWPORT["width"] - 1, VIEWPORT["height"] - 1)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.wait_for_timeout(700)
        image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        image.quantize(256).save(os.path.join(folder, f"{name}.png"), optimize=True)

    return save


def open_palette(page, text):
    """Presses the backtick key on the grid and types into the operator browser."""
    grid = page.locator("[data-cy=fo-grid]")
    box = grid.bounding_box()
    grid.click(position={"x": 5, "y": box["height"] - 5})  # empty space below the tiles
    page.keyboard.press("`")
    page.locator("[data-cy=operators-browser-search]").wait_for()
    page.keyboard.type(text)
    return page.locator("[data-cy=operators-browser]")


def run_from_palette(page, label):
    """Opens an operator from the browser: its form, or its run if it has no inputs."""
    open_palette(page, label).get_by_text(label, exact=True).click()


def prompt(page):
    """The operator's form or output dialog."""
    return page.locator("[data-cy=operators-prompt-modal]")


def execute_button(page):
    """The form's Execute button, once the form has been resolved."""
    button = prompt(page).get_by_role("button", name="Execute")
    expect(button).to_be_enabled()
    return button


def close_output(page):
    prompt(page).get_by_role("button", name="Close").click()
    expect(prompt(page)).to_be_hidden()


def output_value(page, label):
    """The value next to ``label:`` in an operator's output panel."""
    return prompt(page).get_by_text(f"{label}:", exact=True).locator("xpath=following-sibling::p[1]")


def group_members(page, tile):
    """Opens a tile of a grouped grid; returns its samples' file names, page by page."""
    page.locator("[data-cy=fo-grid] [data-cy=looker]").nth(tile).click()
    modal = page.locator("[data-cy=modal]")
    modal.locator("[data-cy=dynamic-group-pagination-item-1]").wait_for()
    filepath = modal.locator("[data-cy=sidebar-entry-filepath]")
    paths = [filepath.get_attribute("title")]
    next_page = modal.locator("[data-cy=dynamic-group-pagination-item-2]")
    while next_page.count():
        next_page.click()
        expect(filepath).not_to_have_attribute("title", paths[-1])
        paths.append(filepath.get_attribute("title"))
        next_page = modal.locator(f"[data-cy=dynamic-group-pagination-item-{len(paths) + 1}]")
    return [os.path.basename(p) for p in paths]
