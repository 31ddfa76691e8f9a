"""The house's layers: sdr_core never imports gradio or studio; no import cycle anywhere;
every project file and function stays small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sdr_core", "studio")
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 80  # from the def line to the body's last line (decorators not counted)


def _modules() -> dict[str, Path]:
    """Every module of the two packages by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the two packages that ``name`` imports anywhere in its file.

    Every import counts: at module level, inside functions (lazy) and under
    ``TYPE_CHECKING``. ``from package import name`` counts as the submodule when there is
    one, else as the package itself.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    targets.add(submodule)
                elif base in modules:
                    targets.add(base)
    return targets - {name}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_sdr_core_or_studio():
    modules = _modules()
    edges = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert {"sdr_core.pipeline", "studio.page"} <= edges.keys()
    assert "studio.session" in edges["studio.run"]  # the graph sees real imports
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_sdr_core_never_imports_studio():
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("sdr_core"):
            studio = {m for m in _imports(name, path, modules) if m.startswith("studio")}
            assert not studio, f"{name} imports {studio}"


def test_importing_sdr_core_loads_neither_gradio_nor_studio():
    # Every submodule is imported; an optional one whose extra package is missing here
    # (e.g. Triton on a CPU machine) is skipped, since it cannot load anything at all.
    code = """
import importlib, pkgutil, sys
import sdr_core
skipped = []
for info in pkgutil.walk_packages(sdr_core.__path__, "sdr_core."):
    if info.name == "sdr_core.__main__":
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as error:
        if (error.name or "").startswith("sdr_core"):
            raise
        skipped.append(info.name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("gradio", "studio", "spaces"))
assert not loaded, loaded
print(len(skipped))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_studio_needs_no_gradio():
    code = (
        "import sys; sys.modules['gradio'] = None; sys.modules['spaces'] = None\n"
        "import studio.page, studio.run, studio.scene, studio.session, studio.teaching, "
        "studio.widgets\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def _oversized(root: Path) -> list[str]:
    """Every .py file under ``root`` longer than MAX_FILE_LINES lines and every function or
    method longer than MAX_FUNCTION_LINES, as ``"path[:line name]: n lines"``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(root).as_posix()
        n_lines = len(source.splitlines())
        if n_lines > MAX_FILE_LINES:
            found.append(f"{where}: {n_lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{where}:{node.lineno} {node.name}: {length} lines")
    return found


@pytest.mark.parametrize("folder", ["sdr_core", "studio", "scripts", "benchmarks", "tests"])
def test_files_and_functions_stay_small(folder):
    assert _oversized(REPO / folder) == []


def test_the_app_file_and_its_functions_stay_small(tmp_path):
    (tmp_path / "app.py").write_text((REPO / "app.py").read_text(encoding="utf-8"))
    assert _oversized(tmp_path) == []


def test_the_size_check_finds_a_long_file_and_a_long_function(tmp_path):
    def body(indent: str, n: int) -> str:
        return "".join(f"{indent}x{i} = {i}\n" for i in range(n))

    fits = body("    ", MAX_FUNCTION_LINES - 1)  # the def line makes it the limit exactly
    long = body(" " * 8, MAX_FUNCTION_LINES)  # one more, in a method
    (tmp_path / "ok.py").write_text(f"@staticmethod\ndef fits():\n{fits}")
    (tmp_path / "long.py").write_text(f"class A:\n    def long(self):\n{long}")
    (tmp_path / "big.py").write_text(body("", MAX_FILE_LINES + 1))
    assert _oversized(tmp_path) == ["big.py: 801 lines", "long.py:2 long: 81 lines"]
