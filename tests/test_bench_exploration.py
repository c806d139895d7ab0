"""``reproduce/bench_exploration.py``: the pass@k estimator, the tree reading, a quick run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest
from fakes import CORRECT, EOS, NEWLINE, WRONG, FakeProblem, ScriptedPolicy, fake_verifier, seg

from dslib import search
from dslib.config import SearchConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "reproduce"))
import bench_exploration as bench  # noqa: E402


@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_pass_at_k_is_the_share_of_k_subsets_with_a_correct_sample(n):
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(combinations(outcomes, k))
            brute = sum(any(s) for s in subsets) / len(subsets)
            assert bench.pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)
    with pytest.raises(ValueError):
        bench.pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        bench.pass_at_k(4, 1, 0)
    assert 0.0 < bench.pass_at_k(256, 1, 128) == pytest.approx(0.5)


def test_flat_curve_and_interpolation():
    curve = bench.flat_curve(correct=[0, 2, 4], lengths=[10.0, 20.0, 30.0], n=4)
    assert curve["k"] == [1, 2, 3, 4] and curve["tokens"] == [20.0, 40.0, 60.0, 80.0]
    assert curve["solved"][0] == pytest.approx((0 + 0.5 + 1) / 3)
    assert curve["solved"][-1] == pytest.approx(2 / 3)
    assert bench.at_tokens(curve, 40.0) == pytest.approx(curve["solved"][1])
    mid = (curve["solved"][1] + curve["solved"][2]) / 2
    assert bench.at_tokens(curve, 50.0) == pytest.approx(mid)
    assert bench.at_tokens(curve, 10.0) == pytest.approx(curve["solved"][0] / 2)
    assert bench.at_tokens(curve, 1000.0) == curve["solved"][-1]


def test_tree_reading_and_structure_by_hand():
    """A hand-made search: at the first record nothing correct yet, at the second one."""

    def script(prefix, j, max_new_tokens):
        if len(prefix) == 2:  # root: a duplicate pair of lines
            return seg([5, NEWLINE])
        if len(prefix) == 4:  # depth 1: a wrong answer and a line
            return seg([WRONG, EOS]) if j == 0 else seg([6, NEWLINE])
        return seg([CORRECT, EOS]) if j == 0 else seg([7, 8])

    cfg = SearchConfig(step_tokens=4, max_depth=5, width=2, n_trajectories=2,
                       step_boundary="\n")
    (res,) = search.run([FakeProblem([9, 9])], ScriptedPolicy(script=script), fake_verifier, cfg)
    # ids: 1, 2 = root's children (2 tokens each); 3, 4 = children of 1 (2 + 2);
    # 5, 6 = children of 4 (2 + 2): the correct leaf is 5
    assert [leaf.id for leaf in res.tree.recorded] == [3, 5]
    assert bench.tree_reading(res, [1, 2, 3]) == [(8, False), (12, True), (12, True)]

    class Decode:
        texts = {5: "a", NEWLINE: "\n", 6: "b", 7: "c", 8: "d", CORRECT: " ok", WRONG: " no"}

        def decode(self, ids, skip_special_tokens=True):
            return "".join(self.texts.get(i, "") for i in ids)

    shape = bench.structure([res], Decode())
    assert shape["duplicate_siblings_by_depth"] == {1: 0.5, 2: 0.0, 3: 0.0}
    assert shape["duplicate_siblings"] == pytest.approx(1 / 6)
    assert shape["expansions"] == 3 and shape["inside_answer"] == 0.0
    assert shape["node_ends"] == pytest.approx({"line": 3 / 6, "eos": 2 / 6, "cut": 1 / 6})


def test_quick_run_writes_table_figure_and_json(quick_reasoner, tmp_path):
    out = tmp_path / "bench"
    cmd = [
        sys.executable, str(ROOT / "reproduce" / "bench_exploration.py"), "--quick",
        "--quick-model", "--cache-dir", str(quick_reasoner.path.parent), "--out", str(out),
        "--mode", "steps", "--levels", "4",
    ]
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.startswith("$ python reproduce/bench_exploration.py --quick")
    result = json.loads((out / "results.json").read_text())
    assert result["model"]["path"] == str(quick_reasoner.path)  # reused, not rebuilt
    assert result["args"]["mode"] == "steps"
    level = result["levels"]["4"]
    assert level["problems"] == 4 and len(level["flat"]) == 1
    flat = level["flat"][0]
    assert flat["k"] == list(range(1, 9)) and flat["solved"] == sorted(flat["solved"])
    assert set(level["trees"]) == {"chunk8 w2", "line w2"}
    for runs in level["trees"].values():
        (run,) = runs
        assert run["T"] == [2, 4] and run["tokens"][0] <= run["tokens"][1]
        assert 0.0 <= run["solved"][0] <= run["solved"][1] <= 1.0
        assert sum(run["node_ends"].values()) == pytest.approx(1.0)
    line_ends = level["trees"]["line w2"][0]["node_ends"]
    assert line_ends["cut"] < 0.5  # a line node ends at its newline, rarely at the limit
    table = (out / "table.md").read_text()
    assert "| flat | k=8 |" in table and "| line w2 | T=4 |" in table
    assert (out / "exploration.png").stat().st_size > 10_000


def test_bad_options_exit_clearly():
    with pytest.raises(SystemExit):
        bench.parse_args(["--mode", "lines"])
    with pytest.raises(SystemExit, match="must be >= 1"):
        bench.parse_args(["--trajectories", "0"])
    args = bench.parse_args(["--tiny", "sft_stepz=9"])
    with pytest.raises(SystemExit, match="--tiny .*unknown field .sft_stepz. of TinyConfig"):
        bench.load_reasoner(args)
