"""The near-duplicate evaluation set: real photographs that ship inside
installed packages, edited copies of them, and hard negatives. Nothing is
downloaded at run time (apt packages come from the Debian archive through
``apt-get``, see :func:`install_apt_photos`).

Sources:

-   Python packages (always there after ``pip install`` of the project):
    scikit-image's bundled photos (``skimage.data``, only files inside the
    wheel) and scikit-learn's two sample images;
-   Debian packages (optional, :data:`APT_PACKAGES`): ``opencv-doc``'s sample
    data (photos, stereo pairs, image sequences, a chessboard calibration
    series), and photographic wallpapers of ``lomiri-wallpapers-16.04``,
    ``lomiri-wallpapers-20.04`` and ``mate-backgrounds``.

Positives: each source photo plus one copy per edit kind (:data:`EDIT_KINDS`)
form one identity. Hard negatives, each image its own identity:
``stereo`` (two views of one scene), ``sequence`` (frames of one video or
viewpoint series), ``calibration`` (a chessboard shot in several poses),
``burst`` (crops of one big photo shifted by 15-30% of its width),
``document`` (same-layout pages with different text, rendered with DejaVu
fonts) and ``flat`` (flat or nearly flat images of different colours).

Every source photo and every scene belongs to one of two parts, ``"tune"`` or
``"heldout"``, by a fixed hash of its name.
"""

import glob
import hashlib
import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

APT_PACKAGES = ("opencv-doc", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "mate-backgrounds")
OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"
WALLPAPER_GLOBS = ("/usr/share/backgrounds/*.jpg", "/usr/share/backgrounds/mate/nature/*.jpg")
FONT_DIR = "/usr/share/fonts/truetype/dejavu"

EDIT_KINDS = (
    "exact", "resize", "jpeg", "crop", "rotate", "mirror", "brightness", "contrast",
    "noise", "watermark", "sticker", "combined", "combined_mirror",
)
DOC_EDIT_KINDS = ("doc_jpeg", "doc_resize")
HARD_NEGATIVE_KINDS = ("stereo", "sequence", "calibration", "burst", "document", "flat")
MAX_SIDE = 640  # sources are scaled to at most this many pixels per side

# scikit-image photos (chelsea and cat are one photo: cat is left out)
SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "camera", "coins", "moon", "page", "text", "brick", "grass", "gravel", "cell",
    "clock",
)
# photos that only feed burst frames (never originals: a burst frame is a
# large crop of its photo)
SKIMAGE_BURST = ("coffee", "camera")
SKLEARN_BURST = ("china",)
OPENCV_PHOTOS = (
    "apple", "baboon", "board", "building", "butterfly", "fruits", "home", "messi5",
    "orange", "smarties", "starry_night", "squirrel_cls", "chicky_512", "HappyFish",
    "ela_original",
)
OPENCV_SCENES = {  # name: (kind, files)
    "aloe": ("stereo", ("aloeL.jpg", "aloeR.jpg")),
    "tsukuba": ("stereo", ("left.jpg", "right.jpg")),
    "leuven": ("sequence", ("leuvenA.jpg", "leuvenB.jpg")),
    "graf": ("sequence", ("graf1.png", "graf3.png")),
    "aero": ("sequence", ("aero1.jpg", "aero3.jpg")),
    "basketball": ("sequence", ("basketball1.png", "basketball2.png")),
    "rubberwhale": ("sequence", ("rubberwhale1.png", "rubberwhale2.png")),
    "suzanne": ("sequence", ("Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg")),
    "calib_odd": ("calibration", tuple(f"left{k:02d}.jpg" for k in (1, 3, 5, 7, 9, 11, 13))),
    "calib_even": ("calibration", tuple(f"left{k:02d}.jpg" for k in (2, 4, 6, 8, 12, 14))),
}
NUM_BURST_WALLPAPERS = 10


