"""Image deduplication operators for the FiftyOne App.

Each operator only translates between ``ctx`` and the plain functions of
:mod:`exact_dups`, :mod:`approx_dups` and :mod:`groups`. Every input has a
default that keeps the original behaviour; headless ``ctx.params`` holds only
what was sent, so defaults are applied with ``ctx.params.get``.
"""

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from . import approx_dups, exact_dups, groups, pixel_embeddings

REFERENCE_PARAMS = {"saved_view": "reference_view", "tag": "reference_tag", "dataset": "reference_dataset"}
RULE_LABELS = {
    groups.SEARCH: "Kept by the search (default: the original behaviour)",
    groups.FIRST_ADDED: "First added",
    "highest_resolution": "Highest resolution",
    "largest_file": "Largest file",
    "field_max": "Highest value of a field",
    "field_min": "Lowest value of a field",
}


def _target_view(ctx, inputs):
    """Adds the dataset / current view / selection choice; returns the target."""
    inputs.view_target(ctx)
    return ctx.target_view()


def _block(inputs, name, message):
    """Shows ``message`` as a warning that keeps the form from executing."""
    prop = inputs.view(name, types.Warning(label=message))
    prop.invalid = True
    prop.error_message = message


def _delegate_input(inputs, note):
    inputs.bool(
        "delegate",
        default=False,
        label="Delegate execution",
        description=f"Run as a delegated operation in the background. {note}",
        view=types.CheckboxView(),
    )


def _progress(ctx):
    return lambda fraction, label: ctx.set_progress(progress=fraction, label=label)


def _form(inputs, label):
    return types.Property(inputs, view=types.View(label=label))


def _choices(ctx, inputs, name, options: dict, default, label, description=None):
    """A radio group of ``{value: label}``; returns the chosen value."""
    radio = types.RadioGroup(label=label, description=description)
    for value, text in options.items():
        radio.add_choice(value, label=text)
    inputs.enum(name, radio.values(), default=default, view=radio)
    return ctx.params.get(name, default)


def _dropdown(inputs, name, values: list, label):
    """A required dropdown of ``values``, the first preselected."""
    menu = types.Dropdown(label=label)
    for value in values:
        menu.add_choice(value, label=value)
    inputs.enum(name, menu.values(), required=True, default=values[0] if values else None, view=menu)


def _references(ctx):
    """The collection a leakage check compares against, or None.

    Raises:
        ValueError: if the named saved view, tag or dataset is unusable
    """
    kind = ctx.params.get("compare_to", "none")
    if kind == "none":
        return None
    return groups.reference_collection(ctx.dataset, kind, ctx.params.get(REFERENCE_PARAMS.get(kind)))


def _compare_input(ctx, inputs):
    """Adds the leakage-check inputs; returns the references (or None) and
    an error message."""
    kinds = {"none": "No: find duplicates within the target",
             "saved_view": "A saved view", "tag": "Samples with a tag", "dataset": "Another dataset"}
    kind = _choices(ctx, inputs, "compare_to", kinds, "none", "Compare against (leakage check)",
                    "Report only target samples that duplicate a sample of this collection, "
                    "e.g. train samples leaking into test")
    if kind == "saved_view":
        _dropdown(inputs, "reference_view", ctx.dataset.list_saved_views(), "Saved view")
    elif kind == "tag":
        _dropdown(inputs, "reference_tag", sorted(ctx.dataset.distinct("tags")), "Tag")
    elif kind == "dataset":
        others = [n for n in fo.list_datasets() if n != ctx.dataset.name]
        _dropdown(inputs, "reference_dataset", others, "Dataset")
    try:
        return _references(ctx), None
    except ValueError as e:
        return None, str(e)


def _leak_outputs(outputs):
    outputs.int("num_leaked", label="Target samples that duplicate a reference")
    outputs.int("num_references", label="Reference samples")


