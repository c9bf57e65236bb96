"""Demo: real photos, exact and near-duplicate copies, all eight operators.

    ./run.sh demo            # or: .venv/bin/python scripts/demo.py [--keep | --app]

Photos come from scikit-image and scikit-learn, which ship them; nothing is
downloaded. The dataset "dedup-demo" is built in FiftyOne's database and
deleted at the end, unless --keep (or --app, which opens the App on it) keeps
it, with its images, for the README's Python examples.
"""

import argparse
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("FIFTYONE_PLUGINS_DIR", ROOT)
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

try:  # the imports take seconds: Ctrl+C during them ends quietly too
    import skimage.data
    from PIL import Image, ImageEnhance, ImageOps
    from sklearn.datasets import load_sample_images

    import fiftyone as fo
    import fiftyone.operators as foo
except KeyboardInterrupt:
    sys.exit(130)

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
    yield "mirrored", ImageOps.mirror(image)


def write_images(folder: str) -> list:
    """Writes the photos, 3 byte-identical copies and 16 edited copies."""
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


def build_dataset(folder: str, name: str = DATASET, persistent: bool = False) -> fo.Dataset:
    """Writes the demo's images into ``folder`` (emptied first) and returns the
    dataset ``name`` of them, replacing any dataset of that name; runs no
    operator."""
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    paths = write_images(folder)
    dataset = fo.Dataset(name, overwrite=True, persistent=persistent)
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    return dataset


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
        if fo.dataset_exists(f"{dataset.name}-trial"):
            fo.delete_dataset(f"{dataset.name}-trial")
        trial = dataset.clone(f"{dataset.name}-trial")
        try:
            done = run(f"{name}_{kind}_duplicates", trial)
            print(f"  {label} {kind} duplicates (on a clone): deleted {done['num_deleted']}, "
                  f"{len(trial)} of {len(dataset)} samples left")
        finally:
            trial.delete()


def run_workflows(dataset) -> None:
    """Both workflows on the demo dataset, as ``./run.sh demo`` runs them."""
    workflow(dataset, "exact", "exact", "filehash")
    # no index yet: the find builds one from pixel embeddings (no model
    # download) and uses the pixel index's default threshold
    workflow(dataset, "approximate", "approx", "approx_dup_group_id",
             index_source="pixels", new_brain_key="pixels")
    show_hard_cases(dataset)


def show_hard_cases(dataset) -> None:
    """A mirrored copy is grouped; the two views of a stereo pair (two shots
    of one scene) are not."""
    group = dict(zip(*dataset.values(["filepath", "approx_dup_group_id"])))
    by_name = {os.path.basename(p): g for p, g in group.items()}
    mirrored = by_name.get("rocket_mirrored.jpg")
    print(f"  Mirrored copy rocket_mirrored.jpg: "
          f"{'grouped with rocket.jpg' if mirrored and mirrored == by_name.get('rocket.jpg') else 'NOT grouped'}")
    left, right = by_name.get("motorcycle_left.jpg"), by_name.get("motorcycle_right.jpg")
    together = left is not None and left == right
    print("  Stereo pair motorcycle_left.jpg / motorcycle_right.jpg (two shots of one scene): "
          f"{'grouped' if together else 'not grouped, as it should be'}")


def demo(args, folder: str) -> None:
    keep = args.keep or args.app
    dataset = build_dataset(folder, persistent=keep)
    print(f"Dataset '{DATASET}': {len(dataset)} images in {folder} "
          f"({len(list(photos()))} photos, 3 exact copies, 16 edited copies)")
    run_workflows(dataset)

    if keep:
        print(f"\nKept dataset '{DATASET}' (images in {folder}): in Python, "
              f"fo.load_dataset('{DATASET}') (see the README's \"Python\"); in the App, "
              f"./run.sh demo --app or `fiftyone app launch {DATASET}`; "
              f"to delete it: fiftyone datasets delete {DATASET}")
    else:
        print(f"\nThe dataset '{DATASET}' is deleted now. To keep it for the README's Python "
              "examples: ./run.sh demo --keep; to keep it and open the App on it: "
              "./run.sh demo --app")
    if args.app:
        session = fo.launch_app(dataset, address="127.0.0.1", port=args.port, remote=True)
        print(f"\nApp: {session.url}  (press ` and run 'Dedup: Display exact duplicates'; "
              "Ctrl+C to stop)")
        session.wait(-1)


def cleanup(keep: bool, folder: str) -> None:
    """Deletes what an unkept or interrupted demo leaves: the dataset, clones
    of it, and its images."""
    if not keep:
        if fo.dataset_exists(DATASET):
            fo.delete_dataset(DATASET)
        shutil.rmtree(folder, ignore_errors=True)
    if fo.dataset_exists(f"{DATASET}-trial"):  # the clone a delete step was working on
        fo.delete_dataset(f"{DATASET}-trial")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true",
                        help=f"keep the dataset '{DATASET}' and its images afterwards")
    parser.add_argument("--app", action="store_true",
                        help="keep the dataset and open the App on it after running")
    parser.add_argument("--port", type=int, default=5151, help="the App's port (with --app)")
    args = parser.parse_args()
    fo.config.show_progress_bars = False
    folder = os.path.join(tempfile.gettempdir(), "dedup-demo-images")
    keep = args.keep or args.app
    try:
        demo(args, folder)
    except KeyboardInterrupt:
        print(f"\nStopped; the dataset '{DATASET}' is kept" if keep else
              f"\nInterrupted; deleting the dataset '{DATASET}'", file=sys.stderr)
        try:
            cleanup(keep and fo.dataset_exists(DATASET), folder)
        except KeyboardInterrupt:
            pass
        sys.exit(130)
    if not keep:
        cleanup(False, folder)


if __name__ == "__main__":
    main()
