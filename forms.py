"""The operators' input forms, one plain function per form, and the inputs
several forms share (target view, delegation, leakage references).

Every input has a default that keeps the original behaviour; headless
``ctx.params`` holds only what was sent, so values are read with
``ctx.params.get``.
"""

import json

import fiftyone as fo
import fiftyone.operators.types as types

from . import approx_dups, cleanup, exact_dups, file_hashes, index_sources, leakage, pixel_embeddings
from . import representatives, results, similarity, threshold_form, threshold_preview
from .form_widgets import block, choices, dropdown, histogram

REFERENCE_PARAMS = {"saved_view": "reference_view", "tag": "reference_tag", "dataset": "reference_dataset"}
NO_SAMPLES = "There are no samples to search for duplicates"


def form(inputs: types.Object, label: str) -> types.Property:
    return types.Property(inputs, view=types.View(label=label))


RESULT_MARKERS = (exact_dups.RUN_FIELD, approx_dups.RUN_FIELD, leakage.EXACT_LEAK_FIELD,
                  leakage.APPROX_REF_FIELD)


def is_result_view(view) -> bool:
    """Whether ``view`` shows one of this plugin's results (e.g. after a
    display operator): a find there would search only the last result."""
    stages = json.dumps(getattr(view, "_serialize", list)(), default=str)
    return any(marker in stages for marker in RESULT_MARKERS)


def target_view(ctx, inputs: types.Object):
    """Adds the dataset / current view / selection choice; returns the target.
    On one of the plugin's result views, the dataset is the default."""
    default = "DATASET" if is_result_view(ctx.view) else None
    inputs.view_target(ctx, default_target=default)
    return find_target(ctx)


def find_target(ctx):
    """What a find searches: the chosen target; without a choice, the
    dataset when the current view is one of the plugin's result views."""
    chosen = ctx.params.get("view_target") or ctx.request_params.get("view_target")
    if chosen is None and is_result_view(ctx.view):
        return ctx.dataset
    return ctx.target_view()


def delegate_input(inputs: types.Object, note: str) -> None:
    inputs.bool(
        "delegate",
        default=False,
        label="Delegate execution",
        description="Run as a delegated operation in the background. It runs only while a "
        "delegated-operation service is running: start `fiftyone delegated launch` in a terminal "
        f"with the same FiftyOne settings (database, FIFTYONE_PLUGINS_DIR). {note}",
        view=types.CheckboxView(),
    )


def references(ctx):
    """The collection a leakage check compares against, or None.

    Raises:
        ValueError: if the named saved view, tag or dataset is unusable
    """
    kind = ctx.params.get("compare_to", "none")
    if kind == "none":
        return None
    return leakage.reference_collection(ctx.dataset, kind, ctx.params.get(REFERENCE_PARAMS.get(kind)))


def is_leak_check(params: dict) -> bool:
    return params.get("compare_to", "none") != "none"


REFERENCE_TAG_NAMES = ("test", "val", "validation", "holdout", "eval", "reference")


def _reference_tags(ctx, target) -> list:
    """The dataset's tags, the likeliest reference first: not a tag every
    target sample carries (the target's own split), a split name such as
    "test" before others."""
    counts = target.count_sample_tags() if len(target) else {}
    own = {tag for tag, count in counts.items() if count == len(target)}
    return sorted(ctx.dataset.distinct("tags"),
                  key=lambda tag: (tag in own, tag.lower() not in REFERENCE_TAG_NAMES, tag))


