"""The flows a newcomer walks in the real App (issue 15): each starts from a
state made headless (a fixture listed before ``page``, so the App loads it),
then drives one form or operator from the operator browser.

Fixtures and helpers: app_support.py.
"""

import re

import pytest
from playwright.sync_api import expect

from app_support import (  # noqa: F401  (fixtures)
    app_dataset,
    app_url,
    browser,
    execute_button,
    output_value,
    page,
    prompt,
    run_from_palette,
    shoot,
)
from image_dedup import approx_dups, exact_dups, review_groups
from test_review_panel import _find, open_review, summary

FIND_APPROX = "Dedup: Find approximate duplicates"
DISPLAY_APPROX = "Dedup: Display approximate duplicates"


@pytest.fixture
def no_approx_result(app_dataset):
    if approx_dups.WORKFLOW.view_name in app_dataset.list_saved_views():
        app_dataset.delete_saved_view(approx_dups.WORKFLOW.view_name)


@pytest.fixture
def tight_approx_result(app_dataset):
    """An approximate find that grouped only the closest copies: 6 images in 3 groups."""
    result = approx_dups.find_approximate_duplicates(app_dataset, "pixels", threshold=0.01, verify=False)
    assert (result.num_images_with_approx_dups, result.num_groups) == (6, 3)


@pytest.fixture
def new_brain_key(app_dataset):
    """The brain key the form proposes for a new pixel index; deleted afterwards."""
    yield "dedup_pixels"
    if "dedup_pixels" in app_dataset.list_brain_runs():
        app_dataset.delete_brain_run("dedup_pixels")


@pytest.fixture
def exact_result(app_dataset):
    exact_dups.find_exact_duplicates(app_dataset)


def threshold_field(page):
    return prompt(page).locator(".MuiGrid-item", has_text="Images closer than this").locator("input")


def choose_pixels_index(page):
    index = prompt(page).locator(".MuiGrid-item", has_text="Similarity index").get_by_role("combobox")
    index.click()
    page.get_by_role("option", name="pixels", exact=True).click()
    expect(index).to_have_text("pixels")


def test_display_then_find_keeps_the_result_and_searches_the_dataset(tight_approx_result, page):
    run_from_palette(page, DISPLAY_APPROX)
    expect(page.locator("[data-cy=entry-counts]")).to_have_text("3 groups")
    run_from_palette(page, FIND_APPROX)
    expect(prompt(page).get_by_text(
        "This find replaces the current result: 6 images in 3 groups")).to_be_visible()
    expect(prompt(page).get_by_role("radio", name="Dataset Entire dataset")).to_be_checked()
    choose_pixels_index(page)
    threshold_field(page).fill("0.4")
    execute_button(page).click()
    # 8 images: the whole dataset was searched, not the 6 displayed
    expect(output_value(page, "Images in near-duplicate groups")).to_have_text("8")


def test_remove_all_warns_that_originals_go_too(exact_result, page):
    run_from_palette(page, "Dedup: Remove all exact duplicates")
    expect(prompt(page)).to_contain_text(
        "This permanently deletes 4 samples from the dataset: every member of every group, "
        "originals included; to keep one per group, use Deduplicate (it would delete 2)")


def test_display_before_find_is_a_one_line_notice(no_approx_result, page):
    run_from_palette(page, DISPLAY_APPROX)
    notice = page.get_by_text(re.compile(r"has no 'approx_dup_view': run 'Dedup: Find approximate"))
    expect(notice).to_be_visible()
    expect(page.get_by_text("Traceback")).to_have_count(0)
    expect(prompt(page)).to_have_count(0)  # no error dialog


def test_an_out_of_range_threshold_disables_execute(page):
    run_from_palette(page, FIND_APPROX)
    execute_button(page)
    threshold_field(page).fill("3")
    expect(prompt(page).get_by_text(re.compile("less than"))).to_be_visible()
    expect(prompt(page).get_by_role("button", name="Execute")).to_be_disabled()


def test_a_new_pixel_index_shows_its_histogram_with_the_result(new_brain_key, page, shoot):
    run_from_palette(page, FIND_APPROX)
    execute_button(page)  # the form is resolved: a change now is not lost
    prompt(page).get_by_role("radio", name=re.compile("^New index from pixels")).check()
    key = prompt(page).locator(".MuiGrid-item", has_text="Brain key of the new index").locator("input")
    expect(key).to_have_value(new_brain_key)
    execute_button(page).click()
    expect(output_value(page, "Images in near-duplicate groups")).to_be_visible()
    expect(prompt(page).locator(".js-plotly-plot")).to_be_visible()
    for title in ("Distance to the nearest other sample", "distance to nearest neighbour", "samples"):
        expect(prompt(page).locator(".js-plotly-plot").get_by_text(title, exact=True)).to_be_visible()
    shoot(page, "app-12-new-index-histogram")


@pytest.fixture
def review_result(app_dataset):
    _find(app_dataset)
    review_groups.forget_orders()


def press_when_redrawn(page, key: str) -> None:
    """Presses ``key`` once the panel has redrawn (a press while its last
    event is still being handled is dropped by the App)."""
    page.wait_for_timeout(1000)
    page.keyboard.press(key)


def test_review_panel_steps_with_space_on_the_focused_next_button(review_result, page):
    open_review(page)
    next_button = page.get_by_role("button", name="Next", exact=True)
    next_button.focus()  # as Tab does
    press_when_redrawn(page, "Space")
    expect(summary(page)).to_contain_text("Group 2 of 4")
    expect(next_button).to_be_focused()  # the redrawn panel kept the focus on Next
    press_when_redrawn(page, "Space")
    expect(summary(page)).to_contain_text("Group 3 of 4")
    press_when_redrawn(page, "Shift+Tab")  # to Previous
    press_when_redrawn(page, "Space")
    expect(summary(page)).to_contain_text("Group 2 of 4")
