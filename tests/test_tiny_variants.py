"""reproduce/tiny_variants.py: the sweep of tiny builds behind the README's variant table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "reproduce" / "tiny_variants.py"
sys.path.insert(0, str(ROOT / "reproduce"))


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_every_variant_is_a_valid_build():
    import tiny_variants

    from dslib import tiny

    keys = set()
    for name, (sets, _) in tiny_variants.VARIANTS.items():
        cfg = tiny.override(tiny.TinyConfig(), sets)
        keys.add(cfg.key())
        assert tiny_variants.command(name, 0).startswith("python -m dslib.tiny --set threads=1")
    assert len(keys) == len(tiny_variants.VARIANTS)  # no two variants are the same build
    assert tiny_variants.command("default", 0) == "python -m dslib.tiny --set threads=1"
    assert tiny_variants.command("goal_first", 2) == (
        "python -m dslib.tiny --set threads=1 --set solution_style=backward --set seed=2")


def test_markdown_rows_and_seed_means():
    import tiny_variants

    def row(variant, seed, p3):
        return {"variant": variant, "seed": seed, "sets": ["a=1"], "parameters": 1000,
                "sft_seconds": 12.3, "pass@1": {"3": p3, "4": 0.1, "5": 0.0},
                "hard_share_le_25pct": 0.99, "steps_pass@1": {"3": p3 / 2, "4": 0.0, "5": 0.0},
                "lines_valid_if_correct": {"3": 0.5, "4": None, "5": None},
                "first_line_valid": {"3": 0.9, "4": 0.8, "5": 0.7}}

    old = row("y", 0, 0.2)
    del old["steps_pass@1"], old["lines_valid_if_correct"], old["first_line_valid"]
    text = tiny_variants.markdown([row("x", 0, 0.30), row("x", 1, 0.40), old])
    lines = text.splitlines()
    assert lines[0].count("|") == 11 and "3 / 4 / 5 numbers" in lines[0]
    assert ("| x | `a=1` | 1 | 1,000 | 12 | 0.40 / 0.10 / 0.00 | 0.99 | 0.20 / 0.00 / 0.00 "
            "| 0.50 / - / - | 0.90 / 0.80 / 0.70 |") in lines
    # mean ± sample std over seeds (dslib.report.mean_std): std of 0.30, 0.40 is 0.07
    assert ("| x | mean of seeds 0, 1 | | | | 0.35 ± 0.07 / 0.10 ± 0.00 / 0.00 ± 0.00 | | "
            "0.17 ± 0.04 / 0.00 ± 0.00 / 0.00 ± 0.00 | | |") in lines
    assert "| y | `a=1` | 0 | 1,000 | 12 | 0.20 / 0.10 / 0.00 | 0.99 | - / - / - | - / - / - " \
        "| - / - / - |" in lines  # a build made before the line columns
    assert not any("y | mean" in line for line in lines)  # one seed: no mean row


def test_bad_arguments_exit_before_any_work(tmp_path):
    proc = _run("--only", "no_such_variant", "--out", str(tmp_path))
    assert proc.returncode != 0 and "unknown variant(s) ['no_such_variant']" in proc.stderr
    proc = _run("--jobs", "0", "--out", str(tmp_path))
    assert proc.returncode != 0 and "--jobs must be at least 1" in proc.stderr
    proc = _run("--seeds", "--out", str(tmp_path))
    assert proc.returncode != 0 and "nothing to build" in proc.stderr
    assert not (tmp_path / "cache").exists()


def test_list_prints_the_commands():
    proc = _run("--list", "--only", "goal_first_4l", "--seeds", "1")
    assert proc.returncode == 0, proc.stderr
    assert ("python -m dslib.tiny --set threads=1 --set num_hidden_layers=4 "
            "--set solution_style=backward --set seed=1") in proc.stdout


def test_quick_sweep_builds_two_variants_in_two_processes(tmp_path):
    proc = _run("--quick", "--only", "default", "goal_first", "--jobs", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((tmp_path / "tiny_variants.json").read_text())
    assert result["quick"] is True
    assert [r["variant"] for r in result["rows"]] == ["default", "goal_first"]
    for r in result["rows"]:
        assert set(r["pass@1"]) == {"3", "4", "5"}
        assert all(0.0 <= v <= 1.0 for v in r["pass@1"].values())
        assert (tmp_path / "cache" / f"tiny-{r['key']}" / "build_info.json").exists()
    assert result["rows"][0]["key"] != result["rows"][1]["key"]
    assert (tmp_path / "tiny_variants.md").read_text() in proc.stdout
    assert (tmp_path / "tiny_variants.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second call reuses both builds (cached by config hash): same rows
    again = _run("--quick", "--only", "default", "goal_first", "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "tiny_variants.json").read_text())["rows"] == result["rows"]
