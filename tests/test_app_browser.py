"""The plugin in the real App, as a user drives it: the operator browser
(backtick key), forms, output panels, the grouped grid, the saved views.

Headless Chromium (Debian's) via Playwright, against the App server on
127.0.0.1. Fixtures and the photo dataset: app_support.py. To refresh the
README's screenshots: DEDUP_SCREENSHOTS_DIR=docs ./run.sh test tests/test_app_browser.py
"""

import io
import re

import numpy as np
from PIL import Image
from playwright.sync_api import expect

from app_support import (  # noqa: F401  (fixtures)
    EXACT_PAIRS,
    NEAR_PAIRS,
    OPERATORS,
    app_dataset,
    app_url,
    browser,
    close_output,
    execute_button,
    group_members,
    open_palette,
    output_value,
    page,
    prompt,
    run_from_palette,
    shoot,
)


def label(name):
    return OPERATORS[name][0]


def entry_counts(page):
    return page.locator("[data-cy=entry-counts]")


def displayed_groups(page, num_groups):
    """Opens each group of the grid: [frozenset(file names)], in grid order."""
    groups = []
    for tile in range(num_groups):
        groups.append(frozenset(group_members(page, tile)))
        close_sample(page)
    return groups


def as_sets(pairs):
    return {frozenset(pair) for pair in pairs}


def close_sample(page):
    page.mouse.click(5, 400)  # outside the expanded sample
    expect(page.locator("[data-cy=modal]")).to_be_hidden()


def open_saved_views(page, *names):
    page.locator("[data-cy=saved-views-selection]").click()
    for name in names:
        expect(page.get_by_role("option", name=name, exact=True)).to_be_visible()


def test_browser_lists_the_operators_with_labels_and_icons(page, shoot):
    operators_browser = open_palette(page, "dedup")
    for text, icon in OPERATORS.values():
        entry = operators_browser.get_by_text(text, exact=True)
        expect(entry).to_be_visible()
        img = entry.locator("xpath=..").locator("img")
        expect(img).to_have_attribute("src", re.compile(rf"/assets/{re.escape(icon)}$"))
        # decode() rejects if the file did not load or is not an image
        assert img.evaluate("i => i.decode().then(() => i.naturalWidth)") > 0
    expect(operators_browser.get_by_text(re.compile(r"^Dedup: "))).to_have_count(len(OPERATORS))
    shoot(page, "app-01-operator-browser")


def rgb(css: str) -> np.ndarray:
    return np.array([int(v) for v in re.findall(r"\d+", css)[:3]])


def icon_contrast(row) -> float:
    """The share of the row's icon pixels that stand out from the row's
    background (0 when the icon is the background's colour)."""
    icon = row.locator("img")
    expect(icon).to_be_visible()  # present, not hidden, of non-zero size
    icon.evaluate("i => i.decode()")  # loaded and drawn
    background = rgb(row.evaluate("e => getComputedStyle(e).backgroundColor"))
    pixels = np.asarray(Image.open(io.BytesIO(icon.screenshot())).convert("RGB")).reshape(-1, 3)
    return float((np.abs(pixels.astype(int) - background).sum(axis=1) > 150).mean())


def test_icons_stand_out_on_the_highlighted_palette_row(page, shoot):
    rows = open_palette(page, "dedup").locator("img").locator("xpath=../..")
    expect(rows).to_have_count(len(OPERATORS))
    assert all("Find" in rows.nth(k).inner_text() for k in (0, 1))  # the first step comes first
    plain = rows.nth(1).evaluate("e => getComputedStyle(e).backgroundColor")
    for k in range(len(OPERATORS)):
        if k:
            page.keyboard.press("ArrowDown")  # the first row starts highlighted
        row = rows.nth(k)
        expect(row).not_to_have_css("background-color", plain)
        assert icon_contrast(row) > 0.05, row.inner_text()
        if k == 1:
            shoot(page, "app-11-palette-highlighted-row")
    rows.nth(0).hover()  # a hovered row is highlighted too
    assert icon_contrast(rows.nth(0)) > 0.05


def test_exact_duplicates_found_then_displayed_as_groups(page, shoot):
    run_from_palette(page, label("find_exact_duplicate_images"))
    execute_button(page)
    shoot(page, "app-02-exact-find-form")
    execute_button(page).click()
    expect(output_value(page, "Images with exact duplicates")).to_have_text("4")
    expect(output_value(page, "Duplicates deduplication would remove")).to_have_text("2")
    expect(output_value(page, "Unreadable files (skipped)")).to_have_text("0")
    shoot(page, "app-03-exact-find-result")
    close_output(page)

    run_from_palette(page, label("display_exact_duplicate_groups"))
    expect(entry_counts(page)).to_have_text("2 groups")
    expect(page.locator("[data-cy=view-bar]")).to_contain_text("filehash")  # group_by stage
    shoot(page, "app-04-exact-groups")
    assert set(displayed_groups(page, 2)) == as_sets(EXACT_PAIRS)

    open_saved_views(page, "exact_dup_view")
    shoot(page, "app-05-exact-saved-view")
    page.get_by_role("option", name="exact_dup_view", exact=True).click()
    expect(entry_counts(page)).to_have_text("4 samples")


def test_approximate_duplicates_found_then_displayed_as_groups(page, shoot):
    run_from_palette(page, label("find_approximate_duplicate_images"))
    form = prompt(page)
    index = form.locator(".MuiGrid-item", has_text="Similarity index").get_by_role("combobox")
    expect(index).to_have_text("noise")  # listed first; it would find no duplicates
    index.click()
    page.get_by_role("option", name="pixels", exact=True).click()
    expect(index).to_have_text("pixels")
    threshold = form.locator(".MuiGrid-item", has_text="Images closer than this")
    expect(threshold.locator("input[type=number]")).to_have_value("0.3")  # the pixel index's default
    threshold.locator("input[type=number]").fill("0.4")
    execute_button(page)
    index.evaluate("e => e.scrollIntoView({block: 'start'})")  # show the histogram too
    shoot(page, "app-06-approx-find-form")
    execute_button(page).click()
    expect(output_value(page, "Images in near-duplicate groups")).to_have_text("8")
    expect(output_value(page, "Groups")).to_have_text("4")
    expect(output_value(page, "Distance threshold used")).to_have_text("0.4")
    expect(output_value(page, "Saved view of the result")).to_have_text("approx_dup_view")
    expect(output_value(page, "Next")).to_contain_text("Dedup: Review duplicates")
    shoot(page, "app-07-approx-find-result")
    close_output(page)

    run_from_palette(page, label("display_approximate_duplicate_groups"))
    expect(entry_counts(page)).to_have_text("4 groups")
    shoot(page, "app-08-approx-groups")
    groups = displayed_groups(page, 4)
    assert set(groups) == as_sets(EXACT_PAIRS | NEAR_PAIRS)
    group_members(page, groups.index(frozenset(("chelsea.jpg", "chelsea_cropped.jpg"))))
    shoot(page, "app-09-approx-group-opened")
    close_sample(page)

    open_saved_views(page, "approx_dup_view", "approx_dup_groups_view")
    shoot(page, "app-10-approx-saved-views")
    page.get_by_role("option", name="approx_dup_view", exact=True).click()
    expect(entry_counts(page)).to_have_text("8 samples")
