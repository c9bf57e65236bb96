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