def install_apt_photos(packages=APT_PACKAGES) -> bool:
    """Installs the Debian packages that carry photographs (root, apt-get).

    Returns:
        True if they are installed afterwards
    """
    if apt_photos_available():
        return True
    if shutil.which("apt-get") is None:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=False, env=env)
    return apt_photos_available()


def apt_photos_available() -> bool:
    return os.path.isdir(OPENCV_DATA) and len(_wallpapers()) >= 20


def _wallpapers() -> list:
    return sorted(p for g in WALLPAPER_GLOBS for p in glob.glob(g))


def part_of(name: str) -> str:
    """``"tune"`` or ``"heldout"``: a fixed hash of the name."""
    return "tune" if hashlib.sha1(name.encode()).digest()[0] % 2 == 0 else "heldout"


def _fit(image: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    image = ImageOps.exif_transpose(image).convert("RGB")
    scale = max_side / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)),
                             Image.Resampling.LANCZOS)
    return image


def _open_file(path: str, max_side: int = MAX_SIDE) -> Image.Image:
    with Image.open(path) as image:
        image.draft("RGB", (2 * max_side, 2 * max_side))
        return _fit(image, max_side)


def _skimage(name: str) -> Callable:
    def load(max_side=MAX_SIDE):
        import skimage.data
        pixels = getattr(skimage.data, name)()
        return _fit(Image.fromarray(pixels), max_side)
    return load


def _sklearn(index: int) -> Callable:
    def load(max_side=MAX_SIDE):
        from sklearn.datasets import load_sample_images
        return _fit(Image.fromarray(load_sample_images().images[index]), max_side)
    return load


def _file(path: str) -> Callable:
    return lambda max_side=MAX_SIDE: _open_file(path, max_side)


def photo_sources(use_apt: bool) -> tuple:
    """The source photos and the photos bursts are cut from.

    Returns:
        ``(photos, burst_photos)``: ``{name: loader(max_side) -> RGB image}``
    """
    photos = {n: _skimage(n) for n in SKIMAGE_PHOTOS if n not in SKIMAGE_BURST}
    photos["flower"] = _sklearn(1)
    bursts = {n: _skimage(n) for n in SKIMAGE_BURST}
    bursts["china"] = _sklearn(0)
    if use_apt:
        for name in OPENCV_PHOTOS:
            path = glob.glob(os.path.join(OPENCV_DATA, name + ".*"))[0]
            photos["cv_" + name] = _file(path)
        walls = _wallpapers()
        # the burst wallpapers: every third, so both parts get some
        for k, path in enumerate(walls):
            name = "wall_" + os.path.splitext(os.path.basename(path))[0]
            if k % 3 == 1 and len([b for b in bursts if b.startswith("wall_")]) < NUM_BURST_WALLPAPERS:
                bursts[name] = _file(path)
            else:
                photos[name] = _file(path)
    return photos, bursts


def scenes(use_apt: bool) -> dict:
    """``{scene name: (kind, [loaders])}``: the different shots of one scene."""
    found = {"motorcycle": ("stereo", [_skimage_stereo(0), _skimage_stereo(1)])}
    if use_apt:
        for name, (kind, files) in OPENCV_SCENES.items():
            found[name] = (kind, [_file(os.path.join(OPENCV_DATA, f)) for f in files])
    return found


def _skimage_stereo(view: int) -> Callable:
    def load(max_side=MAX_SIDE):
        import skimage.data
        return _fit(Image.fromarray(skimage.data.stereo_motorcycle()[view]), max_side)
    return load


# ---------------------------------------------------------------- edits

def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = os.path.join(FONT_DIR, name)
    return ImageFont.truetype(path if os.path.exists(path) else name, size)


