"""The code's layers depend one way, read from the import graph of ``proxy/`` and ``auth/``.

Every ``import`` counts: at module level, inside functions and under ``TYPE_CHECKING`` (a
type-only import still ties the two modules together). The intended direction (``LAYERS``;
``a <- b``: b may import a)::

    wire <- sql <- plan <- session <- server <- manage, dev
    sql <- shard <- plan, session     (the sharded data path's pure parts: a plan carries
                                      a sharded statement's targets)
    wire <- backend <- session
    wire <- merge <- session          (cross-partition rewriting and merging)
    auth <- ops <- sql, backend (and so everything above them)

``wire`` (the MySQL codec) stands on nothing of ours; ``auth`` (accounts, catalog, stores) never
imports ``proxy``; ``ops`` (configuration, metrics, logs) serves every layer above ``wire``;
``manage`` (CLI, dashboard) and ``dev`` sit on top and may use everything.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("proxy", "auth")

# Each layer and the layers it may import directly (its own modules always); the allowed set is
# the transitive closure, so e.g. ``session`` may use ``sql`` through ``plan``'s entry.
LAYERS: dict[str, tuple[str, ...]] = {
    "proxy": ("proxy.sourcedigest",),  # the namespace package itself (its finder: the digest)
    "proxy.sourcedigest": (),  # the compiled modules' source digest (setup.py loads it by path)
    "proxy.wire": (),
    "auth": (),
    "proxy.ops": ("auth",),
    "proxy.sql": ("proxy.wire", "proxy.ops"),
    "proxy.plan": ("proxy.sql", "proxy.shard"),
    "proxy.shard": ("proxy.sql",),
    "proxy.backend": ("proxy.wire", "proxy.ops"),
    "proxy.merge": ("proxy.wire",),
    "proxy.session": ("proxy.plan", "proxy.shard", "proxy.merge", "proxy.backend"),
    # (and the package root: which of the modules run compiled, proxy/__init__.py)
    "proxy.server": ("proxy.session", "proxy"),
    "proxy.manage": ("proxy.server", "proxy.dev"),
    "proxy.dev": ("proxy.server", "proxy.manage"),
}

# The data path: one client connection's statements, from bytes to the shard and back.
DATA_PATH = (
    "proxy.wire",
    "proxy.sql",
    "proxy.plan",
    "proxy.shard",
    "proxy.merge",
    "proxy.session",
    "proxy.backend",
)
ABOVE_THE_DATA_PATH = ("proxy.server", "proxy.manage", "proxy.dev")

# The concrete catalog stores: only the store registry (``auth.stores``) picks one, so the
# catalog and the configuration depend on the store interface alone.
CONCRETE_STORES = ("auth.sql_store", "auth.sqlite_store", "auth.mysql_store")
STORE_CHOOSERS = ("auth.stores", *CONCRETE_STORES)

# Single edges that would put knowledge in the wrong place, with the reason.
FORBIDDEN: dict[tuple[str, str], str] = {
    ("proxy.ops.metrics", "proxy.ops.workers"): (
        "metrics render an exposition; the server hands the workers' merge in"
    ),
}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


def _modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            found[name] = Module(name, path, ast.parse(path.read_text(), str(path)))
    return found


MODULES = _modules()


def _layer(name: str) -> str:
    """The layer a module belongs to: the longest ``LAYERS`` key it is in."""
    matches = [layer for layer in LAYERS if name == layer or name.startswith(layer + ".")]
    layer = max(matches, key=len, default="")
    # "proxy" is the namespace package alone: every module under it is in a sub-layer.
    assert layer and (layer != "proxy" or name == "proxy"), f"{name}: add its layer to LAYERS"
    return layer


def _allowed(layer: str) -> set[str]:
    seen: set[str] = set()
    todo = [layer]
    while todo:
        for below in LAYERS[todo.pop()]:
            if below not in seen:
                seen.add(below)
                todo.append(below)
    return seen | {layer}


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # the module imported (ours)
    names: tuple[str, ...]  # for ``from target import a, b``: the names that are not modules


def _imports(module: Module) -> Iterator[Import]:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield Import(node.lineno, alias.name, ())
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            members = []
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:
                    yield Import(node.lineno, submodule, ())
                else:
                    members.append(alias.name)
            if members and source in MODULES:
                yield Import(node.lineno, source, tuple(members))


GRAPH: dict[str, list[Import]] = {name: list(_imports(m)) for name, m in MODULES.items()}


def _where(importer: str, imp: Import) -> str:
    return f"{MODULES[importer].path.relative_to(ROOT)}:{imp.line}: imports {imp.target}"


def test_every_module_imports() -> None:
    for name in MODULES:
        importlib.import_module(name)


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        _layer(name)


def _cycle() -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for imp in GRAPH[name]:
            if imp.target == name:
                continue
            if state.get(imp.target) == 1:
                return [*path[path.index(imp.target) :], imp.target]
            if imp.target not in state:
                found = visit(imp.target)
                if found is not None:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(MODULES):
        if name not in state:
            found = visit(name)
            if found is not None:
                return found
    return None


def test_no_import_cycle() -> None:
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_auth_never_imports_proxy() -> None:
    wrong = [
        _where(name, imp)
        for name, imports in GRAPH.items()
        if _layer(name) == "auth"
        for imp in imports
        if imp.target.startswith("proxy")
    ]
    assert not wrong, "\n".join(wrong)


def test_layers_depend_one_way() -> None:
    wrong = []
    for name, imports in GRAPH.items():
        allowed = _allowed(_layer(name))
        for imp in imports:
            if _layer(imp.target) not in allowed:
                wrong.append(f"{_where(name, imp)} ({_layer(name)} may not use it)")
    assert not wrong, "\n".join(wrong)


def test_the_data_path_never_imports_management_or_dev() -> None:
    """Implied by ``LAYERS``; spelled out so that loosening the table cannot undo it."""
    wrong = [
        _where(name, imp)
        for name, imports in GRAPH.items()
        if _layer(name) in DATA_PATH
        for imp in imports
        if _layer(imp.target) in ABOVE_THE_DATA_PATH
    ]
    assert not wrong, "\n".join(wrong)
    assert LAYERS["proxy.wire"] == (), "the wire codec imports nothing else of ours"


def test_only_the_store_registry_picks_a_concrete_store() -> None:
    wrong = [
        _where(name, imp)
        for name, imports in GRAPH.items()
        if name not in STORE_CHOOSERS
        for imp in imports
        if imp.target in CONCRETE_STORES
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("importer", "target"), sorted(FORBIDDEN))
def test_forbidden_edges(importer: str, target: str) -> None:
    edges = [imp for imp in GRAPH[importer] if imp.target == target]
    assert edges == [], f"{_where(importer, edges[0])}: {FORBIDDEN[importer, target]}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_names(module: Module) -> dict[str, str]:
    """The local names bound to modules of ours: ``import a.b as m`` -> {"m": "a.b"},
    ``from a import b`` (b a module) -> {"b": "a.b"}, ``import a.b`` -> {"a": "a"}."""
    bound: dict[str, str] = {}
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in MODULES:
                    continue
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.partition(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                if f"{source}.{alias.name}" in MODULES:
                    bound[alias.asname or alias.name] = f"{source}.{alias.name}"
    return bound


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr]
    return None


# Underscore names that are public API: the namedtuple methods.
# Underscored names that are a standard type's public API: namedtuple's, and an enum member's
# value (``_value_``: what ``.value`` returns, without the Python property call on 3.11).
NAMEDTUPLE_API = frozenset(
    {"_replace", "_asdict", "_fields", "_make", "_field_defaults", "_value_"}
)


def _defined_here(module: Module) -> set[str]:
    """Names this module defines: functions, classes, assigned names, ``self.x`` / ``cls.x``."""
    names: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
    return names


def _imported_names(module: Module) -> set[str]:
    """Every local name an import binds (modules of ours and others)."""
    names: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).partition(".")[0] for alias in node.names)
    return names


def _private_reaches(module: Module) -> Iterator[str]:
    """Three forms: ``from other import _x``; ``other_module._x``; and ``thing._x`` where
    ``_x`` is defined nowhere in this module (so it belongs to a class of another module; a
    heuristic: a private name this module also defines is not caught)."""
    where = module.path.relative_to(ROOT)
    for imp in GRAPH[module.name]:
        for member in imp.names:
            if _private(member):
                yield f"{where}:{imp.line}: from {imp.target} import {member}"
    bound = _module_names(module)
    defined = _defined_here(module)
    imported = _imported_names(module)
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Attribute) or not _private(node.attr):
            continue
        chain = _dotted(node.value)
        if chain is not None and chain[0] in bound:
            target = ".".join([bound[chain[0]], *chain[1:]])
            if target in MODULES:
                if target != module.name:
                    yield f"{where}:{node.lineno}: {'.'.join(chain)}.{node.attr}"
                continue
        if chain is not None and chain[0] in imported:
            continue  # a third-party or standard module's (``sys._getframe``): not ours
        if node.attr not in defined and node.attr not in NAMEDTUPLE_API:
            yield f"{where}:{node.lineno}: {ast.unparse(node)} (defined in another module)"


def test_no_module_reaches_into_another_modules_private_members() -> None:
    """Checked for every module, the data path's included."""
    wrong = [found for module in MODULES.values() for found in _private_reaches(module)]
    assert not wrong, "\n".join(wrong)
