"""Demo: real photos, exact and near-duplicate copies, all eight operators.

    ./run.sh demo            # or: .venv/bin/python scripts/demo.py [--app]

Photos come from scikit-image and scikit-learn, which ship them; nothing is
downloaded. The dataset "dedup-demo" is built in FiftyOne's database.
"""

import argparse
import os
import shutil
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("FIFTYONE_PLUGINS_DIR", ROOT)
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

import skimage.data  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402
from sklearn.datasets import load_sample_images  # noqa: E402

import fiftyone as fo  # noqa: E402
import fiftyone.operators as foo  # noqa: E402

PLUGIN = "@fo-dedup/image-dedup"
DATASET = "dedup-demo"
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
    "immunohistochemistry", "retina", "camera", "coins", "moon", "page",
    "brick", "grass", "gravel", "cell", "clock",
)


def photos():
    """(name, RGB or grayscale array) of the bundled real photographs."""
    for name in PHOTOS:
        yield name, getattr(skimage.data, name)()
    left, right, _ = skimage.data.stereo_motorcycle()
    yield "motorcycle_left", left
    yield "motorcycle_right", right
    for name, pixels in zip(("china", "flower"), load_sample_images().images):
        yield name, pixels


def near_copies(image: Image.Image):
    """Edited versions of a photo: what near-duplicate search should catch."""
    w, h = image.size
    yield "resized", image.resize((int(w * 0.6), int(h * 0.6)))
    yield "cropped", image.crop((int(w * 0.05), int(h * 0.05), int(w * 0.95), int(h * 0.95)))
    yield "brighter", ImageEnhance.Brightness(image).enhance(1.15)


def write_images(folder: str) -> list:
    """Writes the photos, 3 byte-identical copies and 12 edited copies."""
    paths = []
    for k, (name, pixels) in enumerate(photos()):
        path = os.path.join(folder, f"{name}.jpg")
        Image.fromarray(pixels).convert("RGB").save(path, quality=92)
        paths.append(path)
        if k < 3:
            copy = os.path.join(folder, f"{name}_exact_copy.jpg")
            shutil.copyfile(path, copy)
            paths.append(copy)
        if 3 <= k < 7:
            with Image.open(path) as image:
                for edit, edited in near_copies(image):
                    edited_path = os.path.join(folder, f"{name}_{edit}.jpg")
                    edited.save(edited_path, quality=40 if edit == "resized" else 85)
                    paths.append(edited_path)
    return paths


def run(name, dataset, **params):
    result = foo.execute_operator(f"{PLUGIN}/{name}", ctx=dict(dataset=dataset, params=params))
    return result.result or {}


def show_groups(dataset, view_name, field):
    view = dataset.load_saved_view(view_name)
    groups = {}
    for key, path in zip(*view.values([field, "filepath"])):
        groups.setdefault(key, []).append(os.path.basename(path))
    for members in groups.values():
        print(f"      {members[0]:<32} <- {', '.join(members[1:])}")


def workflow(dataset, kind, short, group_field, **find_params):
    """Runs one workflow's four operators; the deletes run on clones, so the
    demo dataset keeps its groups for the App."""
    print(f"\n== {kind.capitalize()} duplicates ==")
    found = run(f"find_{kind}_duplicate_images", dataset, **find_params)
    threshold = f" (threshold {found['threshold']})" if "threshold" in found else ""
    print(f"  Find {kind} duplicates{threshold}: {found[f'num_images_with_{short}_dups']} images "
          f"in groups, {found['num_dups']} removable duplicates")
    shown = run(f"display_{kind}_duplicate_groups", dataset)
    print(f"  Display {kind} duplicates: {shown['num_groups']} groups of "
          f"{short}_dup_view by {group_field}, representative first:")
    show_groups(dataset, f"{short}_dup_view", group_field)
    for name, label in (("remove_all", "Remove all"), ("deduplicate", "Deduplicate")):
        trial = dataset.clone()
        done = run(f"{name}_{kind}_duplicates", trial)
        print(f"  {label} {kind} duplicates (on a clone): deleted {done['num_deleted']}, "
              f"{len(trial)} of {len(dataset)} samples left")
        trial.delete()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", action="store_true", help="open the App on the demo dataset after running")
    parser.add_argument("--port", type=int, default=5151)
    args = parser.parse_args()
    fo.config.show_progress_bars = False

    folder = os.path.join(tempfile.gettempdir(), "dedup-demo-images")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    paths = write_images(folder)
    dataset = fo.Dataset(DATASET, overwrite=True, persistent=args.app)
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    print(f"Dataset '{DATASET}': {len(dataset)} images in {folder} "
          f"({len(list(photos()))} photos, 3 exact copies, 12 edited copies)")

    workflow(dataset, "exact", "exact", "filehash")
    # no index yet: the find builds one from pixel embeddings (no model
    # download) and uses the pixel index's default threshold
    workflow(dataset, "approximate", "approx", "approx_dup_group_id",
             index_source="pixels", new_brain_key="pixels")

    if args.app:
        session = fo.launch_app(dataset, address="127.0.0.1", port=args.port, remote=True)
        print(f"\nApp: {session.url}  (press ` and run 'Dedup: Display exact duplicates'; "
              "Ctrl+C to stop)")
        session.wait(-1)


if __name__ == "__main__":
    main()