def _inner_rect(w: int, h: int, angle_deg: float) -> tuple:
    """Width and height of the largest axis-aligned rectangle inside a
    ``w x h`` rectangle rotated by ``angle_deg``."""
    a = math.radians(abs(angle_deg))
    sin_a, cos_a = math.sin(a), math.cos(a)
    side_long, side_short = max(w, h), min(w, h)
    if side_short <= 2.0 * sin_a * cos_a * side_long or abs(sin_a - cos_a) < 1e-10:
        x = 0.5 * side_short
        wr, hr = (x / sin_a, x / cos_a) if w >= h else (x / cos_a, x / sin_a)
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        wr, hr = (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a
    return int(wr), int(hr)


def _signed(rng, low, high) -> float:
    return float(rng.uniform(low, high) * rng.choice([-1, 1]))


def edit(image: Image.Image, kind: str, rng: np.random.Generator) -> tuple:
    """One edit of random strength within the evaluated range.

    Returns:
        ``(edited image, JPEG quality to save it with)``
    """
    w, h = image.size
    quality = 90
    if kind == "resize":
        scale = rng.uniform(0.5, 0.9)
        image = image.resize((max(8, round(w * scale)), max(8, round(h * scale))),
                             Image.Resampling.LANCZOS)
    elif kind == "jpeg":
        quality = int(rng.integers(30, 91))
    elif kind == "crop":
        left, right, top, bottom = rng.uniform(0.0, 0.10, 4)
        image = image.crop((round(left * w), round(top * h), round(w - right * w), round(h - bottom * h)))
    elif kind == "rotate":
        angle = _signed(rng, 1, 5)
        rotated = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
        iw, ih = _inner_rect(w, h, angle)
        x0, y0 = (w - iw) // 2, (h - ih) // 2
        image = rotated.crop((x0, y0, x0 + iw, y0 + ih))
    elif kind == "mirror":
        image = ImageOps.mirror(image)
    elif kind == "brightness":
        image = ImageEnhance.Brightness(image).enhance(1 + _signed(rng, 0.1, 0.3))
    elif kind == "contrast":
        image = ImageEnhance.Contrast(image).enhance(1 + _signed(rng, 0.1, 0.3))
    elif kind == "noise":
        sigma = rng.uniform(4, 12)
        pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, sigma, (h, w, 3)).astype(np.float32)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    elif kind == "watermark":
        layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        size = max(10, h // int(rng.integers(10, 16)))
        text = str(rng.choice(["(c) 2024 sample", "PHOTO STUDIO", "@my_account", "DRAFT"]))
        draw.text((w * rng.uniform(0.05, 0.45), h * rng.uniform(0.05, 0.85)), text,
                  fill=(255, 255, 255, int(rng.integers(120, 220))), font=_font(size, bold=True))
        image = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    elif kind == "sticker":
        side = max(6, int(min(w, h) * rng.uniform(0.08, 0.15)))
        x, y = int(rng.uniform(0, w - side)), int(rng.uniform(0, h - side))
        draw = ImageDraw.Draw(image)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x, y, x + side, y + side), fill=color, outline=(0, 0, 0), width=2)
        else:
            draw.rounded_rectangle((x, y, x + side, y + side), radius=side // 4, fill=color)
        draw.text((x + side * 0.2, y + side * 0.25), "★" if rng.random() < 0.5 else "ok",
                  fill=(255, 255, 255), font=_font(max(6, side // 2)))
    elif kind == "combined":
        for part in ("crop", "rotate", "brightness", "watermark"):
            image, _ = edit(image, part, rng)
        quality = int(rng.integers(30, 91))
    elif kind == "combined_mirror":
        for part in ("mirror", "resize", "contrast", "noise", "sticker"):
            image, _ = edit(image, part, rng)
        quality = int(rng.integers(30, 91))
    elif kind != "exact":
        raise ValueError(kind)
    return image, quality


# ---------------------------------------------------------------- hard negatives

WORDS = (
    "invoice order total amount customer account payment due date number item quantity "
    "price service report summary project budget review meeting agenda notes minutes "
    "contract party terms agreement section clause shipping address delivery receipt "
    "balance credit debit tax rate period annual quarter result analysis figure table"
).split()


def render_document(rng: np.random.Generator, size=(600, 780)) -> Image.Image:
    """A page with a fixed layout (header bar, title, two columns of
    paragraphs, a table, a footer) and random text."""
    w, h = size
    page = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, w, 60), fill=(30, 60, 120))
    draw.text((24, 16), "ACME Corporation", fill=(255, 255, 255), font=_font(24, bold=True))
    words = lambda k: " ".join(rng.choice(WORDS, k))  # noqa: E731
    draw.text((24, 80), words(4).title(), fill=(0, 0, 0), font=_font(22, bold=True))
    body = _font(13)
    for column in range(2):
        x0 = 24 + column * (w // 2)
        for line in range(18):
            y = 125 + line * 19
            length = 5 if line % 6 == 5 else 7
            draw.text((x0, y), words(length)[: 38], fill=(20, 20, 20), font=body)
    y0 = 490
    for row in range(6):
        for col in range(4):
            box = (24 + col * 138, y0 + row * 30, 24 + (col + 1) * 138, y0 + (row + 1) * 30)
            draw.rectangle(box, outline=(0, 0, 0))
            text = words(1) if col == 0 else f"{rng.integers(1, 9999)}.{rng.integers(0, 99):02d}"
            draw.text((box[0] + 6, box[1] + 7), text, fill=(0, 0, 0), font=body)
    draw.line((24, h - 50, w - 24, h - 50), fill=(120, 120, 120))
    draw.text((24, h - 40), f"Page {rng.integers(1, 30)} - {words(3)}", fill=(90, 90, 90), font=body)
    return page


FLAT_COLOURS = (
    (200, 30, 30), (30, 160, 40), (30, 60, 200), (230, 200, 40), (240, 240, 240),
    (20, 20, 20), (128, 128, 128), (200, 100, 20), (130, 40, 160), (40, 180, 190),
    (250, 150, 180), (90, 60, 30), (190, 190, 120), (60, 90, 60), (170, 200, 240),
    (80, 20, 40),
)


def flat_image(colour, rng: np.random.Generator, size=(320, 240)) -> Image.Image:
    """A flat image, or a nearly flat one (faint gradient and noise)."""
    w, h = size
    pixels = np.empty((h, w, 3), np.float32)
    pixels[:] = colour
    if rng.random() < 0.5:
        ramp = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None] * rng.uniform(3, 8)
        pixels += ramp + rng.normal(0, 2, (h, w, 3)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def burst_frames(big: Image.Image, rng: np.random.Generator, num: int = 3) -> list:
    """``num`` crops of one big photo, each shifted by 15-30% of its width
    from the previous one: different shots of one scene."""
    w, h = big.size
    frame_w, frame_h = int(w * 0.40), int(h * 0.85)
    x = rng.uniform(0, 0.05) * w
    frames = []
    for _ in range(num):
        y = rng.uniform(0, h - frame_h)
        frames.append(_fit(big.crop((round(x), round(y), round(x) + frame_w, round(y) + frame_h))))
        x += rng.uniform(0.15, 0.27) * w
    return frames


# ---------------------------------------------------------------- the set

@dataclass
class EvalSet:
    """Image files in index order, each with its identity (copies of one
    photo share it) and kind (``"original"``, an edit kind, or a hard-negative
    kind), plus the hard-negative pairs ``(a, b, kind)`` (positions)."""

    paths: list = field(default_factory=list)
    identity: list = field(default_factory=list)
    kind: list = field(default_factory=list)
    hard_pairs: list = field(default_factory=list)

    def truth_pairs(self) -> set:
        by_id = {}
        for k, ident in enumerate(self.identity):
            by_id.setdefault(ident, []).append(k)
        return {(a, b) for members in by_id.values() for x, a in enumerate(members) for b in members[x + 1:]}


def build_eval_set(
    folder: str,
    part: str = "heldout",
    use_apt: Optional[bool] = None,
    seed: int = 0,
    edits: tuple = EDIT_KINDS,
    num_documents: int = 10,
    num_flat: int = 8,
    max_photos: Optional[int] = None,
) -> EvalSet:
    """Writes one part of the evaluation set as files under ``folder`` and
    returns it in a shuffled (fixed) index order.

    Args:
        folder: where to write the files
        part: ``"tune"`` or ``"heldout"``
        use_apt: include the Debian packages' photos; None: if installed
        seed: the random seed of edits, documents and order
        edits: the edit kinds to make of each photo
        num_documents: same-layout documents (two of every five also get
            edited copies)
        num_flat: flat images of different colours
        max_photos: at most this many source photos (None: all)

    Returns:
        :class:`EvalSet`
    """
    if use_apt is None:
        use_apt = apt_photos_available()
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng([seed, 0 if part == "tune" else 1])
    items = []  # (writer, identity, kind) ; writer(path_stem) -> path

    def image_writer(image, quality=92):
        def write(stem):
            path = stem + ".jpg"
            image.save(path, quality=quality)
            return path
        return write

    photos, bursts = photo_sources(use_apt)
    names = [n for n in sorted(photos) if part_of(n) == part]
    if max_photos is not None:
        names = names[:max_photos]
    for name in names:
        original = photos[name]()
        items.append((image_writer(original), "photo:" + name, "original"))
        for kind in edits:
            if kind == "exact":
                items.append(("exact", "photo:" + name, "exact"))
                continue
            image, quality = edit(original.copy(), kind, rng)
            items.append((image_writer(image, quality), "photo:" + name, kind))

    hard_groups = []  # (kind, [item positions])
    for name, (kind, loaders) in sorted(scenes(use_apt).items()):
        if part_of(name) != part:
            continue
        start = len(items)
        for k, load in enumerate(loaders):
            items.append((image_writer(load()), f"{kind}:{name}:{k}", kind))
        hard_groups.append((kind, list(range(start, len(items)))))
    for name in sorted(bursts):
        if part_of(name) != part:
            continue
        start = len(items)
        for k, frame in enumerate(burst_frames(bursts[name](max_side=1400), rng)):
            items.append((image_writer(frame), f"burst:{name}:{k}", "burst"))
        hard_groups.append(("burst", list(range(start, len(items)))))
    start = len(items)
    for k in range(num_documents):
        page = render_document(rng)
        items.append((image_writer(page), f"document:{k}", "document"))
        if k % 5 < 2:
            items.append((image_writer(page, quality=int(rng.integers(40, 80))), f"document:{k}", "doc_jpeg"))
            small, _ = edit(page, "resize", rng)
            items.append((image_writer(small), f"document:{k}", "doc_resize"))
    docs = [i for i in range(start, len(items)) if items[i][2] == "document"]
    hard_groups.append(("document", docs))
    offset = 0 if part == "tune" else len(FLAT_COLOURS) // 2
    start = len(items)
    for k in range(num_flat):
        colour = FLAT_COLOURS[(offset + k) % len(FLAT_COLOURS)]
        items.append((image_writer(flat_image(colour, rng), quality=95), f"flat:{k}", "flat"))
    hard_groups.append(("flat", list(range(start, len(items)))))

    order = rng.permutation(len(items))
    position = np.empty(len(items), dtype=np.int64)
    position[order] = np.arange(len(items))
    result = EvalSet()
    written = {}
    for new, old in enumerate(order.tolist()):
        writer, identity, kind = items[old]
        stem = os.path.join(folder, f"{part}_{new:05d}_{kind}")
        if writer == "exact":
            result.paths.append(None)  # filled below: a byte copy of the original
        else:
            result.paths.append(writer(stem))
            if kind == "original":
                written[identity] = result.paths[-1]
        result.identity.append(identity)
        result.kind.append(kind)
    for k, path in enumerate(result.paths):
        if path is None:
            result.paths[k] = os.path.join(folder, f"{part}_{k:05d}_exact.jpg")
            shutil.copyfile(written[result.identity[k]], result.paths[k])
    for kind, members in hard_groups:
        pos = sorted(int(position[m]) for m in members)
        result.hard_pairs.extend((a, b, kind) for x, a in enumerate(pos) for b in pos[x + 1:])
    return result
