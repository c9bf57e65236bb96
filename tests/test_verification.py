"""Verification of candidate pairs on real image files: an edited copy of a
photo scores high; another shot of the scene, a burst frame, a same-layout
document and a flat image of another colour score low; mirror on and off."""

import os
import shutil
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import eval_photos  # noqa: E402

from image_dedup import nearest_rows, pair_checks, verification  # noqa: E402


def save(image: Image.Image, path, quality=90) -> str:
    image.save(path, quality=quality)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verify")
    rng = np.random.default_rng(3)
    rocket = Image.fromarray(skimage.data.rocket())
    astronaut = Image.fromarray(skimage.data.astronaut())
    left, right = (Image.fromarray(v) for v in skimage.data.stereo_motorcycle()[:2])
    f = {"rocket": save(rocket, folder / "rocket.jpg", 92)}
    edited, _ = eval_photos.edit(rocket.copy(), "jpeg", rng)
    f["rocket_edited"] = save(edited, folder / "rocket_edited.jpg", 50)
    f["rocket_mirror"] = save(ImageOps.mirror(rocket), folder / "rocket_mirror.jpg")
    f["rocket_copy"] = str(folder / "rocket_copy.jpg")
    shutil.copyfile(f["rocket"], f["rocket_copy"])
    f["astronaut"] = save(astronaut, folder / "astronaut.jpg")
    f["left"], f["right"] = save(left, folder / "left.jpg"), save(right, folder / "right.jpg")
    big = Image.fromarray(skimage.data.coffee()).resize((1200, 800))
    frames = eval_photos.burst_frames(big, rng, num=2)
    f["burst0"], f["burst1"] = (save(fr, folder / f"burst{k}.jpg") for k, fr in enumerate(frames))
    f["doc0"] = save(eval_photos.render_document(np.random.default_rng(1)), folder / "doc0.jpg")
    f["doc1"] = save(eval_photos.render_document(np.random.default_rng(2)), folder / "doc1.jpg")
    doc_copy, _ = eval_photos.edit(Image.open(f["doc0"]).convert("RGB"), "resize", rng)
    f["doc0_small"] = save(doc_copy, folder / "doc0_small.jpg", 60)
    f["red"] = save(eval_photos.flat_image((200, 30, 30), rng), folder / "red.jpg", 95)
    f["blue"] = save(eval_photos.flat_image((30, 60, 200), rng), folder / "blue.jpg", 95)
    f["red2"] = save(eval_photos.flat_image((200, 30, 30), rng), folder / "red2.jpg", 95)
    smooth = Image.fromarray(skimage.data.coffee()).filter(ImageFilter.GaussianBlur(4))
    f["smooth"] = save(smooth, folder / "smooth.jpg", 92)
    noisy, quality = eval_photos.edit(smooth, "combined_mirror", np.random.default_rng(0))
    f["smooth_noisy_mirror"] = save(noisy, folder / "smooth_noisy_mirror.jpg", quality)
    f["tiles0"] = save(tiles([(200, 220, 200), (240, 240, 220), (40, 40, 40), (180, 140, 90)]), folder / "t0.jpg")
    f["tiles1"] = save(tiles([(60, 60, 60), (230, 230, 230), (150, 200, 150), (120, 120, 200)]), folder / "t1.jpg")
    f["halves0"] = save(tiles([(205, 195, 210), (130, 35, 65)]), folder / "h0.jpg")
    f["halves1"] = save(tiles([(190, 190, 190), (140, 80, 110)]), folder / "h1.jpg")
    f["split0"] = save(split_with_blob((120, 40, 70), (250, 250, 250), 400, (100, 100)), folder / "s0.jpg")
    f["split1"] = save(split_with_blob((250, 250, 250), (118, 42, 72), 240, (300, 560)), folder / "s1.jpg")
    f["beige_half"] = save(textured_halves((150, 160, 220), (215, 205, 170)), folder / "beige_half.jpg")
    f["white_half"] = save(textured_halves((150, 160, 220), (250, 250, 250)), folder / "white_half.jpg")
    return f