class _FindOperator(foo.Operator):
    """A find operator: a dynamic form, run now or delegated."""

    name = label = description = icon = None

    @property
    def config(self):
        return foo.OperatorConfig(
            name=self.name,
            label=self.label,
            description=self.description,
            icon=self.icon,
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_delegation(self, ctx):
        return ctx.params.get("delegate", False)


class FindExactDuplicates(_FindOperator):
    name = "find_exact_duplicate_images"
    label = "Dedup: Find exact duplicates"
    description = "Hash every image file and group byte-identical copies"
    icon = "/assets/find.svg"

    def resolve_input(self, ctx):
        return _find_exact_form(ctx)

    def execute(self, ctx):
        refs = _references(ctx)
        options = dict(rehash=ctx.params.get("rehash", False), progress=_progress(ctx))
        if refs is None:
            result = exact_dups.find_exact_duplicates(ctx.target_view(), **options)
        else:
            result = exact_dups.find_exact_leaks(ctx.target_view(), refs, **options)
        ctx.ops.reload_dataset()
        return result.to_dict()

    def resolve_output(self, ctx):
        outputs = types.Object()
        if ctx.params.get("compare_to", "none") == "none":
            outputs.int("num_images_with_exact_dups", label="Images with exact duplicates")
            outputs.int("num_dups", label="Duplicates deduplication would remove")
        else:
            _leak_outputs(outputs)
        outputs.int("num_hashed", label="Files hashed in this run")
        outputs.int("num_unreadable", label="Unreadable files (skipped)")
        outputs.list("unreadable_paths", types.String(), label="First unreadable files")
        return types.Property(outputs)


def _find_exact_form(ctx):
    inputs = types.Object()
    if exact_dups.blake3 is None:
        _block(inputs, "missing_blake3", exact_dups.MISSING_BLAKE3)
    if len(_target_view(ctx, inputs)) == 0:
        _block(inputs, "empty", "There are no samples to search for duplicates")
    _, error = _compare_input(ctx, inputs)
    if error:
        _block(inputs, "bad_reference", error)
    if exact_dups.has_foreign_filehash(ctx.dataset):
        inputs.view("foreign_filehash", types.Notice(label=exact_dups.FOREIGN_FILEHASH))
    inputs.bool(
        "rehash",
        default=False,
        label="Rehash all files",
        description="Also hash files that already have a filehash (e.g. files changed on disk)",
    )
    _delegate_input(inputs, "Recommended for large datasets.")
    return _form(inputs, "Find exact duplicates")


class FindApproximateDuplicates(_FindOperator):
    name = "find_approximate_duplicate_images"
    label = "Dedup: Find approximate duplicates"
    description = "Group near-duplicate images with a similarity index, or build one from pixels"
    icon = "/assets/approx.svg"

    def resolve_input(self, ctx):
        return _find_approx_form(ctx)

    def execute(self, ctx):
        params = ctx.params
        source = params.get("index_source", "existing")
        new_index = None
        if source != "existing":
            new_index = approx_dups.NewIndex(
                source, params.get("new_brain_key", pixel_embeddings.DEFAULT_BRAIN_KEY),
                params.get("model_name"),
            )
        result = approx_dups.find(
            ctx.target_view(),
            brain_key=params.get("sim_choices"),
            new_index=new_index,
            references=_references(ctx),
            method=params.get("method_choices", "threshold"),
            threshold=params.get("threshold_value", _default_threshold(source)),
            fraction=params.get("dup_fraction", approx_dups.DEFAULT_FRACTION),
            progress=_progress(ctx),
        )
        ctx.ops.reload_dataset()
        return result.to_dict()

    def resolve_output(self, ctx):
        outputs = types.Object()
        if ctx.params.get("compare_to", "none") == "none":
            outputs.int("num_images_with_approx_dups", label="Images in near-duplicate groups")
            outputs.int("num_dups", label="Duplicates deduplication would remove")
            outputs.int("num_groups", label="Groups")
        else:
            _leak_outputs(outputs)
        outputs.float("threshold", label="Distance threshold used")
        return types.Property(outputs)


def _default_threshold(source):
    if source == "pixels":
        return pixel_embeddings.DEFAULT_THRESHOLD
    return approx_dups.DEFAULT_THRESHOLD


def _find_approx_form(ctx):
    inputs = types.Object()
    target = _target_view(ctx, inputs)
    if len(target) == 0:
        _block(inputs, "empty", "There are no samples to search for duplicates")
    refs, error = _compare_input(ctx, inputs)
    if error:
        _block(inputs, "bad_reference", error)
    source, brain_key = _index_input(ctx, inputs)
    leak = ctx.params.get("compare_to", "none") != "none"
    method = "threshold"
    if not leak:
        method = _choices(ctx, inputs, "method_choices",
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
    _delegate_input(inputs, "Recommended above ~50,000 samples.")
    return _form(inputs, "Find approximate duplicates")


def _index_input(ctx, inputs):
    """Adds the similarity index choice: an existing brain run, or a new one
    from pixels or a zoo model. Returns the source and the existing brain
    key (None for a new index)."""
    brain_keys = approx_dups.similarity_brain_keys(ctx.dataset)
    sources = {
        "existing": "An existing similarity index",
        "pixels": "New index from pixels (built in, no download)",
        "model": "New index from a FiftyOne zoo model (downloads weights)",
    }
    if not brain_keys:
        del sources["existing"]
        inputs.view("no_index", types.Notice(label=approx_dups.NO_INDEX_MESSAGE))
    default = "existing" if brain_keys else "pixels"
    source = _choices(ctx, inputs, "index_source", sources, default, "Where the similarity comes from")
    if source == "existing":
        _dropdown(inputs, "sim_choices", brain_keys, "Similarity index")
        return source, ctx.params.get("sim_choices", brain_keys[0])
    if source == "model":
        inputs.str("model_name", required=True, label="Zoo model", description=approx_dups.MODEL_HELP)
    inputs.str("new_brain_key", default=pixel_embeddings.DEFAULT_BRAIN_KEY,
               label="Brain key of the new index",
               description="The whole dataset is indexed as a regular similarity brain run; "
               "run find again afterwards to see the distance histogram")
    return source, None


def _threshold_input(ctx, inputs, source):
    default = _default_threshold(source)
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


def _threshold_preview(inputs, target, brain_key, threshold, refs):
    """The nearest-neighbour distance histogram with the threshold marked,
    and what the threshold would find."""
    try:
        preview = approx_dups.threshold_preview(target, brain_key, threshold or 0.0, refs)
    except ValueError as e:
        _block(inputs, "bad_index", str(e))
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


class _DisplayOperator(foo.Operator):
    """Shows a find operator's result grouped in the App."""

    name = label = icon = None
    groups_view = None  # function(dataset) -> DatasetView

    @property
    def config(self):
        return foo.OperatorConfig(name=self.name, label=self.label, icon=self.icon)

    def execute(self, ctx):
        view = type(self).groups_view(ctx.dataset)
        if len(view) == 0:
            raise ValueError("No duplicates were found: nothing to display")
        ctx.ops.set_view(view=view)
        return {"num_groups": len(view)}


class DisplayExactDuplicates(_DisplayOperator):
    name = "display_exact_duplicate_groups"
    label = "Dedup: Display exact duplicates"
    icon = "/assets/groups.svg"
    groups_view = exact_dups.exact_dup_groups_view


class DisplayApproximateDuplicates(_DisplayOperator):
    name = "display_approximate_duplicate_groups"
    label = "Dedup: Display approximate duplicates"
    icon = "/assets/groups.svg"
    groups_view = approx_dups.approx_dup_groups_view


class _DeleteOperator(foo.Operator):
    """Deletes (or tags) the duplicates a find operator left in its saved view."""

    name = label = icon = None
    keep_representative = False
    default_rule = groups.FIRST_ADDED
    module = None  # exact_dups or approx_dups

    @property
    def config(self):
        return foo.OperatorConfig(name=self.name, label=self.label, icon=self.icon, dynamic=True)

    def resolve_input(self, ctx):
        return _cleanup_form(ctx, self)

    def execute(self, ctx):
        cleanup = _cleanup(ctx, self)
        count = self.module.clean_duplicates(ctx.dataset, cleanup)
        ctx.ops.reload_dataset()
        if cleanup.action == "tag":
            return {"num_tagged": count, "tag": cleanup.tag}
        return {"num_deleted": count}

    def resolve_output(self, ctx):
        outputs = types.Object()
        if ctx.params.get("action", "delete") == "tag":
            outputs.int("num_tagged", label="Samples tagged")
            outputs.str("tag", label="Tag")
        else:
            outputs.int("num_deleted", label="Samples deleted")
        return types.Property(outputs)


def _cleanup(ctx, operator) -> groups.Cleanup:
    params = ctx.params
    return groups.Cleanup(
        keep_representative=operator.keep_representative,
        rule=params.get("representative", operator.default_rule),
        field=params.get("representative_field"),
        action=params.get("action", "delete"),
        tag=params.get("tag", groups.DEFAULT_TAG),
    )


def _cleanup_form(ctx, operator):
    inputs = types.Object()
    try:
        count = operator.module.count_to_delete(ctx.dataset, operator.keep_representative)
    except ValueError as e:
        _block(inputs, "not_found", str(e))
        return _form(inputs, operator.label)
    if operator.keep_representative:
        _representative_input(ctx, inputs, operator.default_rule)
    actions = {"delete": "Delete them", "tag": "Tag them for review (nothing is deleted)"}
    action = _choices(ctx, inputs, "action", actions, "delete", "Action")
    if action == "tag":
        inputs.str("tag", default=groups.DEFAULT_TAG, label="Tag")
    if count == 0:
        _block(inputs, "nothing", "There are no duplicates to delete")
    elif action == "tag":
        tag = ctx.params.get("tag", groups.DEFAULT_TAG)
        inputs.view("notice", types.Notice(label=f"This tags {count} samples '{tag}'"))
    else:
        inputs.view(
            "warning",
            types.Warning(label=f"This permanently deletes {count} samples from the dataset"),
        )
    return _form(inputs, operator.label)


def _representative_input(ctx, inputs, default_rule):
    rules = {r: RULE_LABELS[r] for r in groups.RULES if r != groups.SEARCH or default_rule == groups.SEARCH}
    rules = {default_rule: rules.pop(default_rule), **rules}
    rule = _choices(ctx, inputs, "representative", rules, default_rule, "Keep per group",
                    "Ties go to the sample added first; samples without a value are kept last")
    if rule.startswith("field_"):
        fields = groups.numeric_fields(ctx.dataset)
        if fields:
            _dropdown(inputs, "representative_field", fields, "Numeric field")
        else:
            _block(inputs, "no_field", "The dataset has no numeric sample field")


class RemoveAllExactDuplicates(_DeleteOperator):
    name = "remove_all_exact_duplicates"
    label = "Dedup: Remove all exact duplicates"
    icon = "/assets/delete.svg"
    module = exact_dups


class DeduplicateExactDuplicates(_DeleteOperator):
    name = "deduplicate_exact_duplicates"
    label = "Dedup: Deduplicate exact duplicates"
    icon = "/assets/keep-one.svg"
    keep_representative = True
    module = exact_dups


class RemoveAllApproximateDuplicates(_DeleteOperator):
    name = "remove_all_approximate_duplicates"
    label = "Dedup: Remove all approximate duplicates"
    icon = "/assets/delete.svg"
    module = approx_dups


class DeduplicateApproximateDuplicates(_DeleteOperator):
    name = "deduplicate_approximate_duplicates"
    label = "Dedup: Deduplicate approximate duplicates"
    icon = "/assets/keep-one.svg"
    keep_representative = True
    default_rule = groups.SEARCH
    module = approx_dups


OPERATORS = (
    FindExactDuplicates,
    DisplayExactDuplicates,
    RemoveAllExactDuplicates,
    DeduplicateExactDuplicates,
    FindApproximateDuplicates,
    DisplayApproximateDuplicates,
    RemoveAllApproximateDuplicates,
    DeduplicateApproximateDuplicates,
)


def register(plugin):
    for operator in OPERATORS:
        plugin.register(operator)
