"""Which package may import which: ``leaderboard`` never imports ``arena`` (the dependency points
arena -> leaderboard, so the statistics run without the web stack), and no test imports another
test module (shared builders live in tests/helpers.py).

Checked twice for the first rule: statically (every import statement of every module, wherever it
sits, even inside a function or under ``if TYPE_CHECKING``) and dynamically (importing every
module in a fresh interpreter loads no ``arena`` module, which also catches an import made at
import time under a computed name, or by a third package that imports arena).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT


def imports_in(path: Path, root: Path) -> list[tuple[int, str, list[str]]]:
    """(line, statement, absolute names imported) of every import in the module at ``path``.

    ``from a import b`` imports ``a.b`` (b may be a module or a name in a); a relative import is
    resolved against the module's own package (``root`` is the directory packages start in);
    ``importlib.import_module("x")`` and ``__import__("x")`` with a literal name count too.
    """
    package = list(path.relative_to(root).parent.parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and _literal_import_call(node):
            names = [node.args[0].value]
        else:
            continue
        found.append((node.lineno, ast.unparse(node), names))
    return found


def _literal_import_call(call: ast.Call) -> bool:
    named = getattr(call.func, "attr", None) == "import_module" or getattr(call.func, "id", None) == "__import__"
    return named and bool(call.args) and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)


def within(package: str):
    """Is a dotted name ``package`` or inside it?"""
    return lambda name: name == package or name.startswith(package + ".")


def imports_of(package_dir: Path, forbidden, root: Path) -> list[str]:
    """``file:line: statement`` for every import of a name ``forbidden(name)`` holds for, in any
    module under ``package_dir`` (a directory inside ``root``), the file named relative to ``root``."""
    offences = []
    for path in sorted(package_dir.rglob("*.py")):
        for line, statement, names in imports_in(path, root):
            if any(forbidden(name) for name in names):
                offences.append(f"{path.relative_to(root)}:{line}: {statement}")
    return offences


# Run in a fresh interpreter: imports every module of a package, prints what it loaded of another.
# A __main__ module is a script (importing it runs it); what it imports is imported here anyway.
IMPORT_EVERY_MODULE = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    package, forbidden = sys.argv[1], sys.argv[2]
    root = importlib.import_module(package)
    names = [package] + [info.name for info in pkgutil.walk_packages(root.__path__, package + ".")
                         if not info.name.endswith(".__main__")]
    for name in names:
        importlib.import_module(name)
    loaded = sorted(m for m in sys.modules if m == forbidden or m.startswith(forbidden + "."))
    print(json.dumps({"imported": names, "loaded": loaded}))
""")


def modules_loaded_by_importing(package: str, forbidden: str, search_path: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE, package, forbidden],
                            cwd=search_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": f"{search_path}{os.pathsep}{PROJECT_ROOT}"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_no_leaderboard_module_imports_arena():
    offences = imports_of(PROJECT_ROOT / "leaderboard", within("arena"), PROJECT_ROOT)
    assert offences == [], "leaderboard must never import arena (arena -> leaderboard only):\n" + "\n".join(offences)


def test_importing_every_leaderboard_module_loads_no_arena_module():
    seen = modules_loaded_by_importing("leaderboard", "arena", PROJECT_ROOT)
    modules = [path for path in PROJECT_ROOT.joinpath("leaderboard").rglob("*.py") if path.name != "__main__.py"]
    assert len(seen["imported"]) == len(modules)  # every module was imported, none skipped
    assert seen["loaded"] == [], f"importing leaderboard loaded {seen['loaded']}"


def test_no_test_module_imports_another():
    def test_module(name: str) -> bool:
        return name.startswith("tests.test_") or within("tests.conftest")(name)

    offences = imports_of(PROJECT_ROOT / "tests", test_module, PROJECT_ROOT)
    assert offences == [], "import shared builders from tests.helpers, not from a test module:\n" + "\n".join(offences)


@pytest.fixture
def package_importing_arena(tmp_path):
    """A package ``fakeboard`` that imports arena in each of the ways the static check knows."""
    package = tmp_path / "fakeboard"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("import json, arena.keys\n")
    (package / "inner" / "__init__.py").write_text("from . import sibling\n\nfrom arena import keys\n")
    (package / "inner" / "sibling.py").write_text(
        "import importlib\n\n\ndef later():\n    from arena.matchmaker import keys\n"
        "    return importlib.import_module('arena.ops.redis_server')\n")
    (package / "inner" / "cousin.py").write_text("from ..inner import sibling\nfrom .. import arenas\n")
    (package / "__main__.py").write_text("raise SystemExit('a script: run, never imported by the check')\n")
    return package


