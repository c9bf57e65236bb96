"""Image deduplication operators for the FiftyOne App.

Each operator only translates between ``ctx`` and the plain functions of
:mod:`exact_dups` and :mod:`approx_dups`.
"""

import fiftyone.operators as foo
import fiftyone.operators.types as types

from . import approx_dups, exact_dups


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


class FindExactDuplicates(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="find_exact_duplicate_images",
            label="Dedup: Find exact duplicates",
            description="Hash every image file and group byte-identical copies",
            icon="/assets/find.svg",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        return _find_exact_form(ctx)

    def resolve_delegation(self, ctx):
        return ctx.params.get("delegate", False)

    def execute(self, ctx):
        result = exact_dups.find_exact_duplicates(
            ctx.target_view(),
            rehash=ctx.params.get("rehash", False),
            progress=_progress(ctx),
        )
        ctx.ops.reload_dataset()
        return result.to_dict()

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_images_with_exact_dups", label="Images with exact duplicates")
        outputs.int("num_dups", label="Duplicates deduplication would remove")
        outputs.int("num_hashed", label="Files hashed in this run")
        outputs.int("num_unreadable", label="Unreadable files (skipped)")
        outputs.list("unreadable_paths", types.String(), label="First unreadable files")
        return types.Property(outputs)


def _find_exact_form(ctx):
    inputs = types.Object()
    if len(_target_view(ctx, inputs)) == 0:
        _block(inputs, "empty", "There are no samples to search for duplicates")
    inputs.bool(
        "rehash",
        default=False,
        label="Rehash all files",
        description="Also hash files that already have a filehash (e.g. files changed on disk)",
    )
    _delegate_input(inputs, "Recommended for large datasets.")
    return _form(inputs, "Find exact duplicates")


class FindApproximateDuplicates(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="find_approximate_duplicate_images",
            label="Dedup: Find approximate duplicates",
            description="Group near-duplicate images with a similarity index",
            icon="/assets/approx.svg",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        return _find_approx_form(ctx)

    def resolve_delegation(self, ctx):
        return ctx.params.get("delegate", False)

    def execute(self, ctx):
        params = ctx.params
        result = approx_dups.find_approximate_duplicates(
            ctx.target_view(),
            brain_key=params.get("sim_choices"),
            method=params.get("method_choices", "threshold"),
            threshold=params.get("threshold_value", approx_dups.DEFAULT_THRESHOLD),
            fraction=params.get("dup_fraction", approx_dups.DEFAULT_FRACTION),
            progress=_progress(ctx),
        )
        ctx.ops.reload_dataset()
        return result.to_dict()

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_images_with_approx_dups", label="Images in near-duplicate groups")
        outputs.int("num_dups", label="Duplicates deduplication would remove")
        outputs.int("num_groups", label="Groups")
        outputs.float("threshold", label="Distance threshold used")
        return types.Property(outputs)


def _find_approx_form(ctx):
    inputs = types.Object()
    target = _target_view(ctx, inputs)
    brain_keys = approx_dups.similarity_brain_keys(ctx.dataset)
    if not brain_keys:
        _block(inputs, "no_index", approx_dups.NO_INDEX_MESSAGE)
        return _form(inputs, "Find approximate duplicates")
    if len(target) == 0:
        _block(inputs, "empty", "There are no samples to search for duplicates")
    keys = types.Dropdown(label="Similarity index")
    for key in brain_keys:
        keys.add_choice(key, label=key)
    inputs.enum("sim_choices", keys.values(), default=brain_keys[0], required=True, view=keys)

    methods = types.RadioGroup(label="Method")
    methods.add_choice("threshold", label="Distance threshold")
    methods.add_choice("fraction", label="Fraction of duplicates")
    inputs.enum("method_choices", methods.values(), default="threshold", view=methods)
    if ctx.params.get("method_choices", "threshold") == "threshold":
        inputs.float(
            "threshold_value",
            default=approx_dups.DEFAULT_THRESHOLD,
            min=0.0,
            label="Distance threshold",
            description="Images closer than this in the index's metric are duplicates "
            "(cosine distance: 0 = same direction, 2 = opposite)",
        )
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
        return {"num_samples": len(view)}


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
    """Deletes the duplicates a find operator left in its saved view."""

    name = label = icon = None
    keep_representative = False
    module = None  # exact_dups or approx_dups

    @property
    def config(self):
        return foo.OperatorConfig(name=self.name, label=self.label, icon=self.icon, dynamic=True)

    def resolve_input(self, ctx):
        inputs = types.Object()
        try:
            count = self.module.count_to_delete(ctx.dataset, self.keep_representative)
        except ValueError as e:
            _block(inputs, "not_found", str(e))
            return _form(inputs, self.label)
        if count == 0:
            _block(inputs, "nothing", "There are no duplicates to delete")
        else:
            inputs.view(
                "warning",
                types.Warning(label=f"This permanently deletes {count} samples from the dataset"),
            )
        return _form(inputs, self.label)

    def execute(self, ctx):
        num_deleted = self.module.delete_duplicates(ctx.dataset, self.keep_representative)
        ctx.ops.reload_dataset()
        return {"num_deleted": num_deleted}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_deleted", label="Samples deleted")
        return types.Property(outputs)


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
