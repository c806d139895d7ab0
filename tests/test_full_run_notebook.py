"""Notebook 06 (the full run) executed by papermill with smoke=True: the pipeline end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks" / "06_full_run.ipynb"


def test_full_run_notebook_smoke(tiny_reasoner, tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "run"
    papermill.execute_notebook(
        str(NB), str(tmp_path / "06.ipynb"), cwd=str(NB.parent), kernel_name="python3",
        progress_bar=False,
        parameters={"smoke": True, "output_dir": str(out), "seeds": [0, 1]},
    )
    nb = nbformat.read(tmp_path / "06.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    summary = (out / "summary.md").read_text()
    assert "DeepSearch: 2 rounds x 2 steps" in summary and "Flat GRPO: 4 steps" in summary
    # the paired comparison over the two seeds, with its interval and a verdict
    assert "| L4 |" in summary and "95 % interval" in summary and "**Verdict.** L3:" in summary
    for name in ("curves.png", "before_after.png", "eval_vs_tokens.png", "rounds.png"):
        assert (out / name).stat().st_size > 0
    histories = json.loads((out / "histories.json").read_text())
    assert sorted(histories) == ["0", "1"] and sorted(histories["1"]) == ["deepsearch", "grpo"]
    for seed in (0, 1):
        assert (out / f"seed-{seed}" / "deepsearch" / "round-2" / "checkpoint" / "state.json"
                ).exists()
        assert (out / f"seed-{seed}" / "grpo" / "checkpoint" / "state.json").exists()
    # the two seeds trained differently (the seed reaches the runs)
    assert histories["0"]["grpo"] != histories["1"]["grpo"]

    # the equal-compute baseline beside it: the flat baseline's config, adaptive, the tree's
    # budget; paired tables against both methods
    proc = subprocess.run([sys.executable, str(ROOT / "reproduce" / "adaptive_beside_demo.py"),
                           str(out), "--no-progress"], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = (out / "adaptive.md").read_text()
    assert "DeepSearch against adaptive" in report and "Flat GRPO against adaptive" in report
    assert report.count("**Verdict.** L3:") == 2
    for seed in (0, 1):
        cfg = json.loads((out / f"seed-{seed}" / "adaptive" / "config.json").read_text())
        flat = json.loads((out / f"seed-{seed}" / "grpo" / "config.json").read_text())
        assert cfg["rollout"]["strategy"] == "adaptive" and cfg["run"] == flat["run"]
        assert cfg["task"] == flat["task"]  # the same hard subset and levels
        assert cfg["rollout"]["adaptive"]["budget_tokens"] > 0


def test_unknown_preset_says_what_is_missing(tmp_path):
    papermill = pytest.importorskip("papermill")
    with pytest.raises(papermill.PapermillExecutionError, match="not available"):
        papermill.execute_notebook(
            str(NB), str(tmp_path / "06.ipynb"), cwd=str(NB.parent), kernel_name="python3",
            progress_bar=False, parameters={"preset": "huge", "output_dir": str(tmp_path)},
        )
