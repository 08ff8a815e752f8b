"""The package's shape: imports run one way, and Django's private API is used in
``_compat.py`` only. Read from the source, so that a new import or a new use of a
private attribute fails here, not in a user's upgrade."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "belongsto_ext"

# Each module may import only modules of a later layer (top to bottom); a
# module not listed fails the test until it is placed.
LAYERS: list[set[str]] = [
    {"", "apps", "management.commands.check_counters", "management.commands.rebuild_counters"},
    {"management.commands._counted"},
    {"fields", "contenttypes.fields"},
    {"methods", "descriptors", "counters", "contenttypes.deletion"},
    {"accessors", "contenttypes.accessors", "triggers"},
    {"batch", "tracking", "keys"},
    {"policy"},
    {"answers", "peers"},
    {"scopes"},
    {"static"},
    {"types", "relation", "_compat"},
]  # fmt: skip
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
# Packages whose __init__ holds nothing to import from.
EMPTY = {"contenttypes", "management", "management.commands"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path) -> set[str]:
    """The package's modules ``name`` imports: module level, under TYPE_CHECKING
    and inside functions alike."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if name == "":
        package = []
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("belongsto_ext."):
                    found.add(alias.name.removeprefix("belongsto_ext."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and (node.module + ".").startswith("belongsto_ext."):
                module = node.module.removeprefix("belongsto_ext").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}" if module else alias.name
                found.add(sub if sub in modules() else module)
    return found - {name} - EMPTY


def test_every_module_has_a_layer() -> None:
    assert sorted(set(modules()) - set(LAYER) - EMPTY) == []


@pytest.mark.parametrize("name", sorted(set(modules()) - EMPTY))
def test_imports_run_one_way(name: str) -> None:
    back = sorted(
        target for target in imported(name, modules()[name]) if LAYER.get(target, -1) <= LAYER[name]
    )
    assert back == [], f"{name or '__init__'} imports {back}, which are not below it"


# Django's private API: the per-instance state, private Options members, Query
# internals, QuerySet internals, router hints, and frame inspection.
PRIVATE = re.compile(
    r"\._state\b|_meta\._[a-z]|\.query\.|_iterable_class|\._db\b|_hints|sys\._getframe"
)


@pytest.mark.parametrize("name", sorted(set(modules()) - {"_compat"}))
def test_django_private_api_only_in_compat(name: str) -> None:
    lines = modules()[name].read_text().splitlines()
    used = [f"{n}: {line.strip()}" for n, line in enumerate(lines, 1) if PRIVATE.search(line)]
    assert used == []


def test_the_layout_test_sees_a_back_edge(tmp_path: Path) -> None:
    """The check itself: an import of fields from a lower module is reported."""
    path = tmp_path / "answers.py"
    path.write_text("from .fields import BelongsToField\ndef f():\n    from . import batch\n")
    assert imported("answers", path) == {"fields", "batch"}
