"""The approximate find's criterion in its form: a distance threshold
checked against the index's metric while the user types, or a fraction of
duplicates, with the nearest-neighbour histogram and what the value would
find (:mod:`threshold_preview`)."""

from typing import Optional

import fiftyone.operators.types as types

from . import approx_dups, pixel_embeddings, threshold_preview, verification
from .form_widgets import block, choices, histogram


def threshold_key(default: float) -> str:
    """The form's name for the threshold field, one per default value: the
    App keeps a field's value while its name stays, so choosing an index with
    another default would leave the old default in the field."""
    return "threshold_value_" + f"{default:g}".replace(".", "_")


def threshold_param(params: dict, default: float) -> Optional[float]:
    """The threshold the params ask for: ``threshold_value`` (the Python
    API's name), else the form's field for this default, else the default."""
    if "threshold_value" in params:
        return params["threshold_value"]
    return params.get(threshold_key(default), default)


def threshold_input(ctx, inputs: types.Object, source) -> float:
    """The threshold, checked while the user types against the index's
    metric (cosine distances end at 2)."""
    default = source.default_threshold(ctx.dataset, ctx.params)
    try:
        limit = 2.0 if source.metric(ctx.dataset, ctx.params) == "cosine" else None
    except ValueError:  # the index input says what is wrong
        limit = None
    prop = inputs.float(
        threshold_key(default),
        default=default,
        min=0.0,
        max=limit,
        label="Distance threshold",
        description="Images closer than this in the index's metric are duplicates "
        "(cosine distance: 0 = same direction, 2 = opposite; pixel index: "
        f"{verification.CANDIDATE_THRESHOLD} with verification, "
        f"{pixel_embeddings.DEFAULT_THRESHOLD} without)",
    )
    value = threshold_param(ctx.params, default)
    if value is None:
        prop.invalid = True
        prop.error_message = "Enter a distance threshold"
    return value


def criterion_input(ctx, inputs: types.Object, source, leak_check: bool) -> tuple:
    """Adds the method (not in a leakage check) and its threshold or
    fraction input; returns ``(method, value)``."""
    method = "threshold"
    if not leak_check:
        method = choices(ctx, inputs, "method_choices",
                         {"threshold": "Distance threshold", "fraction": "Fraction of duplicates"},
                         "threshold", "Method")
    if method == "threshold":
        return method, threshold_input(ctx, inputs, source)
    inputs.float(
        "dup_fraction",
        default=approx_dups.DEFAULT_FRACTION,
        min=0.0,
        max=1.0,
        label="Fraction of duplicates",
        description="The threshold is tuned so that this fraction of images are duplicates "
        "(0.1 = one image in ten)",
    )
    return method, ctx.params.get("dup_fraction", approx_dups.DEFAULT_FRACTION)


def preview(inputs: types.Object, target, brain_key: str, method: str, value, refs) -> None:
    """The nearest-neighbour distance histogram with the threshold marked,
    and what the threshold (or the fraction's threshold) would find."""
    try:
        threshold = value or 0.0
        if method == "fraction":
            threshold = threshold_preview.fraction_threshold(target, brain_key, value or 0.0)
        preview = threshold_preview.threshold_preview(target, brain_key, threshold or 0.0, refs)
    except ValueError as e:
        block(inputs, "bad_index", str(e))
        return
    histogram(inputs, "histogram", preview.bin_edges, preview.counts, threshold, histogram_title(refs))
    if method == "fraction":
        label = (f"Fraction {value} removes about {preview.num_dups} samples: "
                 f"threshold ≈ {threshold:.4g}" if threshold is not None
                 else f"Fraction {value} removes no samples")
    elif refs is None:
        label = (f"At {threshold}: {preview.num_dups} duplicates would be removed "
                 f"({preview.num_within} samples have a neighbour within it)")
    else:
        label = f"At {threshold}: {preview.num_dups} target samples duplicate a reference"
    inputs.view("preview", types.Notice(label=label))


def histogram_title(refs) -> str:
    return "Distance to the nearest " + ("reference" if refs is not None else "other sample")
