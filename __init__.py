"""Image deduplication operators for the FiftyOne App.

Each operator only translates between ``ctx`` and plain functions: its form
is built in :mod:`forms`, its work done by :mod:`exact_dups`,
:mod:`approx_dups`, :mod:`leakage` and :mod:`cleanup`. Display and delete
operators are given the :class:`results.Workflow` whose result they use.
"""

import fiftyone.operators as foo

from . import approx_dups, cleanup, exact_dups, find_lock, forms, index_sources, leakage
from . import representatives, threshold_form
from .results import require_samples
from .review_panel import OpenReviewPanel, ReviewDuplicatesPanel


REVIEW_HINT = "Compare each group side by side before deleting: 'Dedup: Review duplicates'"


def _progress(ctx, renew_lock):
    def report(fraction: float, label: str) -> None:
        renew_lock()
        ctx.set_progress(progress=fraction, label=label)

    return report


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
        # None lets request_delegation (or the App's Schedule choice) decide
        return True if ctx.params.get("delegate") else None

    def execute(self, ctx):
        with find_lock.held(ctx.dataset) as renew_lock:
            result = self.find(ctx, _progress(ctx, renew_lock))
        ctx.ops.reload_dataset()
        return {**result.to_dict(), **forms.where_results_are(ctx.params, self.workflow)}

    def find(self, ctx, progress):
        """Runs the find or the leakage check the params ask for."""
        raise NotImplementedError


class FindExactDuplicates(_FindOperator):
    workflow = exact_dups.WORKFLOW
    name = "find_exact_duplicate_images"
    label = exact_dups.FIND_LABEL
    description = "Find byte-identical copies: hash every image file and group them"
    icon = "/assets/find.svg"

    def resolve_input(self, ctx):
        return forms.find_exact_form(ctx)

    def find(self, ctx, progress):
        refs = forms.references(ctx)
        options = dict(rehash=ctx.params.get("rehash", False), progress=progress,
                       num_readers=ctx.params.get("num_readers") or None)
        if refs is None:
            return exact_dups.find_exact_duplicates(forms.find_target(ctx), **options)
        return leakage.find_exact_leaks(forms.find_target(ctx), refs, **options)

    def resolve_output(self, ctx):
        return forms.find_exact_outputs(ctx.params)


class FindApproximateDuplicates(_FindOperator):
    workflow = approx_dups.WORKFLOW
    name = "find_approximate_duplicate_images"
    label = approx_dups.FIND_LABEL
    description = "Find near-duplicate images with a similarity index, or one built from pixels"
    icon = "/assets/approx.svg"

    def resolve_input(self, ctx):
        return forms.find_approx_form(ctx)

    def find(self, ctx, progress):
        params, target, refs = ctx.params, forms.find_target(ctx), forms.references(ctx)
        source = index_sources.get_source(ctx.dataset, params)
        method, threshold, fraction = _approx_criteria(ctx.dataset, params, refs, source)
        approx_dups.validate_criteria(method, threshold, fraction, source.metric(ctx.dataset, params))
        require_samples(target)
        brain_key = source.brain_key(ctx.dataset, params, progress)  # a new index is built here
        if refs is None:
            return approx_dups.find_approximate_duplicates(
                target, brain_key, method, threshold, fraction, progress,
                verify=params.get("verify", source.verifies(ctx.dataset, params)),
                mirror=params.get("mirror", True), search=params.get("search", "auto"),
            )
        return leakage.find_approximate_leaks(target, refs, brain_key, threshold, progress)

    def resolve_output(self, ctx):
        return forms.find_approx_outputs(ctx)


def _approx_criteria(dataset, params: dict, refs, source) -> tuple:
    """``(method, threshold, fraction)`` from the params, with the defaults
    of the form; a leakage check takes a threshold only."""
    method = params.get("method_choices", "threshold")
    if refs is not None and method != "threshold":
        raise ValueError("method_choices must be 'threshold' when comparing against references")
    threshold = threshold_form.threshold_param(params, source.default_threshold(dataset, params))
    return method, threshold, params.get("dup_fraction", approx_dups.DEFAULT_FRACTION)