def tiles(colours: list) -> Image.Image:
    """Near-flat tiles (a faint gradient each), two per row: 2 x 2 for four
    colours, side by side for two."""
    pixels = np.zeros((480, 640, 3), np.float32)
    height = 480 // (len(colours) // 2)
    ramp = np.linspace(0, 12, 320, dtype=np.float32)[None, :, None]
    for k, colour in enumerate(colours):
        y, x = (k // 2) * height, (k % 2) * 320
        pixels[y:y + height, x:x + 320] = np.float32(colour) + ramp
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def split_with_blob(left: tuple, right: tuple, split: int, blob: tuple) -> Image.Image:
    """Two near-flat colours split at column ``split``, with one faint blob
    centred at ``blob`` (row, column)."""
    pixels = np.zeros((480, 640, 3), np.float32)
    pixels[:, :split], pixels[:, split:] = left, right
    rows, cols = np.mgrid[:480, :640]
    pixels += np.linspace(0, 6, 640, dtype=np.float32)[None, :, None]
    pixels += 12 * np.exp(-((rows - blob[0]) ** 2 + (cols - blob[1]) ** 2) / (2 * 18.0**2))[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def textured_halves(left: tuple, right: tuple) -> Image.Image:
    """The camera photo's detail, faint, over two colours side by side."""
    camera = np.asarray(Image.fromarray(skimage.data.camera()).resize((640, 480)), np.float32)
    pixels = np.zeros((480, 640, 3), np.float32)
    pixels[:, :320], pixels[:, 320:] = left, right
    return Image.fromarray(np.clip(pixels + 0.4 * (camera - camera.mean())[..., None], 0, 255).astype(np.uint8))


def scores(files, pairs, **kwargs) -> dict:
    a, b = zip(*[(files[x], files[y]) for x, y in pairs])
    return dict(zip(pairs, verification.verify_pairs(list(a), list(b), **kwargs)))


def test_same_photo_edited_scores_high(files):
    got = scores(files, [("rocket", "rocket_edited"), ("rocket_edited", "rocket"),
                         ("rocket", "rocket_copy"), ("doc0", "doc0_small")])
    assert got[("rocket", "rocket_copy")] == 1.0
    for pair, score in got.items():
        assert score >= verification.DEFAULT_MIN_SCORE, (pair, score)


def test_noisy_mirrored_copy_of_a_smooth_photo_scores_high(files):
    """Noise swamps a smooth photo's fine detail: the median filter and the
    coarser band still see the same photo (0.55 before them)."""
    got = scores(files, [("smooth", "smooth_noisy_mirror")])
    assert got[("smooth", "smooth_noisy_mirror")] >= verification.DEFAULT_MIN_SCORE


def test_more_contrast_clipping_a_dark_background_to_black_scores_high(tmp_path):
    """A fundus photo's dark surround turns black pixel by pixel when its
    contrast is raised 30%: the tone check clips its prediction the same way
    and fits the change on channels clear of black and white, whichever of
    the two is the edited one (0.31 and 0.50 when only near-white cells were
    allowed for)."""
    retina = Image.fromarray(skimage.data.retina()).resize((640, 640))
    files = {"retina": save(retina, tmp_path / "retina.jpg"),
             "contrast": save(ImageEnhance.Contrast(retina).enhance(1.3), tmp_path / "contrast.jpg")}
    got = scores(files, [("retina", "contrast"), ("contrast", "retina")])
    assert all(score >= verification.DEFAULT_MIN_SCORE for score in got.values()), got


def test_same_layout_with_other_tones_scores_low(files):
    """Tile edges in the same places correlate; the tiles' tones do not follow
    one brightness/contrast change."""
    assert scores(files, [("tiles0", "tiles1")])[("tiles0", "tiles1")] < verification.DEFAULT_MIN_SCORE


def test_two_flat_halves_split_alike_score_low(files):
    """Their only detail is the one edge between the halves, in the same
    place in both; two mosaic crops of 50,000 were confirmed on that."""
    assert scores(files, [("halves0", "halves1")])[("halves0", "halves1")] < verification.DEFAULT_MIN_SCORE


def test_agreement_along_one_edge_only_is_not_confirmed(files):
    """Two mosaics of the same two colours, one mirrored and split a little
    elsewhere, each with a faint blob in another place: the blobs make their
    detail reach three grid columns, but the cells that agree lie along the
    edge alone (50,000-photo scale set: such pairs were confirmed)."""
    assert scores(files, [("split0", "split1")])[("split0", "split1")] < verification.DEFAULT_MIN_SCORE


def test_a_photo_whose_only_detail_is_one_straight_edge_is_too_flat_to_confirm(tmp_path):
    """Two near-flat tones split across the middle of a grid row, and the
    same brightened: at the coarsest band the edge's detail reaches the rows
    above and below, three in all. Any two mosaics split there agree on it
    (two different ones of 50,000 photos were confirmed so): with nothing
    else to compare, only a byte-identical copy counts."""
    def split_across(top: tuple, bottom: tuple) -> Image.Image:
        pixels = np.zeros((480, 640, 3), np.float32)
        pixels[:270], pixels[270:] = top, bottom  # row 108 of 192 at the compared size: grid row 4's middle
        pixels += np.linspace(0, 8, 640, dtype=np.float32)[None, :, None]
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))

    files = {"edge": save(split_across((40, 50, 30), (190, 180, 170)), tmp_path / "edge.jpg"),
             "brighter": save(split_across((52, 62, 42), (202, 192, 182)), tmp_path / "brighter.jpg")}
    assert scores(files, [("edge", "brighter")])[("edge", "brighter")] < verification.DEFAULT_MIN_SCORE


