"""The README is the front door: its commands and paths must work as written.

Cheap checks only (a few seconds): every ``make X`` in a code block is a Makefile target, every
``dslib`` command answers ``--help``, every path and link the README names exists. The long
commands themselves (``make demo``, ``make test``) are not run here.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: folders of the repository whose files the README may name in prose or code
REPO_DIRS = ("dslib", "notebooks", "docs", "reproduce", "tests")
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(REPO_DIRS) + r")/[\w./-]*)")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def code_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks, in order."""
    return re.findall(r"^```[\w-]*\n(.*?)^```", text, flags=re.M | re.S)


def commands(text: str) -> list[list[str]]:
    """Each code-block line as shell words, comments dropped (``# ...``)."""
    found = []
    for block in code_blocks(text):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                found.append(words)
    return found


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w.-]+)\s*:(?!=)", text, flags=re.M))


def dslib_args(words: list[str]) -> list[str] | None:
    """The arguments after ``dslib`` in ``[.venv/bin/]python -m dslib ...`` or ``dslib ...``."""
    if words[0] == "dslib":
        return words[1:]
    if Path(words[0]).name.startswith("python") and words[1:3] == ["-m", "dslib"]:
        return words[3:]
    return None


def test_helpers_read_a_small_readme():
    text = "x\n```bash\nmake demo   # a # comment\n.venv/bin/python -m dslib train --x 1\n```\n"
    assert commands(text) == [["make", "demo"], [".venv/bin/python", "-m", "dslib", "train",
                                                 "--x", "1"]]
    assert dslib_args(commands(text)[1]) == ["train", "--x", "1"]
    assert PATH.findall("see `dslib/search.py`, notebooks/src/ and ./runs/x") == [
        "dslib/search.py", "notebooks/src/"]


def test_readme_is_a_front_door():
    text = readme()
    assert 100 <= len(text.splitlines()) <= 180, "README.md: keep it about 150 lines"
    for needed in ("make demo", "make test", "jupyter lab notebooks/", "reproduce/RESULTS.md"):
        assert needed in text, f"README.md lost {needed!r}"
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"(notebooks/{nb.name})" in text, f"README.md does not link {nb.name}"
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), "README.md: no dates"


def test_every_make_target_exists():
    targets = make_targets()
    assert {"demo", "test"} <= targets
    used = [w[1] for w in commands(readme()) if w[0] == "make" and len(w) > 1]
    assert {"demo", "test", "lab"} <= set(used)
    missing = sorted(set(used) - targets)
    assert not missing, f"README.md runs make targets the Makefile lacks: {missing}"


def test_every_dslib_command_answers_help():
    subcommands = set()
    for words in commands(readme()):
        args = dslib_args(words)
        if args is not None:
            subcommands.add(args[0] if args and not args[0].startswith("-") else "")
    assert subcommands, "README.md shows no dslib command"
    for sub in sorted(subcommands):
        argv = [sys.executable, "-m", "dslib", *([sub] if sub else []), "--help"]
        run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"{' '.join(argv[1:])} failed:\n{run.stderr[-2000:]}"
        assert "usage:" in run.stdout


def test_every_path_and_link_exists():
    text = readme()
    named = set(PATH.findall(text))
    assert "reproduce/RESULTS.md" in named and "notebooks/src/" in named
    links = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    assert links, "README.md has no relative links"
    missing = sorted(p for p in named | {t.split("#")[0] for t in links}
                     if p and not (ROOT / p.rstrip(".")).exists())
    assert not missing, f"README.md names paths the repository lacks: {missing}"


@pytest.mark.parametrize("target", ["docs/paper-notes.md#paper-vs-code"])
def test_readme_links_into_the_docs_resolve(target):
    page, _, anchor = target.partition("#")
    assert target in readme()
    assert f"{{ #{anchor} }}" in (ROOT / page).read_text(encoding="utf-8")
