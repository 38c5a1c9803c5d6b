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
        "    return importlib.import_module('arena.redis_server')\n")
    (package / "inner" / "cousin.py").write_text("from ..inner import sibling\nfrom .. import arenas\n")
    (package / "__main__.py").write_text("raise SystemExit('a script: run, never imported by the check')\n")
    return package


def test_the_static_check_names_each_offending_file_and_line(package_importing_arena, tmp_path):
    assert imports_of(package_importing_arena, within("arena"), tmp_path) == [
        "fakeboard/__init__.py:1: import json, arena.keys",
        "fakeboard/inner/__init__.py:3: from arena import keys",
        "fakeboard/inner/sibling.py:5: from arena.matchmaker import keys",
        "fakeboard/inner/sibling.py:6: importlib.import_module('arena.redis_server')",
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
