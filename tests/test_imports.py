"""searchcore's modules import each other in one direction: no import circle, lazy imports inside functions included,
and each sub-package only from its own floor and those below it.

The graph is read from the source (every ``import`` and ``from … import`` statement, wherever it stands), so a
circle hidden in a function body counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "searchcore"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The searchcore modules ``path`` imports (relative or absolute, at any depth of the file)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)  # "from . import storage"
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in files}
    return {module_name(p): imports(p, modules) - {"searchcore"} for p in files}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def test_the_walker_finds_a_circle_it_is_shown() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_searchcore_has_no_import_circle() -> None:
    edges = graph()
    assert "searchcore.serve.engine" in edges and "searchcore.models.scoring" in edges["searchcore.serve.engine"]
    assert cycles(edges) == []


# ---- the floors: searchcore's sub-packages stand on the ones below them ----------------------------------------------
#: Lowest first. The ground floor is searchcore's own modules (errors, storage, index, ...); the bundle's files
#: (bundle, postings, layout) read into the models' types (a head's tag vocabulary, the word signals' tables), so
#: they stand on :mod:`searchcore.models`; a training run measures its head, so build stands on quality; the app
#: builds the offline bundle on a fresh machine, so serve stands on build.
FLOORS = ("ground", "models", "bundle", "quality", "build", "serve")
BUNDLE_FILES = {"bundle", "postings", "layout"}


def floor(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2:
        return parts[1]
    return "bundle" if parts[-1] in BUNDLE_FILES else "ground"


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Every import of a module on a higher floor than the importer's (the package's ``__init__`` is the public
    API, which names what every floor offers)."""
    return sorted(f"{m} -> {t}" for m, targets in edges.items() if m != "searchcore" for t in targets
                  if FLOORS.index(floor(t)) > FLOORS.index(floor(m)))


def test_the_floor_walker_finds_an_upward_import() -> None:
    edges = {"searchcore.models.head": {"searchcore.index", "searchcore.serve.engine"},
             "searchcore.bundle": {"searchcore.models.tagging"}, "searchcore.index": {"searchcore.postings"}}
    assert upward(edges) == ["searchcore.index -> searchcore.postings",
                             "searchcore.models.head -> searchcore.serve.engine"]


def test_every_sub_package_imports_only_its_own_floor_and_those_below() -> None:
    edges = graph()
    assert {floor(m) for m in edges} == set(FLOORS)  # every floor has modules (a renamed package fails here)
    assert upward(edges) == []
