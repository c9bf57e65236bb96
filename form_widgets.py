"""The few form widgets every operator form is built from, written once."""

from typing import Optional

import fiftyone.operators.types as types


def block(inputs: types.Object, name: str, message: str) -> None:
    """Shows ``message`` as a warning that keeps the form from executing."""
    prop = inputs.view(name, types.Warning(label=message))
    prop.invalid = True
    prop.error_message = message


def choices(ctx, inputs: types.Object, name: str, options: dict, default, label: str,
            description: Optional[str] = None):
    """A radio group of ``{value: label}``; returns the chosen value."""
    radio = types.RadioGroup(label=label, description=description)
    for value, text in options.items():
        radio.add_choice(value, label=text)
    inputs.enum(name, radio.values(), default=default, view=radio)
    return ctx.params.get(name, default)


def dropdown(inputs: types.Object, name: str, values: list, label: str, required: bool = True) -> None:
    """A dropdown of ``values``, the first preselected. Not ``required``: a
    headless call without it gets the first value, as the form shows."""
    menu = types.Dropdown(label=label)
    for value in values:
        menu.add_choice(value, label=value)
    inputs.enum(name, menu.values(), required=required, default=values[0] if values else None, view=menu)


def histogram(inputs: types.Object, name: str, edges: list, counts: list, threshold, title: str) -> None:
    """A bar chart of nearest-neighbour distances (``counts`` per bin of
    ``edges``), with ``threshold`` marked by a dashed red line."""
    bars = {"type": "bar", "name": "samples",
            "x": [(a + b) / 2 for a, b in zip(edges, edges[1:])], "y": counts,
            "width": [b - a for a, b in zip(edges, edges[1:])]}
    layout = {  # the App's Plotly 3 takes titles as {"text": ...} only, and leaves no margin for them
        "title": {"text": title}, "margin": {"t": 40, "l": 50, "b": 50, "r": 10},
        "xaxis": {"title": {"text": "distance to nearest neighbour"}},
        "yaxis": {"title": {"text": "samples"}},
        "height": 300,
        "shapes": [{"type": "line", "x0": threshold, "x1": threshold, "y0": 0, "y1": 1,
                    "yref": "paper", "line": {"color": "red", "dash": "dash"}}],
    }
    inputs.view(name, types.PlotlyView(data=[bars], layout=layout))