def _compare_input(ctx, inputs: types.Object, target) -> tuple:
    """Adds the leakage-check inputs; returns the references (or None) and
    an error message (or None)."""
    kinds = {"none": "No: find duplicates within the target",
             "saved_view": "A saved view", "tag": "Samples with a tag", "dataset": "Another dataset"}
    kind = choices(ctx, inputs, "compare_to", kinds, "none", "Compare against (leakage check)",
                   "Report only target samples that duplicate a sample of this collection, "
                   "e.g. train samples leaking into test")
    if kind == "saved_view":
        dropdown(inputs, "reference_view", ctx.dataset.list_saved_views(), "Saved view")
    elif kind == "tag":
        dropdown(inputs, "reference_tag", _reference_tags(ctx, target), "Tag")
    elif kind == "dataset":
        others = [n for n in fo.list_datasets() if n != ctx.dataset.name]
        dropdown(inputs, "reference_dataset", others, "Dataset")
    try:
        return references(ctx), None
    except ValueError as e:
        return None, str(e)


def _target_and_references(ctx, inputs: types.Object) -> tuple:
    """The target view and the leakage references, blocking the form when
    either is unusable."""
    target = target_view(ctx, inputs)
    if len(target) == 0:
        block(inputs, "empty", NO_SAMPLES)
    refs, error = _compare_input(ctx, inputs, target)
    if error:
        block(inputs, "bad_reference", error)
    return target, refs, error


def find_exact_form(ctx) -> types.Property:
    inputs = types.Object()
    if file_hashes.blake3 is None:
        block(inputs, "missing_blake3", file_hashes.MISSING_BLAKE3)
    target, _, _ = _target_and_references(ctx, inputs)
    try:
        exact_dups.hashable_samples(target)
    except ValueError as e:
        block(inputs, "not_images", str(e))
    _replaces_notice(ctx, inputs, exact_dups.WORKFLOW)
    foreign = exact_dups.foreign_filehash_message(ctx.dataset)
    if foreign:
        inputs.view("foreign_filehash", types.Notice(label=foreign))
    inputs.bool(
        "rehash",
        default=False,
        label="Rehash all files",
        description="Also read files whose size and modification time are unchanged "
        "(files that changed are always read again)",
    )
    inputs.int(
        "num_readers",
        required=False,
        label="File readers",
        description="Threads that read files: empty = automatic (1 on a local disk; up to "
        f"{file_hashes.MAX_READERS} when reads wait, as on network filesystems and cloud mounts)",
        min=1,
    )
    delegate_input(inputs, "Recommended for large datasets.")
    return form(inputs, "Find exact duplicates")


def find_approx_form(ctx) -> types.Property:
    inputs = types.Object()
    target, refs, error = _target_and_references(ctx, inputs)
    source, brain_key = _index_input(ctx, inputs)
    if not is_leak_check(ctx.params):
        _replaces_notice(ctx, inputs, approx_dups.WORKFLOW)
        _verification_inputs(ctx, inputs, source)
    method, value = threshold_form.criterion_input(ctx, inputs, source, is_leak_check(ctx.params))
    inputs.bool("show_histogram", default=True, label="Show the distance histogram",
                description="Searches each sample's nearest neighbour once (cached); a new "
                "index's histogram is shown with the find's result")
    if brain_key and ctx.params.get("show_histogram", False) and not error and len(target):
        threshold_form.preview(inputs, target, brain_key, method, value, refs)
    if brain_key and not is_leak_check(ctx.params):
        choices(ctx, inputs, "search", {"auto": "Automatic", "memory": "In this process",
                                         "backend": "In the vector database"}, "auto",
                "Where the neighbour search runs",
                "Automatic: in the vector database when its backend can't return all vectors "
                "(Milvus) or above 2,000,000 samples of a service backend; else in memory")
    delegate_input(inputs, "Recommended above ~50,000 samples.")
    return form(inputs, "Find approximate duplicates")


def _index_input(ctx, inputs: types.Object) -> tuple:
    """Adds the similarity index choice and the chosen source's inputs.

    Returns:
        ``(source, brain key of an existing index or None)``
    """
    names = dict(index_sources.SOURCES)
    if not similarity.similarity_brain_keys(ctx.dataset):
        del names["existing"]
        inputs.view("no_index", types.Notice(label=similarity.NO_INDEX_MESSAGE))
    labels = {name: source.label for name, source in names.items()}
    name = choices(ctx, inputs, "index_source", labels, index_sources.default_source_name(ctx.dataset, {}),
                   "Where the similarity comes from")
    source = index_sources.SOURCES[name]
    return source, source.add_inputs(ctx, inputs)