def test_the_static_check_names_each_offending_file_and_line(package_importing_arena, tmp_path):
    assert imports_of(package_importing_arena, within("arena"), tmp_path) == [
        "fakeboard/__init__.py:1: import json, arena.keys",
        "fakeboard/inner/__init__.py:3: from arena import keys",
        "fakeboard/inner/sibling.py:5: from arena.matchmaker import keys",
        "fakeboard/inner/sibling.py:6: importlib.import_module('arena.ops.redis_server')",
    ]
    # relative imports resolve inside their own package; a longer name with the same start is another package
    assert imports_of(package_importing_arena, within("fakeboard.inner.sibling"), tmp_path) == [
        "fakeboard/inner/__init__.py:1: from . import sibling",
        "fakeboard/inner/cousin.py:1: from ..inner import sibling",
    ]
    assert imports_of(package_importing_arena, within("arenas"), tmp_path) == []
    assert imports_of(package_importing_arena, within("fakeboard.arenas"), tmp_path) == [
        "fakeboard/inner/cousin.py:2: from .. import arenas"]


def test_the_dynamic_check_sees_an_arena_import(package_importing_arena, tmp_path):
    (package_importing_arena / "inner" / "cousin.py").unlink()  # it imports a module that does not exist
    seen = modules_loaded_by_importing("fakeboard", "arena", tmp_path)
    assert seen["imported"] == ["fakeboard", "fakeboard.inner", "fakeboard.inner.sibling"]
    assert seen["loaded"] == ["arena", "arena.keys"]


# -- rooms: sub-packages that say what they own and which rooms they may import -----------------

PACKAGES = ("arena", "leaderboard")
MAX_MODULE_LINES = 400