class _DisplayOperator(foo.Operator):
    """Shows a find operator's result grouped in the App."""

    name = label = icon = workflow = None

    @property
    def config(self):
        return foo.OperatorConfig(name=self.name, label=self.label, icon=self.icon,
                                  description=f"Grid of the groups the last {self.workflow.name} find "
                                  "left, one tile per group")

    def execute(self, ctx):
        """Expected situations (no find yet, nothing found) are a one-line
        notification, not an error dialog."""
        try:
            view = self.workflow.groups_view(ctx.dataset)
        except ValueError as e:
            return self._say(ctx, str(e))
        if len(view) == 0:
            return self._say(ctx, f"The last {self.workflow.name} find found no duplicates: "
                                  "nothing to display")
        ctx.ops.set_view(view=view)
        ctx.ops.notify(REVIEW_HINT)  # a passing note: an output dialog would cover the grid
        return {"num_groups": len(view), "review": REVIEW_HINT}

    @staticmethod
    def _say(ctx, message: str) -> dict:
        ctx.ops.notify(message, variant="warning")
        return {"num_groups": 0, "message": message}


class DisplayExactDuplicates(_DisplayOperator):
    name = "display_exact_duplicate_groups"
    label = "Dedup: Display exact duplicates"
    icon = "/assets/groups.svg"
    workflow = exact_dups.WORKFLOW


class DisplayApproximateDuplicates(_DisplayOperator):
    name = "display_approximate_duplicate_groups"
    label = "Dedup: Display approximate duplicates"
    icon = "/assets/groups.svg"
    workflow = approx_dups.WORKFLOW


class _DeleteOperator(foo.Operator):
    """Deletes (or tags) the duplicates a find operator left in its saved view."""

    name = label = icon = workflow = None
    keep_representative = False
    default_rule = representatives.FIRST_ADDED

    @property
    def config(self):
        what = ("Keep one per group, delete (or tag) the others" if self.keep_representative
                else "Remove (or tag) every member of every group, originals too")
        return foo.OperatorConfig(name=self.name, label=self.label, icon=self.icon, dynamic=True,
                                  description=f"{what}, of the last {self.workflow.name} find's result")

    def resolve_input(self, ctx):
        return forms.cleanup_form(
            ctx, self.workflow, self.keep_representative, self.default_rule, self.label
        )

    def execute(self, ctx):
        params = ctx.params
        request = cleanup.Cleanup(
            keep_representative=self.keep_representative,
            rule=params.get("representative", self.default_rule),
            field=params.get("representative_field"),
            action=params.get("action", "delete"),
            tag=params.get("tag", cleanup.DEFAULT_TAG),
        )
        result = cleanup.apply_cleanup(ctx.dataset, self.workflow, request)
        ctx.ops.reload_dataset()
        return result.to_dict()

    def resolve_output(self, ctx):
        return forms.cleanup_outputs(ctx.params)


class RemoveAllExactDuplicates(_DeleteOperator):
    name = "remove_all_exact_duplicates"
    label = "Dedup: Remove all exact duplicates"
    icon = "/assets/delete.svg"
    workflow = exact_dups.WORKFLOW


class DeduplicateExactDuplicates(_DeleteOperator):
    name = "deduplicate_exact_duplicates"
    label = "Dedup: Deduplicate exact duplicates"
    icon = "/assets/keep-one.svg"
    keep_representative = True
    workflow = exact_dups.WORKFLOW


class RemoveAllApproximateDuplicates(_DeleteOperator):
    name = "remove_all_approximate_duplicates"
    label = "Dedup: Remove all approximate duplicates"
    icon = "/assets/delete.svg"
    workflow = approx_dups.WORKFLOW


class DeduplicateApproximateDuplicates(_DeleteOperator):
    name = "deduplicate_approximate_duplicates"
    label = "Dedup: Deduplicate approximate duplicates"
    icon = "/assets/keep-one.svg"
    keep_representative = True
    default_rule = representatives.SEARCH
    workflow = approx_dups.WORKFLOW


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
    for operator in OPERATORS + (OpenReviewPanel, ReviewDuplicatesPanel):
        plugin.register(operator)