def _replaces_notice(ctx, inputs: types.Object, workflow) -> None:
    """Says what a find would replace, if a result exists."""
    if is_leak_check(ctx.params):
        return
    try:
        view = workflow.load_view(ctx.dataset)
    except ValueError:
        return
    num_images = len(view)
    if num_images:
        num_groups = len(view.distinct(workflow.group_field))
        inputs.view("replaces", types.Notice(
            label=f"This find replaces the current result: {num_images} images in {num_groups} groups"))


def _verification_inputs(ctx, inputs: types.Object, source) -> None:
    inputs.bool("verify", default=source.verifies(ctx.dataset, ctx.params),
                label="Verify candidates by comparing the images",
                description="Each candidate pair is confirmed by aligning the two images, so "
                "another shot of the same scene is not taken for an edited copy (on by default "
                "for the pixel index; CLIP-like embeddings also merge burst shots)")
    inputs.bool("mirror", default=True, label="A mirrored copy is a duplicate",
                description="Turn off where left and right matter (e.g. text, driving scenes)")


def _new_index_histogram(ctx, outputs: types.Object) -> None:
    """After a find that built a new index, the histogram its form could not
    show yet, with the threshold the find used."""
    threshold = (ctx.results or {}).get("threshold")
    existing = index_sources.ExistingIndex.name
    built = ctx.params.get("index_source", existing) != existing
    if not (built and ctx.params.get("show_histogram") and threshold is not None):
        return
    brain_key = ctx.params.get("new_brain_key", pixel_embeddings.DEFAULT_BRAIN_KEY)
    try:
        refs = references(ctx)
        preview = threshold_preview.threshold_preview(find_target(ctx), brain_key, threshold, refs)
    except ValueError:  # the index or the references are gone since the find
        return
    histogram(outputs, "histogram", preview.bin_edges, preview.counts, threshold, threshold_form.histogram_title(refs))


def _find_outputs(params: dict, counts: dict) -> types.Object:
    """The counts of a find (``{name: label}``), or of a leakage check."""
    outputs = types.Object()
    if is_leak_check(params):
        counts = {"num_leaked": "Target samples that duplicate a reference",
                  "num_references": "Reference samples"}
    for name, label in counts.items():
        outputs.int(name, label=label)
    return outputs


def find_exact_outputs(params: dict) -> types.Property:
    outputs = _find_outputs(params, {"num_images_with_exact_dups": "Images with exact duplicates",
                                     "num_dups": "Duplicates deduplication would remove"})
    if not is_leak_check(params):
        outputs.int("num_empty", label="Empty files (never grouped)")
    outputs.int("num_hashed", label="Files hashed in this run")
    if not is_leak_check(params):
        outputs.int("num_changed", label="Of those, changed since their last hash")
    outputs.int("num_unreadable", label="Unreadable files (skipped)")
    outputs.list("unreadable_paths", types.String(), label="First unreadable files")
    if not is_leak_check(params):
        outputs.int("num_kept_apart", label="Pairs your review marked not duplicates")
    _where_outputs(outputs)
    return types.Property(outputs)


def find_approx_outputs(ctx) -> types.Property:
    params = ctx.params
    outputs = _find_outputs(params, {"num_images_with_approx_dups": "Images in near-duplicate groups",
                                     "num_dups": "Duplicates deduplication would remove",
                                     "num_groups": "Groups"})
    outputs.float("threshold", label="Distance threshold used")
    outputs.int("num_degenerate", label="All-zero embeddings (left out of groups)")
    outputs.float("fraction_reached", label="Fraction of duplicates reached")
    outputs.str("note", label="Note")
    if not is_leak_check(params):
        outputs.bool("verified", label="Candidate pairs verified by comparing the images")
        outputs.int("num_rejected", label="Candidate pairs verification found to be different photos")
        outputs.int("num_kept_apart", label="Pairs your review marked not duplicates")
    _where_outputs(outputs)
    _new_index_histogram(ctx, outputs)
    return types.Property(outputs)