def test_a_cell_one_image_holds_only_noise_in_cannot_agree():
    """Two bands that share one edge (two grid rows of identical detail) and
    differ in one cell above it: flat (below its noise floor) in one, faint
    detail in the other. Noise leaves such a cell nothing to correlate, and
    any chance correlation passed its bar: it stretched the agreement to a
    third row, and different near-flat mosaics of 50,000 photos were
    confirmed on it. With it saying nothing, the agreement lies along the
    edge alone."""
    rng = np.random.default_rng(5)
    edge = rng.normal(0, 6, (48, 256)).astype(np.float32)
    x, y = np.zeros((192, 256), np.float32), np.zeros((192, 256), np.float32)
    x[48:96] = y[48:96] = edge  # grid rows 2 and 3 (cells of 24 x 32 pixels)
    y[24:48, 224:] = rng.normal(0, 1.5, (24, 32))  # the cell of row 1, column 7
    inside = np.ones_like(x)
    assert verification._matched_share(x, y, inside, noise_x=0.01, noise_y=0.01) is None
    x[24:48, :32] = y[24:48, :32] = rng.normal(0, 1.5, (24, 32))  # faint detail in both counts
    assert verification._matched_share(x, y, inside, noise_x=0.01, noise_y=0.01) == 1.0


def test_a_half_turned_white_is_not_a_brightness_change(files):
    """The same detail over a beige half in one image and a white half in
    the other: a white cell says little of a brightened copy's clipped
    tones, but it may not be brighter than the other image predicts."""
    got = scores(files, [("beige_half", "white_half"), ("white_half", "beige_half")])
    assert all(score < verification.DEFAULT_MIN_SCORE for score in got.values()), got


def test_images_too_flat_to_compare_are_never_confirmed(files):
    """Two flat images of one colour may be two failed renders, or near-flat
    crops (sky, bokeh) of different photos: only a byte-identical copy counts."""
    got = scores(files, [("red", "red2"), ("red", "blue")])
    assert all(score < verification.DEFAULT_MIN_SCORE for score in got.values()), got


def test_a_pair_with_an_image_without_detail_is_not_aligned(files):
    """A flat image has no detail to compare in any band: its pairs score 0
    before any key points are computed; a photo's pairs are aligned."""
    red, rocket = verification._Image(files["red"]), verification._Image(files["rocket"])
    smooth = verification._Image(files["smooth"])
    assert red.flat() and not rocket.flat() and not smooth.flat()
    assert verification.verify_pair(rocket, red) == 0.0
    assert verification._score_or_too_flat(rocket, red, (False, True)) == -1.0  # scale_quality.py counts these apart
    assert not red._features and not rocket._features
    verification.verify_pair(rocket, smooth)
    assert rocket._features and smooth._features


def test_other_shots_documents_and_colours_score_low(files):
    got = scores(files, [("left", "right"), ("burst0", "burst1"), ("doc0", "doc1"),
                         ("red", "blue"), ("rocket", "astronaut"), ("doc1", "doc0_small")])
    for pair, score in got.items():
        assert score < verification.DEFAULT_MIN_SCORE, (pair, score)


@pytest.mark.parametrize("scale", [0.5, 1.3, 2.0, 3.1])
def test_same_layout_documents_stay_apart_at_any_resolution(tmp_path, scale):
    """Pages of one layout reach the compared size through different JPEG
    draft scales and resize ratios as their resolution varies (a scan at
    another dpi); their small text must stay told apart at each, while a
    recompressed copy still verifies. (A resampler that blurs that text,
    such as OpenCV's INTER_AREA, confirmed up to 31 of 45 such pairs.)"""
    rng = np.random.default_rng(11)
    size = (round(600 * scale), round(780 * scale))
    pages = [eval_photos.render_document(rng).resize(size, Image.Resampling.LANCZOS) for _ in range(4)]
    files = {f"page{k}": save(page, tmp_path / f"page{k}.jpg") for k, page in enumerate(pages)}
    files["copy"] = save(pages[0], tmp_path / "copy.jpg", 50)
    apart = scores(files, [(f"page{x}", f"page{y}") for x in range(4) for y in range(x + 1, 4)])
    assert max(apart.values()) < verification.DEFAULT_MIN_SCORE, apart
    assert scores(files, [("page0", "copy")])[("page0", "copy")] >= verification.DEFAULT_MIN_SCORE