def project_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` under ``root`` (a package is its __init__)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module a dotted import name lands in (``a.b.c`` may name ``c`` inside module ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def room_of(module: str, modules: dict[str, Path]) -> str:
    """A module's room: its sub-package directly under the top package, or itself when it sits at the top."""
    parts = module.split(".")
    if len(parts) == 1:
        return module
    top = ".".join(parts[:2])
    return top


def declared_arrows(path: Path) -> set[str] | None:
    """The rooms a room's docstring (or a top module's) says it may import: its ``May import:`` paragraph."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    if "May import:" not in doc:
        return None
    text = doc.split("May import:", 1)[1].split("\n\n", 1)[0]
    if text.strip().startswith("nothing"):
        return set()
    return {name.strip().rstrip(".") for name in text.replace("\n", " ").split(",") if name.strip()}


def import_graph(root: Path, packages=PACKAGES) -> tuple[dict[str, Path], dict[str, list[tuple[int, str, str]]]]:
    """Every module, and for each the (line, statement, project module) of every import it makes, anywhere."""
    modules = project_modules(root, packages)
    graph = {}
    for module, path in modules.items():
        edges = []
        for line, statement, names in imports_in(path, root):
            for name in names:
                target = resolve(name, modules)
                if target and target != module:
                    edges.append((line, statement, target))
        graph[module] = edges
    return modules, graph


def room_offences(root: Path, packages=PACKAGES) -> list[str]:
    modules, graph = import_graph(root, packages)
    offences = []
    arrows = {}
    for module, path in modules.items():
        room = room_of(module, modules)
        if module == room and module not in packages:
            declared = declared_arrows(path)
            if declared is None:
                offences.append(f"{path.relative_to(root)}: no 'May import:' paragraph in its docstring")
            arrows[room] = declared or set()
    for module, edges in graph.items():
        room = room_of(module, modules)
        for line, statement, target in edges:
            target_room = room_of(target, modules)
            if module in packages or target_room == room or target_room in arrows.get(room, set()):
                continue
            offence = f"{modules[module].relative_to(root)}:{line}: {statement} ({room} may not import {target_room})"
            if offence not in offences:
                offences.append(offence)
    return offences


def import_cycles(root: Path, packages=PACKAGES) -> list[list[str]]:
    """Every group of modules that import each other in a circle (Tarjan's strongly connected components)."""
    _, graph = import_graph(root, packages)
    successors = {module: sorted({target for _, _, target in edges}) for module, edges in graph.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in successors[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in successors:
        if module not in index:
            visit(module)
    return cycles


def inner_imports_without_reason(root: Path, packages=PACKAGES) -> list[str]:
    """Imports inside a function or class body with no comment (on their line or the one above) saying why."""
    offences = []
    for path in sorted(p for package in packages for p in (root / package).rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        for scope in ast.walk(tree):
            if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(scope):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    own = lines[node.lineno - 1:node.end_lineno]
                    above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                    if not any("#" in line for line in own) and not above.startswith("#"):
                        offences.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return sorted(set(offences))


def private_name_imports(root: Path, packages=PACKAGES) -> list[str]:
    """``from module import _name`` across modules: a private helper another module wants should be public."""
    offences = []
    for path in sorted(p for package in packages for p in (root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in packages:
                if any(alias.name.startswith("_") and not alias.name.startswith("__") for alias in node.names):
                    offences.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return offences


def test_every_room_says_what_it_owns_and_imports_only_what_it_declares():
    offences = room_offences(PROJECT_ROOT)
    assert offences == [], "an import crosses rooms against the room's 'May import:' line:\n" + "\n".join(offences)


def test_no_import_cycle_anywhere():
    cycles = import_cycles(PROJECT_ROOT)
    assert cycles == [], "modules that import each other in a circle:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_an_import_inside_a_function_says_why():
    offences = inner_imports_without_reason(PROJECT_ROOT)
    assert offences == [], "import at the top, or say why not in a comment:\n" + "\n".join(offences)


def test_no_module_imports_another_modules_private_name():
    offences = private_name_imports(PROJECT_ROOT)
    assert offences == [], "make the helper public (or move it) instead:\n" + "\n".join(offences)


def test_no_module_is_over_400_lines():
    long = [f"{path.relative_to(PROJECT_ROOT)}: {n} lines" for package in PACKAGES
            for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert long == [], f"split these (at most {MAX_MODULE_LINES} lines a module):\n" + "\n".join(long)


@pytest.fixture
def rooms_package(tmp_path):
    """``town``: rooms ``low`` and ``high`` (high may import low), a top module ``leaf``."""
    def write(relative, text):
        path = tmp_path / "town" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    write("__init__.py", '"""The town."""\n')
    write("leaf.py", '"""A leaf.\n\nMay import: nothing of town.\n"""\n')
    write("low/__init__.py", '"""Low room.\n\nMay import: town.leaf.\n"""\n')
    write("low/a.py", "from town.leaf import x\n")
    write("high/__init__.py", '"""High room.\n\nMay import: town.low, town.leaf.\n"""\n')
    write("high/b.py", "from town.low.a import x\n\n\ndef later():\n    # started late: a heavy optional dependency\n"
                       "    from town.low import a\n")
    return write


def test_the_room_check_names_a_wrong_arrow_and_a_room_that_declares_nothing(rooms_package, tmp_path):
    assert room_offences(tmp_path, ("town",)) == []
    rooms_package("low/c.py", "from town.high.b import later\n")
    rooms_package("quiet/__init__.py", '"""A room that says nothing of its imports."""\n')
    assert room_offences(tmp_path, ("town",)) == [
        "town/quiet/__init__.py: no 'May import:' paragraph in its docstring",
        "town/low/c.py:1: from town.high.b import later (town.low may not import town.high)",
    ]


def test_the_cycle_check_finds_a_circle_even_through_an_import_inside_a_function(rooms_package, tmp_path):
    assert import_cycles(tmp_path, ("town",)) == []
    rooms_package("low/a.py", "def late():\n    from town.high import b\n")
    rooms_package("high/b.py", "from town.low import a\n")
    assert import_cycles(tmp_path, ("town",)) == [["town.high.b", "town.low.a"]]
    assert inner_imports_without_reason(tmp_path, ("town",)) == ["town/low/a.py:2: from town.high import b"]


def test_the_private_name_check(rooms_package, tmp_path):
    rooms_package("high/c.py", "from town.low.a import _secret, __version__, public\n")
    assert private_name_imports(tmp_path, ("town",)) == [
        "town/high/c.py:1: from town.low.a import _secret, __version__, public"]