def where_results_are(params: dict, workflow) -> dict:
    """Where a find's result is, and the next step, for its output."""
    if is_leak_check(params):
        view = leakage.EXACT_LEAK_VIEW if workflow is exact_dups.WORKFLOW else leakage.APPROX_LEAK_VIEW
        return {"saved_view": view, "next_step": f"Load the saved view '{view}' to see the leaked "
                "samples, or open 'Dedup: Review duplicates'"}
    return {"saved_view": workflow.view_name,
            "next_step": f"'Dedup: Display {workflow.name} duplicates' shows the groups; "
            "'Dedup: Review duplicates' compares each group side by side before deleting"}


def _where_outputs(outputs: types.Object) -> None:
    outputs.str("saved_view", label="Saved view of the result")
    outputs.str("next_step", label="Next")


def cleanup_outputs(params: dict) -> types.Property:
    outputs = types.Object()
    if params.get("action", "delete") == "tag":
        outputs.int("num_tagged", label="Samples tagged")
        outputs.str("tag", label="Tag")
    else:
        outputs.int("num_deleted", label="Samples deleted")
        outputs.int("num_skipped", label="Kept: file changed or missing since the find")
        outputs.list("skipped_paths", types.String(), label="First files kept")
    return types.Property(outputs)


def cleanup_form(ctx, workflow, keep_representative: bool, default_rule: str, label: str) -> types.Property:
    inputs = types.Object()
    try:
        count = cleanup.count_to_delete(ctx.dataset, workflow, keep_representative)
    except ValueError as e:
        block(inputs, "not_found", str(e))
        return form(inputs, label)
    if keep_representative:
        _representative_input(ctx, inputs, default_rule)
    actions = {"delete": "Delete them", "tag": "Tag them for review (nothing is deleted)"}
    action = choices(ctx, inputs, "action", actions, "delete", "Action")
    if action == "tag":
        inputs.str("tag", default=cleanup.DEFAULT_TAG, label="Tag")
    if count == 0:
        block(inputs, "nothing", "There are no duplicates to delete")
    elif action == "tag":
        tag = ctx.params.get("tag", cleanup.DEFAULT_TAG)
        inputs.view("notice", types.Notice(label=f"This tags {count} samples '{tag}'"))
    else:
        text = _delete_warning(ctx.dataset, workflow, count, keep_representative)
        inputs.view("warning", types.Warning(label=text))
    return form(inputs, label)


def _delete_warning(dataset, workflow, count: int, keep_representative: bool) -> str:
    text = f"This permanently deletes {count} samples from the dataset"
    tag = results.review_tag(dataset, workflow)
    if tag is not None:
        return (f"{text}: those still tagged '{tag}' from your review (untagged samples are "
                "kept, and one per group when keeping one)")
    if keep_representative:
        return text
    keeping_one = cleanup.count_to_delete(dataset, workflow, True)
    return (f"{text}: every member of every group, originals included; to keep one per group, "
            f"use Deduplicate (it would delete {keeping_one})")


def _representative_input(ctx, inputs: types.Object, default_rule: str) -> None:
    rules = {name: rule.label for name, rule in representatives.RULES.items()
             if not rule.keeps_search_order or default_rule == name}
    rules = {default_rule: rules.pop(default_rule), **rules}
    rule = choices(ctx, inputs, "representative", rules, default_rule, "Keep per group",
                   "Ties go to the sample added first; samples without a value are kept last")
    if rule in representatives.RULES and representatives.RULES[rule].needs_field:
        fields = representatives.numeric_fields(ctx.dataset)
        if fields:
            dropdown(inputs, "representative_field", fields, "Numeric field")
        else:
            block(inputs, "no_field", "The dataset has no numeric sample field")
