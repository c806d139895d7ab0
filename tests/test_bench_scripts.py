"""Entry points of ``reproduce/`` run end to end with a tiny budget (CleanRL style).

The benchmark runs on the session's quick reasoner: ``--quick-model --cache-dir`` points the
script at the same cache directory, so it reuses that build instead of making its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["flat", "uct", "global", "log", "linear", "entropy"]
ROW_LABELS = [
    "(a) flat sampling, k=",
    "(b) vanilla UCT backtrace",
    "(c) global frontier",
    "(d) depth bonus log(d+1)",
    "(d) depth bonus d (linear)",
    "(d) entropy bonus lambda2=0.4",
]
ROW_KEYS = {
    "key", "name", "solved", "solved_pct", "mean_reward", "depth", "entropy", "iterations",
    "sampled_tokens", "time_s", "fwd_per_sampled", "fwd_per_sampled_no_reuse", "exhausted",
    "flat_same_budget",
}


def test_bench_search_quick(quick_reasoner, tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable, str(ROOT / "reproduce" / "bench_search.py"), "--quick", "--quick-model",
        "--cache-dir", str(quick_reasoner.path.parent), "--json", str(out), "--threads", "1",
    ]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert text.startswith("$ python reproduce/bench_search.py --quick")
    table = [line for line in text.splitlines() if line.startswith("| (")]
    for label in ROW_LABELS:
        assert sum(line.startswith(f"| {label}") for line in table) == 1, (label, table)
    assert "ratio tree/flat =" in text

    result = json.loads(out.read_text())
    assert {"command", "args", "model", "search_config", "budget", "rows", "throughput"} <= set(
        result
    )
    assert result["model"]["path"] == str(quick_reasoner.path)  # reused, not rebuilt
    assert [row["key"] for row in result["rows"]] == METHODS
    for row in result["rows"]:
        assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
        assert row["problems"] == 4
        assert 0 <= row["solved"] <= row["problems"]
        assert -1.0 <= row["mean_reward"] <= 1.0
        assert 0.0 <= row["exhausted"] <= 1.0
        assert row["fwd_per_sampled_no_reuse"] >= row["fwd_per_sampled"] >= 1.0
    for row in result["rows"][1:]:
        assert len(row["iterations"]) == 4 and min(row["iterations"]) >= 1
    budget = result["budget"]
    assert budget["k"] >= 1 and budget["tokens_per_problem"] > 0
    tput = result["throughput"]
    assert tput["tree_tokens_per_s"] > 0 and tput["flat_tokens_per_s"] > 0
    assert tput["ratio"] == tput["tree_tokens_per_s"] / tput["flat_tokens_per_s"]


def test_bench_scripts_reject_an_unknown_tiny_field():
    """``--tiny FIELD=VALUE`` picks another build; a typo is a clear exit before any work."""
    sys.path.insert(0, str(ROOT / "reproduce"))
    import bench_search
    import pytest

    args = bench_search.parse_args(["--tiny", "sft_stepz=9"])
    with pytest.raises(SystemExit, match="--tiny.*unknown field 'sft_stepz' of TinyConfig"):
        bench_search.load_reasoner(args)
    assert bench_search.build_label(bench_search.parse_args(["--tiny", "sft_steps=9"])) \
        == "sft_steps=9"
