"""ARCHITECTURE.md's map, checked: the library's modules import only downwards.

Each unit (a top-level module of ``inception``, a subpackage, or ``inception_cli``) has a layer;
a unit may import units of lower layers and of its own layer where ARCHITECTURE.md draws the
arrow, never a higher one, and the arrows between units form no circle. Imports inside functions
count: they are arrows too, only deferred.
"""

import ast
import collections
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ARCHITECTURE.md "Layers", bottom first. Keep the two in step.
LAYERS = (
    (
        "fileio",
        "paths",
        "networks",
        "recipe",
        "checks",
        "console",
        "keras_internals",
        "runfiles",
        "lazy",
    ),
    ("layers",),
    ("blocks", "heads", "compute"),
    ("models",),
    ("weights", "data"),
    ("applications", "hub", "train", "export"),
    ("evaluation", "experiments", "prediction"),
    ("inception_cli",),
)
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _unit(module):
    parts = module.split(".")
    if parts[0] == "inception_cli":
        return "inception_cli"
    if parts[0] != "inception" or len(parts) == 1:
        return None
    return parts[1]


def _imports(path):
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def arrows():
    """{unit: {units it imports}} over inception/ and inception_cli/."""
    found = collections.defaultdict(set)
    for package in ("inception", "inception_cli"):
        for directory, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                source = _unit(module.removesuffix(".__init__"))
                for imported in _imports(path):
                    target = _unit(imported)
                    if source and target and target != source:
                        found[source].add(target)
    return found


def test_every_unit_has_a_layer():
    units = set(arrows()) | {t for targets in arrows().values() for t in targets}
    assert units <= set(LAYER), (
        f"units missing from LAYERS (and ARCHITECTURE.md): {sorted(units - set(LAYER))}"
    )


def test_imports_go_down_the_layers():
    upward = sorted(
        f"{s} (layer {LAYER[s]}) imports {t} (layer {LAYER[t]})"
        for s, targets in arrows().items()
        for t in targets
        if LAYER.get(t, -1) > LAYER.get(s, -1)
    )
    assert not upward, "imports that go up the layers:\n" + "\n".join(upward)


def test_no_circle():
    graph = arrows()
    state = {}

    def visit(unit, path):
        state[unit] = "open"
        for target in sorted(graph.get(unit, ())):
            if state.get(target) == "open":
                pytest.fail("a circle of imports: " + " -> ".join(path + [unit, target]))
            if target not in state:
                visit(target, path + [unit])
        state[unit] = "done"

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [])
