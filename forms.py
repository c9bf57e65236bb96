"""The operators' input forms, one plain function per form, and the inputs
several forms share (target view, delegation, leakage references).

Every input has a default that keeps the original behaviour; headless
``ctx.params`` holds only what was sent, so values are read with
``ctx.params.get``.
"""

import fiftyone as fo
import fiftyone.operators.types as types

from . import approx_dups, cleanup, exact_dups, index_sources, leakage, pixel_embeddings
from . import representatives, similarity, threshold_preview
from .form_widgets import block, choices, dropdown

REFERENCE_PARAMS = {"saved_view": "reference_view", "tag": "reference_tag", "dataset": "reference_dataset"}
NO_SAMPLES = "There are no samples to search for duplicates"


def form(inputs: types.Object, label: str) -> types.Property:
    return types.Property(inputs, view=types.View(label=label))


def target_view(ctx, inputs: types.Object):
    """Adds the dataset / current view / selection choice; returns the target."""
    inputs.view_target(ctx)
    return ctx.target_view()


def delegate_input(inputs: types.Object, note: str) -> None:
    inputs.bool(
        "delegate",
        default=False,
        label="Delegate execution",
        description=f"Run as a delegated operation in the background. {note}",
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


def _compare_input(ctx, inputs: types.Object) -> tuple:
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
        dropdown(inputs, "reference_tag", sorted(ctx.dataset.distinct("tags")), "Tag")
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
    refs, error = _compare_input(ctx, inputs)
    if error:
        block(inputs, "bad_reference", error)
    return target, refs, error


def find_exact_form(ctx) -> types.Property:
    inputs = types.Object()
    if exact_dups.blake3 is None:
        block(inputs, "missing_blake3", exact_dups.MISSING_BLAKE3)
    _target_and_references(ctx, inputs)
    if exact_dups.has_foreign_filehash(ctx.dataset):
        inputs.view("foreign_filehash", types.Notice(label=exact_dups.FOREIGN_FILEHASH))
    inputs.bool(
        "rehash",
        default=False,
        label="Rehash all files",
        description="Also hash files that already have a filehash (e.g. files changed on disk)",
    )
    delegate_input(inputs, "Recommended for large datasets.")
    return form(inputs, "Find exact duplicates")


def find_approx_form(ctx) -> types.Property:
    inputs = types.Object()
    target, refs, error = _target_and_references(ctx, inputs)
    source, brain_key = _index_input(ctx, inputs)
    method = "threshold"
    if not is_leak_check(ctx.params):
        method = choices(ctx, inputs, "method_choices",
                         {"threshold": "Distance threshold", "fraction": "Fraction of duplicates"},
                         "threshold", "Method")
    if method == "threshold":
        threshold = _threshold_input(ctx, inputs, source)
        if brain_key:
            inputs.bool("show_histogram", default=True, label="Show the distance histogram",
                        description="Searches each sample's nearest neighbour once (cached)")
        if brain_key and ctx.params.get("show_histogram", False) and not error and len(target):
            _threshold_preview(inputs, target, brain_key, threshold, refs)
    else:
        inputs.float(
            "dup_fraction",
            default=approx_dups.DEFAULT_FRACTION,
            min=0.0,
            max=1.0,
            label="Fraction of duplicates",
            description="The threshold is tuned so that this fraction of images are duplicates",
            view=types.SliderView(componentsProps={"slider": {"min": 0, "max": 1, "step": 0.01}}),
        )
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


def _threshold_input(ctx, inputs: types.Object, source) -> float:
    default = source.default_threshold(ctx.dataset, ctx.params)
    inputs.float(
        "threshold_value",
        default=default,
        min=0.0,
        label="Distance threshold",
        description="Images closer than this in the index's metric are duplicates "
        "(cosine distance: 0 = same direction, 2 = opposite; "
        f"pixel index: {pixel_embeddings.DEFAULT_THRESHOLD})",
    )
    return ctx.params.get("threshold_value", default)


def _threshold_preview(inputs: types.Object, target, brain_key: str, threshold: float, refs) -> None:
    """The nearest-neighbour distance histogram with the threshold marked,
    and what the threshold would find."""
    try:
        preview = threshold_preview.threshold_preview(target, brain_key, threshold or 0.0, refs)
    except ValueError as e:
        block(inputs, "bad_index", str(e))
        return
    edges = preview.bin_edges
    bars = {"type": "bar", "name": "samples",
            "x": [(a + b) / 2 for a, b in zip(edges, edges[1:])], "y": preview.counts,
            "width": [b - a for a, b in zip(edges, edges[1:])]}
    layout = {
        "title": "Distance to the nearest " + ("reference" if refs is not None else "other sample"),
        "xaxis": {"title": "distance"}, "yaxis": {"title": "samples"}, "height": 260,
        "shapes": [{"type": "line", "x0": threshold, "x1": threshold, "y0": 0, "y1": 1,
                    "yref": "paper", "line": {"color": "red", "dash": "dash"}}],
    }
    inputs.view("histogram", types.PlotlyView(data=[bars], layout=layout))
    if refs is None:
        label = (f"At {threshold}: {preview.num_dups} duplicates would be removed "
                 f"({preview.num_within} samples have a neighbour within it)")
    else:
        label = f"At {threshold}: {preview.num_dups} target samples duplicate a reference"
    inputs.view("preview", types.Notice(label=label))


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
    outputs.int("num_hashed", label="Files hashed in this run")
    outputs.int("num_unreadable", label="Unreadable files (skipped)")
    outputs.list("unreadable_paths", types.String(), label="First unreadable files")
    return types.Property(outputs)


def find_approx_outputs(params: dict) -> types.Property:
    outputs = _find_outputs(params, {"num_images_with_approx_dups": "Images in near-duplicate groups",
                                     "num_dups": "Duplicates deduplication would remove",
                                     "num_groups": "Groups"})
    outputs.float("threshold", label="Distance threshold used")
    return types.Property(outputs)


def cleanup_outputs(params: dict) -> types.Property:
    outputs = types.Object()
    if params.get("action", "delete") == "tag":
        outputs.int("num_tagged", label="Samples tagged")
        outputs.str("tag", label="Tag")
    else:
        outputs.int("num_deleted", label="Samples deleted")
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
        inputs.view(
            "warning",
            types.Warning(label=f"This permanently deletes {count} samples from the dataset"),
        )
    return form(inputs, label)


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
