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


def test_the_readme_runs_every_command_one_way():
    """From the repository root with the project's virtualenv: ``.venv/bin/python -m ...`` in every
    command line of the README's code blocks, as its Configuration section says."""
    text = (ROOT / "README.md").read_text()
    assert "run from the repository root with the project's virtualenv" in text
    commands = [line.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()
                if re.match(r"\s*(\S*/)?python3? -m ", line)]
    assert len(commands) > 20
    assert [line for line in commands if not line.startswith(".venv/bin/python -m ")] == []
