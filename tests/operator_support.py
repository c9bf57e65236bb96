"""Running the plugin's operators as the App and scripts do: execution
through ``execute_operator`` and form resolution through the same
``resolve_type`` request the App sends while the user types."""

import asyncio

import fiftyone.operators as foo
import fiftyone.operators.executor as foe
from conftest import PLUGIN


def run(name: str, dataset=None, view=None, selected=None, **params):
    """Executes ``@fo-dedup/image-dedup/<name>`` and returns the result."""
    ctx = dict(dataset=dataset, view=view, selected=selected or [], params=params)
    return foo.execute_operator(f"{PLUGIN}/{name}", ctx={k: v for k, v in ctx.items() if v is not None})


def form(name: str, dataset, view=None, selected=None, **params) -> dict:
    """The operator's input form for ``params``, as JSON: {input name: property}."""
    request = dict(dataset_name=dataset.name, params=params, selected=selected or [])
    if view is not None:
        request["view"] = view._serialize()
    uri = f"{PLUGIN}/{name}"
    prop = asyncio.run(foe.resolve_type(foo.OperatorRegistry(), uri, request))
    return prop.to_json()["type"]["properties"]


def labels(properties: dict) -> list:
    """The labels of the form's notices and warnings."""
    return [p["view"].get("label") for p in properties.values() if p["view"].get("label")]


def blocking(properties: dict) -> list:
    """The names of the inputs that keep the form from executing."""
    return [name for name, p in properties.items() if p.get("invalid")]
