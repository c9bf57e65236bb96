"""The repository root imported as a package, as FiftyOne does, with no
other side effect (no database): for benchmarks that only need the library."""

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "image_dedup"


def import_plugin_package(name: str = PACKAGE):
    """Imports the repository root as a package, as FiftyOne does, so the
    library modules can be used directly (they import each other relatively)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
