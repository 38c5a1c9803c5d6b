"""The documentation stands on its own in a clone: every relative link resolves to a file of the
repository, and nothing points outside it (such as the ../shared notes a clone does not have)."""

from __future__ import annotations

import re

import pytest

from tests.helpers import PROJECT_ROOT as ROOT

DOCUMENTS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("deploy/**/*.md"),
                    *ROOT.glob("benchmarks/*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_every_relative_link_is_a_file_in_the_repository(document):
    text = document.read_text()
    assert "../shared" not in text
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://|mailto:|#", target):
            continue
        path = (document.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{document.name} links outside the repository: {target}"
        assert path.exists(), f"{document.name} links to a missing file: {target}"


def test_the_documents_run_every_command_one_way():
    """From the repository root with the project's virtualenv: ``.venv/bin/python -m ...`` in every
    command line of the code blocks of the README and docs/, as the README says."""
    assert "run from the repository root with the project's" in (ROOT / "README.md").read_text()
    commands = {}
    for document in [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]:
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", document.read_text(), re.S):
            for line in block.splitlines():
                if re.match(r"\s*(\S*/)?python3? -m ", line):
                    commands.setdefault(document.name, []).append(line.strip())
    assert len(commands.get("README.md", [])) >= 5 and sum(map(len, commands.values())) > 20
    assert {name: [line for line in lines if not line.startswith(".venv/bin/python -m ")]
            for name, lines in commands.items()} == {name: [] for name in commands}


# `arena/web/app.py`, `leaderboard/data/events.py`, `tests/test_ssrf.py`, `examples/models.yaml`, ...
FILE_REFERENCE = re.compile(r"`((?:arena|leaderboard|tests|benchmarks|deploy|docs|examples|scripts)/[\w./-]*)`")
# `arena.battles.engine`, `leaderboard.models.bradley_terry`, `arena.matchmaker.state.online_pair_update`
MODULE_REFERENCE = re.compile(r"`((?:arena|leaderboard)(?:\.\w+)+)`")
# files the deployment guide tells the operator to create: named, never committed
CREATED_BY_THE_OPERATOR = {"deploy/.env", "deploy/config/models.yaml"}


def module_exists(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_every_file_and_module_a_document_names_exists(document):
    """A path in backquotes (`arena/web/app.py`) is a file or folder of the repository; a dotted
    name (`arena.battles.engine`, or a module's attribute such as
    `arena.matchmaker.state.online_pair_update`) is a module of ours or names something in one."""
    text = document.read_text()
    missing_files = [path for path in FILE_REFERENCE.findall(text)
                     if not (ROOT / path).exists() and path not in CREATED_BY_THE_OPERATOR]
    assert missing_files == [], f"{document.relative_to(ROOT)} names files that are not in the repository"
    missing_modules = [name for name in MODULE_REFERENCE.findall(text)
                       if not module_exists(name) and not module_exists(name.rsplit(".", 1)[0])]
    assert missing_modules == [], f"{document.relative_to(ROOT)} names modules that are not in the repository"
