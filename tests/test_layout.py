"""The code's shape (issue "Money integrity", item 4): routes parse and render only.

- No view function is over MAX_VIEW_LINES lines (the lines below its `def` line, to its
  last): parsing goes to small helpers, the use case to a service.
- The web floor (checkout/web/) never imports checkout.app: what create_app keeps is read
  through the accessors in checkout/extensions.py and checkout/store/db.py.
- No import cycles: every module of the package (the sandbox included) imports on its own
  in a fresh interpreter, and no modules import each other, at module level or inside a
  function (an import that waits for a call still ties two modules); the package imports
  its own modules at module level only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "checkout"
WEB = PACKAGE / "web"
MAX_VIEW_LINES = 25
ROUTE_DECORATORS = {"route", "get", "post", "put", "patch", "delete"}
SKIPPED_VIEWS: set[Path] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_route(decorator: ast.expr) -> bool:
    """`@<blueprint>.route(...)`, `.get(...)`, `.post(...)`, ...: a view function."""
    return (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr in ROUTE_DECORATORS
        and isinstance(decorator.func.value, ast.Name)
    )


def _views(path: Path) -> list[tuple[str, int]]:
    """(name, lines below the `def` line) of each view function in the module."""
    return [
        (node.name, (node.end_lineno or node.lineno) - node.lineno)
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(_is_route(d) for d in node.decorator_list)
    ]


def test_no_view_function_is_over_25_lines() -> None:
    found, too_long = 0, []
    for path in sorted(WEB.rglob("*.py")):
        views = _views(path)
        found += len(views)
        if path in SKIPPED_VIEWS:
            continue
        too_long += [
            f"{path.relative_to(ROOT)}: {name} is {lines} lines"
            for name, lines in views
            if lines > MAX_VIEW_LINES
        ]
    assert found > 40, "the views were not found: has the route decorator changed?"
    assert not too_long, "views over 25 lines:\n" + "\n".join(too_long)


def test_the_view_length_check_counts_from_def_to_end(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        textwrap.dedent(
            """
            @bp.get("/x")
            @other
            def view() -> None:
                a = 1
                return a


            @other
            def helper() -> None:
                pass
            """
        )
    )
    assert _views(sample) == [("view", 2)]


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, names) of every import statement, wherever it is."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def test_the_web_floor_never_imports_the_app_module() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(WEB.rglob("*.py"))
        for module, names in _imports(ast.parse(path.read_text()))
        if module == "checkout.app"
        or module.startswith("checkout.app.")
        or (module == "checkout" and ("app" in names or "create_app" in names))
    ]
    assert not offenders, f"these import checkout.app: {offenders}"


def _top_level_imports(path: Path, module: str, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `module` imports while it is being imported: imports in
    functions and under `if TYPE_CHECKING:` wait, so they cannot make a cycle. A
    submodule's own packages (imported first by Python) are not counted."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                test = node.test
                name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
                if name != "TYPE_CHECKING":
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = module.split(".") if is_package else module.split(".")[:-1]
                    parent = here[: len(here) - node.level + 1]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                # `from package import submodule` imports the submodule; anything else, the
                # module named.
                subs = [f"{base}.{alias.name}" for alias in node.names]
                found.update(s for s in subs if s in modules)
                if not all(s in modules for s in subs):
                    found.add(base)

    visit(ast.parse(path.read_text(), str(path)).body)
    return {m for m in found if m in modules and m != module}


def _from_base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a `from ... import` names (a relative one resolved from `module`)."""
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        parent = here[: len(here) - node.level + 1]
        base = ".".join([*parent, *([node.module] if node.module else [])])
    return base


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of the import statements under `if TYPE_CHECKING:` (never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def _all_imports(path: Path, module: str, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `module` imports anywhere: at module level and inside
    functions and methods (an import that waits for a call still ties the two modules),
    but not under `if TYPE_CHECKING:`. `from package import name` counts the package's
    submodule `name` when there is one, else the package."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_only(tree)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = _from_base(node, module, is_package)
        subs = [f"{base}.{alias.name}" for alias in node.names]
        found.update(sub for sub in subs if sub in modules)
        if not all(sub in modules for sub in subs):
            found.add(base)
    return {m for m in found if m in modules and m != module}


def _function_level_imports(path: Path) -> list[int]:
    """The line numbers of the package imports made inside a function or method."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_only(tree)
    lines = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if func.name == "__getattr__" and func in getattr(tree, "body", []):
            continue  # a module's PEP 562 hook: the one deliberate lazy import (checkout/)
        for node in ast.walk(func):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom):
                ours = (node.module or "").startswith("checkout") or node.level > 0
            elif isinstance(node, ast.Import):
                ours = any(alias.name.startswith("checkout") for alias in node.names)
            else:
                continue
            if ours:
                lines.append(node.lineno)
    return sorted(set(lines))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_module_level_import_cycles() -> None:
    modules = _modules()
    assert "checkout.sandbox.core" in modules and "checkout.web.console.auth" in modules
    graph = {name: _top_level_imports(path, name, modules) for name, path in modules.items()}
    assert not _cycles(graph), "modules importing each other at module level"


def test_no_import_cycles_counting_function_level_imports() -> None:
    """An import inside a function is still a dependency: two modules that import each other
    anywhere are one module in two files."""
    modules = _modules()
    graph = {name: _all_imports(path, name, modules) for name, path in modules.items()}
    cycles = _cycles(graph)
    assert not cycles, "modules importing each other (function-level imports counted):\n" + (
        "\n".join(" <-> ".join(c) for c in cycles)
    )


def test_the_package_imports_its_modules_at_module_level() -> None:
    """Dependencies show at the top of each module (and so to import-linter's contracts and
    the cycle checks): no import of the package inside a function."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _modules().values()
        for line in _function_level_imports(path)
    ]
    assert not found, "imports of the package inside functions:\n" + "\n".join(found)


def test_the_cycle_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    package = tmp_path / "checkout"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from checkout import b\n")
    (package / "b.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING

            if TYPE_CHECKING:
                from checkout import c


            def later() -> None:
                from checkout.a import thing
            """
        )
    )
    (package / "c.py").write_text("from . import b\n")
    modules = {"checkout.a": package / "a.py", "checkout.b": package / "b.py"}
    modules["checkout.c"] = package / "c.py"
    graph = {name: _all_imports(path, name, modules) for name, path in modules.items()}
    assert graph == {
        "checkout.a": {"checkout.b"},
        "checkout.b": {"checkout.a"},  # TYPE_CHECKING's import of c does not count
        "checkout.c": {"checkout.b"},
    }
    assert _cycles(graph) == [["checkout.a", "checkout.b"]]
    assert _function_level_imports(package / "b.py") == [9]


def test_only_config_reads_the_raw_configuration() -> None:
    """One settings parse: config.py builds every setting; nothing else reads the TOML's
    tables through `Settings.raw` or parses them with a `*_from_config` of its own."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "config.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "raw":
                owner = ast.unparse(node.value)
                if "settings" in owner.lower():
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {owner}.raw")
            elif (
                isinstance(node, ast.FunctionDef)
                and node.args.args
                and node.args.args[0].arg == "raw"
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: def {node.name}")
    assert not found, "\n".join(found)


# Each module of the package imported on its own: the package is forgotten (sys.modules) before
# each, so a cycle that only fails when entered from one of its modules fails here. Third-party
# modules stay loaded, which keeps this to seconds.
IMPORT_EACH = """
import importlib, pkgutil, sys
import checkout
names = sorted(m.name for m in pkgutil.walk_packages(checkout.__path__, "checkout."))
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "checkout" or m.startswith("checkout.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {exc!r}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_module_imports_on_its_own() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    count, _, failed = result.stdout.partition("\n")
    assert int(count) >= len(_modules()) - 1, result.stdout  # every module, sandbox included
    assert not failed.strip(), f"modules that fail to import on their own:\n{failed}"