def test_mirror_on_and_off(files):
    pair = [("rocket", "rocket_mirror")]
    assert scores(files, pair)[pair[0]] >= verification.DEFAULT_MIN_SCORE
    assert scores(files, pair, mirror=False)[pair[0]] < verification.DEFAULT_MIN_SCORE


def test_scores_are_in_range_and_unreadable_is_zero(files, tmp_path):
    missing = str(tmp_path / "missing.jpg")
    got = verification.verify_pairs([files["rocket"], missing], [files["astronaut"], files["rocket"]],
                                    num_workers=1)
    assert got.shape == (2,) and got.dtype == np.float64
    assert 0.0 <= got[0] <= 1.0 and got[1] == 0.0
    assert len(verification.verify_pairs([], [])) == 0
    with pytest.raises(ValueError):
        verification.verify_pairs([files["rocket"]], [])
    assert 0 < verification.CANDIDATE_THRESHOLD < 1 and 0 < verification.DEFAULT_MIN_SCORE < 1


def test_pairs_scored_in_bounded_chunks_score_the_same(files, monkeypatch):
    pairs = [("rocket", "rocket_edited"), ("left", "right"), ("doc0", "doc0_small"),
             ("rocket", "rocket_mirror"), ("doc0", "doc1"), ("burst0", "burst1")]
    whole = scores(files, pairs)
    monkeypatch.setattr(verification, "MAX_DECODED", 3)
    assert scores(files, pairs) == whole


ROUNDS_IMAGES = ["rocket", "rocket_edited", "rocket_mirror", "rocket_copy", "astronaut", "left", "right"]
# first round, each image's nearest: (0, 3) byte-identical, (1, 4), (2, 5) and (5, 6) other photos;
# (4, 5) at 0.3 sets the scale: "close" is within 0.3 * CLOSE_SHARE = 0.02
ROUNDS_PAIRS = {(0, 3): 0.001, (1, 4): 0.005, (2, 5): 0.2, (5, 6): 0.01,
                (0, 1): 0.015, (0, 2): 0.25, (3, 6): 0.1, (4, 5): 0.3}


def check_rounds_pairs(files, **kwargs) -> dict:
    i, j = (np.array(side) for side in zip(*ROUNDS_PAIRS))
    keep, scores = pair_checks.check_candidates(i, j, np.array(list(ROUNDS_PAIRS.values())),
                                                [files[n] for n in ROUNDS_IMAGES], **kwargs)
    return {pair: (bool(kept), score) for pair, kept, score in zip(ROUNDS_PAIRS, keep, scores.tolist())}


def test_further_candidates_are_compared_for_images_with_copies(files):
    got = check_rounds_pairs(files)
    assert got[(0, 3)] == (True, 1.0)
    assert all(not got[pair][0] for pair in [(1, 4), (2, 5), (5, 6)])
    # round 2: rocket has one copy; its close candidate is compared (a page with one copy,
    # whose nearest are other pages of its layout), its far ones not yet
    assert got[(0, 1)][0]
    # round 3: rocket has two copies; its far candidate is compared too
    assert got[(0, 2)][0]
    # the identical copy has one copy and a far candidate; the others have none
    assert np.isnan(got[(3, 6)][1]) and np.isnan(got[(4, 5)][1])


def test_verification_reports_progress_round_by_round(files, monkeypatch):
    monkeypatch.setattr(verification, "MAX_DECODED", 2)  # one pair per batch
    calls = []
    check_rounds_pairs(files, progress=lambda fraction, label: calls.append((fraction, label)))
    assert [fraction for fraction, _ in calls] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert calls[0] == (0.25, "verification round 1: compared 1 of 4 image pairs")
    assert calls[-1] == (1.0, "verification round 3: compared 1 of 1 image pairs")


def test_the_first_round_is_each_images_single_nearest_candidate():
    # (1, 2) is image 1's only candidate after it, but 1 and 2 each have a nearer one
    i, j, dist = np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([0.1, 0.3, 0.05])
    assert nearest_rows.nearest_of_each(i, j, dist).tolist() == [True, False, True]
    assert nearest_rows.nearest_of_either(i, j, dist, 1).tolist() == [True, True, True]


def test_each_image_keeps_its_nearest_candidates():
    i = np.array([0, 0, 0, 1, 1, 2])
    j = np.array([1, 2, 3, 2, 3, 3])
    dist = np.array([0.1, 0.2, 0.3, 0.05, 0.4, 0.01])
    # nearest of 0: (0, 1); of 1: (1, 2); of 2 and of 3: (2, 3)
    assert pair_checks.nearest_candidates(i, j, dist, k=1).tolist() == [True, False, False, True, False, True]
    assert pair_checks.nearest_candidates(i, j, dist, k=3).all()
