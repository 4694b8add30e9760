"""The package's shape, checked with the standard library: no import cycles (``ast`` finds every import, also the
ones inside functions; ``graphlib`` finds a cycle and names it) and no function or class over 80 lines (issue 21)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# import name -> source folder (pyproject.toml's package-dir: calibrate/ ships as lrpredict.calibrate)
PACKAGES = {"lrpredict": ROOT / "lrpredict", "lrpredict.calibrate": ROOT / "calibrate"}


def module_files(packages: dict[str, Path] = PACKAGES) -> dict[str, Path]:
    """Every module of the packages by its import name: ``lrpredict/cli/suggest.py`` -> ``lrpredict.cli.suggest``."""
    nested = {folder.resolve() for folder in packages.values()}
    found: dict[str, Path] = {}
    for package, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            # lrpredict/calibrate may be a link to calibrate/ in a worktree: each file is read under one name only
            if any(parent.resolve() in nested and parent != folder for parent in path.parents):
                continue
            parts = [part for part in path.relative_to(folder).with_suffix("").parts if part != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` imports never run: annotations only, no import-time dependency."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth (function-level ones too), except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        stack.extend(child for child in ast.iter_child_nodes(node) if not _type_checking_only(child))
    return found


def _imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The known modules one file imports: ``from pkg import name`` counts as pkg.name when that is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: from . / from .. / from .x
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for name in names:
            while name and name not in known:  # import a.b.c of an unknown c: the deepest known module
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def import_graph(packages: dict[str, Path] = PACKAGES) -> dict[str, set[str]]:
    """module -> the modules it imports, anywhere in its body."""
    files = module_files(packages)
    return {module: _imported_modules(module, path, set(files)) for module, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_structure_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


def test_structure_cycle_finder_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (package / "c.py").write_text(
        "import typing\nif typing.TYPE_CHECKING:\n    from pkg import d\n\ndef g():\n    import pkg.a\n"
    )
    (package / "d.py").write_text("from pkg import c\n")
    graph = import_graph({"pkg": package})
    assert graph["pkg.sub.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}  # the TYPE_CHECKING import is not an edge
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"pkg.a", "pkg.sub.b", "pkg.c"}


def test_structure_import_graph_reads_calibrate_as_lrpredict_calibrate() -> None:
    graph = import_graph()
    assert "lrpredict.calibrate.fit" in graph and not any(name.startswith("calibrate") for name in graph)


MAX_LINES = 80
# Functions and classes over MAX_LINES today (issue 21), by qualified name -> length.  A ratchet: an entry may only
# shrink; the test fails when one grows, when a new one appears, and when a listed one fits and is still listed.
# Empty since 2026-12-04 (issue 21): keep it so.
KNOWN_LONG: dict[str, int] = {}


def body_lengths(source: str, module: str) -> dict[str, int]:
    """Every function and class (methods and nested ones too) by qualified name -> lines from ``def``/``class``
    to its last line (decorators not counted)."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}.{child.name}"
                found[name] = (child.end_lineno or child.lineno) - child.lineno + 1
                visit(child, name)
            else:
                visit(child, prefix)

    visit(ast.parse(source), module)
    return found


def ratchet_problems(lengths: dict[str, int], known: dict[str, int], limit: int = MAX_LINES) -> list[str]:
    problems = [
        f"{name} is {n} lines (> {limit}): split it into named helpers"
        for name, n in sorted(lengths.items())
        if n > limit and name not in known
    ]
    for name, listed in sorted(known.items()):
        n = lengths.get(name)
        if n is None or n <= limit:
            problems.append(f"{name} is {n} lines now: remove it from KNOWN_LONG")
        elif n > listed:
            problems.append(f"{name} grew from {listed} to {n} lines: KNOWN_LONG may only shrink")
    return problems


def test_structure_no_function_or_class_over_80_lines_beyond_the_known_ones() -> None:
    lengths: dict[str, int] = {}
    for module, path in module_files().items():
        lengths.update(body_lengths(path.read_text(), module))
    problems = ratchet_problems(lengths, KNOWN_LONG)
    assert not problems, "\n".join(problems)


def test_structure_length_ratchet_catches_new_grown_and_stale_entries() -> None:
    source = "class A:\n    def f(self):\n" + "        x = 1\n" * 90 + "\n@decorator\ndef g():\n    pass\n"
    lengths = body_lengths(source, "m")
    assert lengths == {"m.A": 92, "m.A.f": 91, "m.g": 2}
    assert len(ratchet_problems(lengths, {})) == 2  # A and A.f are new offenders
    known = {"m.A": 92, "m.A.f": 90, "m.g": 100}
    assert ratchet_problems(lengths, known) == [
        "m.A.f grew from 90 to 91 lines: KNOWN_LONG may only shrink",
        "m.g is 2 lines now: remove it from KNOWN_LONG",
    ]
