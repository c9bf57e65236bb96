"""The "Dedup: Review duplicates" panel in the real App (headless Chromium):
opened from the operator browser, stepping through groups with buttons and
the keyboard, keep all, keep this one, apply; images served by the App's
/media route. Fixtures: app_support.py. Screenshots: docs/review-*.png with
DEDUP_SCREENSHOTS_DIR=docs.
"""

import os

from playwright.sync_api import expect

from app_support import (  # noqa: F401  (fixtures)
    app_dataset,
    app_url,
    browser,
    open_palette,
    page,
    shoot,
)
from image_dedup import exact_dups, review, review_groups, review_marks
from test_review import store_approx_groups

LABEL = "Dedup: Review duplicates"


def _find(dataset):
    """Runs the exact find, and stores the approximate groups as the
    approximate find does: the pairs and distances of app_support's photos
    and pixel index, written without a search."""
    exact_dups.find_exact_duplicates(dataset)
    ids = dict(zip((os.path.basename(p) for p in dataset.values("filepath")), dataset.values("id")))
    near = {"astronaut.jpg": ("astronaut_copy.jpg", 0.0), "coffee.jpg": ("coffee_copy.jpg", 0.0),
            "rocket.jpg": ("rocket_resized.jpg", 0.0021), "chelsea.jpg": ("chelsea_cropped.jpg", 0.1834)}
    store_approx_groups(dataset, {ids[rep]: {ids[member]: d} for rep, (member, d) in near.items()})


def _panel(page):
    return page.locator("[data-cy=panel-container], .panel-container").filter(has_text="Group ").last


def summary(page):
    return page.get_by_text("left to review", exact=False).first


def open_review(page):
    open_palette(page, "Review duplicates").get_by_text(LABEL, exact=True).click()
    expect(summary(page)).to_be_visible()


def images_loaded(page) -> list:
    """naturalWidth of each member image (0 if it did not load)."""
    images = page.locator("img[src^='/media?filepath=']")
    expect(images.first).to_be_visible()
    return images.evaluate_all(
        "imgs => Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth, () => 0)))"
    )


def test_review_panel_steps_through_groups_keeps_and_applies(app_dataset, page, shoot):
    _find(app_dataset)
    review_groups.forget_orders()
    page.reload(wait_until="load")
    page.locator("[data-cy=fo-grid] [data-cy=looker]").first.wait_for()
    open_review(page)
    order = review_groups.group_order(app_dataset, "approx")
    assert len(order) == 4
    expect(summary(page)).to_contain_text("Group 1 of 4")
    expect(summary(page)).to_contain_text("4 left to review")
    # the most doubtful group first: the cropped cat, 0.18 from its original
    first = review_groups.load_group(app_dataset, "approx", order.keys[0])
    assert {os.path.basename(m.filepath) for m in first.members} == {"chelsea.jpg", "chelsea_cropped.jpg"}
    expect(page.get_by_text("chelsea_cropped.jpg").first).to_be_visible()
    widths = images_loaded(page)
    assert len(widths) == 2 and min(widths) > 0
    shoot(page, "review-01-panel")

    page.get_by_role("button", name="Next", exact=True).click()
    expect(summary(page)).to_contain_text("Group 2 of 4")
    # keyboard: the group slider steps with the arrow keys (the App re-renders
    # the slider after each step, which loses the focus: it is focused again each time)
    slider = page.get_by_role("slider")
    expect(slider).to_have_attribute("aria-valuenow", "2")  # the slider of the new position
    slider.focus()
    page.keyboard.press("ArrowRight")
    expect(summary(page)).to_contain_text("Group 3 of 4")
    expect(slider).to_have_attribute("aria-valuenow", "3")
    slider.focus()
    page.keyboard.press("ArrowLeft")
    expect(summary(page)).to_contain_text("Group 2 of 4")
    second = review_groups.load_group(app_dataset, "approx", order.keys[1])

    # keep all: not duplicates, remembered on the samples
    page.get_by_role("button", name="Keep all (not duplicates)").click()
    expect(summary(page)).to_contain_text("1 reviewed")
    assert review_marks.protected_ids(app_dataset) == set(second.ids)
    assert review_marks.kept_apart_mask(app_dataset, [second.ids[0]], [second.ids[1]]).all()

    # keep this one: on the first group's copy; its original is marked to delete
    page.get_by_role("button", name="Previous", exact=True).click()
    expect(summary(page)).to_contain_text("Group 1 of 4")
    copy = next(m for m in first.members if not m.is_representative)
    buttons = page.get_by_role("button", name="Keep this one")
    expect(buttons).to_have_count(2)
    buttons.nth([m.id for m in first.members].index(copy.id)).click()
    expect(summary(page)).to_contain_text("1 samples marked to delete")
    expect(summary(page)).to_contain_text("2 reviewed")
    shoot(page, "review-02-keep-this-one")

    # apply: one bulk delete after a confirmation
    page.get_by_role("button", name="Apply: delete 1 marked").click()
    expect(page.get_by_text("Delete the 1 samples marked to delete?")).to_be_visible()
    shoot(page, "review-03-apply-confirmation")
    num_samples = len(app_dataset)
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text("deleted 1 samples")).to_be_visible()
    app_dataset.reload()
    assert len(app_dataset) == num_samples - 1
    assert copy.id in app_dataset.values("id")  # the one kept
    assert review.count_marked_to_delete(app_dataset) == 0

    # the other results of the dataset are a choice at the top
    page.get_by_role("combobox").filter(has_text="Approximate duplicates").click()
    page.get_by_role("option", name="Exact duplicates").click()
    expect(summary(page)).to_contain_text("Group 1 of 2")
    assert min(images_loaded(page)) > 0
    shoot(page, "review-04-exact")
