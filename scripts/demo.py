"""Demo: real photos, exact and near-duplicate copies, all eight operators.

    ./run.sh demo            # or: .venv/bin/python scripts/demo.py [--app]

Photos come from scikit-image and scikit-learn, which ship them; nothing is
downloaded. The dataset "dedup-demo" is built in FiftyOne's database.
"""

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("FIFTYONE_PLUGINS_DIR", ROOT)
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402
from sklearn.datasets import load_sample_images  # noqa: E402

import fiftyone as fo  # noqa: E402
import fiftyone.operators as foo  # noqa: E402

PLUGIN = "@fo-dedup/image-dedup"
PACKAGE = "image_dedup"
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


def names(view) -> list:
    return [os.path.basename(p) for p in view.values("filepath")]


def show_groups(dataset, view_name, field):
    view = dataset.load_saved_view(view_name)
    groups = {}
    for key, path in zip(*view.values([field, "filepath"])):
        groups.setdefault(key, []).append(os.path.basename(path))
    for members in groups.values():
        print(f"      {members[0]:<32} <- {', '.join(members[1:])}")


def exact_workflow(dataset):
    print("\n== Exact duplicates ==")
    found = run("find_exact_duplicate_images", dataset)
    print(f"  Find exact duplicates: {found['num_images_with_exact_dups']} images in groups, "
          f"{found['num_dups']} removable duplicates ({found['num_hashed']} files hashed)")
    run("display_exact_duplicate_groups", dataset)
    print("  Display exact duplicates: exact_dup_view grouped by filehash (first added first):")
    show_groups(dataset, "exact_dup_view", "filehash")
    trial = dataset.clone()
    removed = run("remove_all_exact_duplicates", trial)
    print(f"  Remove all exact duplicates (on a clone): deleted {removed['num_deleted']}, "
          f"{len(trial)} of {len(dataset)} samples left")
    trial.delete()
    deduped = run("deduplicate_exact_duplicates", dataset)
    print(f"  Deduplicate exact duplicates: deleted {deduped['num_deleted']}, kept one per group; "
          f"{len(dataset)} samples left")


def approx_workflow(dataset):
    print("\n== Approximate duplicates ==")
    # no index yet: the find builds one from pixel embeddings (no model download)
    # and uses the pixel index's default threshold
    found = run("find_approximate_duplicate_images", dataset, index_source="pixels",
                new_brain_key="pixels")
    print("  Similarity index 'pixels' built from pixel embeddings (no model download)")
    print(f"  Find approximate duplicates (threshold {found['threshold']}): "
          f"{found['num_images_with_approx_dups']} "
          f"images in {found['num_groups']} groups, {found['num_dups']} removable duplicates")
    run("display_approximate_duplicate_groups", dataset)
    print("  Display approximate duplicates: approx_dup_groups_view (representative first):")
    show_groups(dataset, "approx_dup_view", "approx_dup_group_id")
    trial = dataset.clone()
    removed = run("remove_all_approximate_duplicates", trial)
    print(f"  Remove all approximate duplicates (on a clone): deleted {removed['num_deleted']}, "
          f"{len(trial)} of {len(dataset)} samples left")
    trial.delete()
    deduped = run("deduplicate_approximate_duplicates", dataset)
    print(f"  Deduplicate approximate duplicates: deleted {deduped['num_deleted']}; "
          f"{len(dataset)} samples left: {', '.join(sorted(names(dataset)))}")


def load_plugin():
    """Imports the plugin's modules as a package, as FiftyOne does."""
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(ROOT, "__init__.py"),
        submodule_search_locations=[ROOT],
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", action="store_true", help="open the App on the demo dataset after running")
    parser.add_argument("--port", type=int, default=5151)
    args = parser.parse_args()
    fo.config.show_progress_bars = False
    load_plugin()

    folder = os.path.join(tempfile.gettempdir(), "dedup-demo-images")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    paths = write_images(folder)
    dataset = fo.Dataset(DATASET, overwrite=True, persistent=args.app)
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    print(f"Dataset '{DATASET}': {len(dataset)} images in {folder} "
          f"({len(list(photos()))} photos, 3 exact copies, 12 edited copies)")

    exact_workflow(dataset)
    approx_workflow(dataset)

    if args.app:
        session = fo.launch_app(dataset, address="127.0.0.1", port=args.port, remote=True)
        print(f"\nApp: {session.url}  (Ctrl+C to stop)")
        session.wait(-1)


if __name__ == "__main__":
    main()
