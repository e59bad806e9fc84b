"""The house's floors (docs/architecture.md): every import statement in nnrules/ and widgets/ — top level, inside a
function, under ``if TYPE_CHECKING`` — goes down a floor or stays in its room, and none closes a circle.

The graph is read from the source with ``ast``, so a lazy import inside a function counts as much as one at the top.
``from package import name`` counts as importing the package (its ``__init__`` runs) and, when ``name`` is a
submodule, that module too: the strictest reading, so that no tool reading imports another way finds a circle.
"""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Floors, top first: a module may import its own floor's modules and any floor below, never one above. Inside a
#: floor, rooms separated into a tuple may not import each other (``independent``). The names are module prefixes.
FLOORS: list[tuple[str, ...]] = [
    ("nnrules.__main__",),
    ("nnrules.cli",),
    ("nnrules.widgets",),  # the views: ipywidgets panels and plotly figures (everything in widgets/ but state/)
    ("nnrules.widgets.state",),  # the app's headless state
    ("nnrules",),  # the facade: nnrules/__init__ re-exports the public names
    ("nnrules.evaluation", "nnrules.zoo"),
    ("nnrules.miners",),
    ("nnrules.attribution", "nnrules.scale"),
    ("nnrules.recording",),
    ("nnrules.data",),
    ("nnrules.registry",),
    ("nnrules.params",),
    ("nnrules._lazy",),
]
#: Floors inside the miners: the package, the families (which never import each other), the itemsets the patches
#: miner uses, then what every family shares (comparing, evidence by resampling, when two rules are the same, the
#: contract, the flow).
MINER_FLOORS: list[tuple[str, ...]] = [
    ("nnrules.miners", "nnrules.miners.warmup"),
    ("nnrules.miners.explainn", "nnrules.miners.eric", "nnrules.miners.patches", "nnrules.miners.neurochains"),
    ("nnrules.miners.itemsets",),
    ("nnrules.miners.comparison",),
    ("nnrules.miners.evidence",),
    ("nnrules.miners.matching",),
    ("nnrules.miners.base",),
    ("nnrules.miners.flow",),
]
#: What a floor may never import, whatever the floors say: the core and the app's state draw nothing.
NO_UI = ("ipywidgets", "anywidget", "voila", "plotly", "IPython")


def modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name -> (file, is a package ``__init__``)."""
    out = {}
    for base, prefix in ((ROOT / "nnrules", "nnrules"), (ROOT / "widgets", "nnrules.widgets")):
        for f in sorted(base.rglob("*.py")):
            parts = list(f.relative_to(base).with_suffix("").parts)
            package = parts[-1] == "__init__"
            out[".".join([prefix, *(parts[:-1] if package else parts)])] = (f, package)
    return out


def import_statements(mods: dict[str, tuple[Path, bool]]):
    """``(importer, imported, line)`` for every import of a module of the package, and ``(importer, top-level
    name, line)`` for every other import."""
    for name, (f, package) in mods.items():
        here = name if package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = here.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
            for t in targets:
                if t.split(".")[0] != "nnrules":
                    yield name, t, node.lineno
                    continue
                while t not in mods and "." in t:
                    t = t.rpartition(".")[0]
                if t != name:
                    yield name, t, node.lineno


def graph() -> nx.DiGraph:
    mods = modules()
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for a, b, line in import_statements(mods):
        if b in mods:
            g.add_edge(a, b, line=line)
    return g


def _floor(module: str, floors: list[tuple[str, ...]]) -> tuple[int, str] | None:
    """(floor index, room) of the longest prefix of ``module`` named in ``floors``."""
    best = None
    for i, rooms in enumerate(floors):
        for room in rooms:
            if (module == room or module.startswith(room + ".")) and (best is None or len(room) > len(best[1])):
                best = (i, room)
    return best


def against_layering(g: nx.DiGraph) -> list[str]:
    bad = []
    for a, b in g.edges:
        for floors in (FLOORS, MINER_FLOORS):
            fa, fb = _floor(a, floors), _floor(b, floors)
            if fa is None or fb is None:
                continue
            if fb[0] < fa[0] or (fb[0] == fa[0] and fa[1] != fb[1]):
                bad.append(f"{a} imports {b} (line {g.edges[a, b]['line']})")
    return sorted(set(bad))


def test_every_module_has_a_floor():
    assert [m for m in modules() if _floor(m, FLOORS) is None] == []


def test_no_circle_of_imports():
    g = graph()
    circles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert circles == [], "\n".join(
        " -> ".join(f"{a} (line {g.edges[a, b]['line']})" for a, b in nx.find_cycle(g.subgraph(c))) for c in circles)


def test_imports_only_go_down():
    assert against_layering(graph()) == []


def test_the_core_and_the_state_draw_nothing():
    mods = modules()
    drawn = [f"{a} imports {b} (line {line})" for a, b, line in import_statements(mods)
             if b.split(".")[0] in NO_UI and not (a.startswith("nnrules.widgets") and
                                                  not a.startswith("nnrules.widgets.state")) and a != "nnrules.cli"]
    assert drawn == []


@pytest.mark.parametrize("edge, why", [
    (("nnrules.data.bits", "nnrules.scale"), "the core imports the scale-out"),
    (("nnrules.miners.flow", "nnrules.miners.explainn"), "a family's floor above the flow"),
    (("nnrules.miners.eric", "nnrules.miners.explainn"), "two families"),
    (("nnrules.widgets.state.loading", "nnrules.widgets.views"), "the state imports a view"),
])
def test_the_check_catches_a_wrong_import(edge, why):
    """The checks fail where they should: one import against the floors is reported (and one back closes a
    circle)."""
    g = graph()
    g.add_edge(*edge, line=0)
    assert any(line.startswith(f"{edge[0]} imports {edge[1]} ") for line in against_layering(g)), why
    g.add_edge(edge[1], edge[0], line=0)
    assert any(len(c) > 1 for c in nx.strongly_connected_components(g))


def test_pyproject_lists_every_package():
    """A wheel holds only the packages pyproject lists (setuptools' ``packages``): every folder with an
    ``__init__`` must be there, or an install from the wheel misses it."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {m for m, (_, package) in modules().items() if package}
    assert packages == listed
