"""``dslib compare`` and dslib.report: the per-run table, the seed-grouped mean ± std table, the
paired comparison of two methods over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dslib import report
from dslib.cli import main
from dslib.report import group_by_config, mean_std, sampled_tokens_per_problem, seed_table


def _run(root: Path, name: str, cfg: dict, evals: list[dict]) -> Path:
    d = root / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    rows = [{"kind": "train", "step": 0, "wall_s": 1.0, "cumulative_sampled_tokens": 10}]
    rows += [{"kind": "eval", **e} for e in evals]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def cfg(seed: int, lr: float = 1e-6) -> dict:
    """A run's config.json: sections, the seed in ``run``."""
    return {"optim": {"lr": lr}, "run": {"seed": seed}}


def test_mean_std_formats() -> None:
    assert mean_std([]) == "-"
    assert mean_std([0.5]) == "0.500"
    assert mean_std([1.0, 2.0, 3.0], digits=1) == "2.0 ± 1.0"


def test_group_by_config_ignores_only_the_seed(tmp_path: Path) -> None:
    a0 = _run(tmp_path, "a-s0", cfg(lr=1, seed=0), [])
    b = _run(tmp_path, "b", cfg(lr=2, seed=0), [])
    a1 = _run(tmp_path, "a-s1", cfg(lr=1, seed=1), [])
    assert group_by_config([a0, b, a1]) == {"a": [a0, a1], "b": [b]}
    other = tmp_path / "elsewhere"
    other.mkdir()
    a_lr3 = _run(other, "a-s0", cfg(lr=3, seed=0), [])  # same name, different config
    assert group_by_config([a0, a1, a_lr3]) == {"a": [a0, a1], "a (2)": [a_lr3]}
    with pytest.raises(FileNotFoundError, match="no config.json"):
        group_by_config([tmp_path])
    bare = tmp_path / "bare"  # metrics but no config: cannot be grouped
    bare.mkdir()
    (bare / "metrics.jsonl").write_text("")
    with pytest.raises(SystemExit, match="bare: no config.json"):
        main(["compare", "--seeds", str(a0), str(bare)])


def test_seed_table_by_hand(tmp_path: Path) -> None:
    # seed 0: 0.10 -> 0.20 (+0.10); seed 1: 0.20 -> 0.20 (0); mean change +0.05, std 0.0707
    def history(before: float, after: float) -> list[dict]:
        return [{"kind": "eval", "step": 0, "L5/pass@1": before},
                {"kind": "eval", "step": 9, "L5/pass@1": after}]

    h0, h1 = history(0.1, 0.2), history(0.2, 0.2)
    table = seed_table({"ds": [h0, h1], "empty": [[{"kind": "train"}]]})
    lines = table.splitlines()
    assert lines[2] == "| ds | 2 | L5 | 0.150 ± 0.071 | 0.200 ± 0.000 | +0.050 ± 0.071 |"
    assert lines[3] == "| empty | 1 | - | - | - | - |"


def test_compare_cli_with_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = [{"step": 0, "L4/pass@1": 0.3}, {"step": 5, "L4/pass@1": 0.25}]
    runs = [_run(tmp_path, f"x-s{s}", cfg(seed=s), ev) for s in (0, 1)]
    assert main(["compare", "--seeds", *map(str, runs)]) == 0
    out = capsys.readouterr().out
    assert "| x | 2 | L4 | 0.300 ± 0.000 | 0.250 ± 0.000 | -0.050 ± 0.000 |" in out
    assert main(["compare", *map(str, runs)]) == 0
    assert "| x-s1 | L4 | 0.300 (step 0) | 0.250 (step 5) | -0.050 |" in capsys.readouterr().out
    twin = tmp_path / "copy"
    twin.mkdir()
    same_name = _run(twin, "x-s1", cfg(seed=1), ev)
    assert main(["compare", str(runs[1]), str(same_name)]) == 0
    out = capsys.readouterr().out
    assert f"| {runs[1]} | L4 |" in out and f"| {same_name} | L4 |" in out


def test_sampled_tokens_per_problem_leaves_cached_problems_out(tmp_path: Path) -> None:
    """4 problems a step: 400 tokens / 4; then 1 cached (its 20 direct tokens out): 300 / 3;
    a step with every problem cached counts nothing. (400 + 300) / (4 + 3) = 100."""
    d = tmp_path / "tree"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"run": {"problems_per_step": 4}}))
    rows = [{"kind": "train", "sampled_tokens": 400},
            {"kind": "eval", "sampled_tokens": 10**6},
            {"kind": "train", "sampled_tokens": 320, "cache_sampled_tokens": 20,
             "cache_cached_problems": 1},
            {"kind": "train", "sampled_tokens": 30, "cache_sampled_tokens": 30,
             "cache_cached_problems": 4}]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert sampled_tokens_per_problem(d) == pytest.approx(100.0)
    (d / "metrics.jsonl").write_text(json.dumps(rows[-1]) + "\n")
    with pytest.raises(ValueError, match="no training step sampled a problem"):
        sampled_tokens_per_problem(d)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        sampled_tokens_per_problem(tmp_path)


def _hist(before: float, after: float, tokens: int = 100) -> list[dict]:
    return [{"kind": "eval", "step": 0, "L4/pass@1": before},
            {"kind": "train", "step": 1, "cumulative_sampled_tokens": tokens},
            {"kind": "eval", "step": 1, "L4/pass@1": after}]


def test_paired_by_hand() -> None:
    # seeds 0/1/2: A changes +0.10, +0.04, +0.07; B +0.01, +0.02, +0.00 -> d = .09, .02, .07
    a = [_hist(0.1, 0.2, 300), _hist(0.2, 0.24, 300), _hist(0.1, 0.17, 300)]
    b = [_hist(0.1, 0.11, 100), _hist(0.2, 0.22, 100), _hist(0.1, 0.1, 100)]
    (row,) = report.paired(a, b)
    mean, se = row.diff
    assert mean == pytest.approx(0.06) and se == pytest.approx(0.036055 / 3 ** 0.5, rel=1e-4)
    lo, hi = row.interval  # t(2) = 4.30: 0.06 ± 0.0895 holds 0
    assert lo == pytest.approx(0.06 - 4.30 * se) and lo < 0 < hi
    assert "neither ahead" in report.verdict([row], "DS", "GRPO")
    table = report.paired_table([row], "DS", "GRPO").splitlines()
    assert table[2] == ("| L4 | +0.070 ± 0.030 | +0.010 ± 0.010 | +0.060 ± 0.021 | "
                        "[-0.030, +0.150] | 3.00 |")
    # a clear, consistent lead of B: the interval excludes 0
    c = [_hist(0.1, 0.1), _hist(0.2, 0.2), _hist(0.1, 0.1)]
    d = [_hist(0.1, 0.2), _hist(0.2, 0.31), _hist(0.1, 0.19)]
    text = report.verdict(report.paired(c, d), "DS", "GRPO")
    assert text.startswith("L4: GRPO ahead of DS by 0.100")
    # one seed: no noise estimate, says so
    assert "one seed" in report.verdict(report.paired(a[:1], b[:1]), "DS", "GRPO")
    with pytest.raises(ValueError, match="same seeds"):
        report.paired(a, b[:2])


def test_paired_at_equal_tokens_stops_a_at_b_s_budget() -> None:
    # A evaluates at 100 tokens (0.15) and at 300 (0.3); B spends 120 in all and reaches 0.2
    a = [{"kind": "eval", "step": 0, "L4/pass@1": 0.1},
         {"kind": "train", "step": 1, "cumulative_sampled_tokens": 100},
         {"kind": "eval", "step": 1, "L4/pass@1": 0.15},
         {"kind": "train", "step": 2, "cumulative_sampled_tokens": 300},
         {"kind": "eval", "step": 2, "L4/pass@1": 0.3}]
    b = _hist(0.1, 0.2, 120)
    (steps,) = report.paired([a], [b])
    (tokens,) = report.paired([a], [b], equal_tokens=True)
    assert steps.changes_a == pytest.approx((0.2,)) and steps.tokens_a == 300
    assert tokens.changes_a == pytest.approx((0.05,)) and tokens.tokens_a == 100
    assert tokens.changes_b == pytest.approx((0.1,)) and tokens.tokens_b == 120
    # A's first step already costs more than B's run: only its first evaluation is left
    (none,) = report.paired([a], [_hist(0.1, 0.2, 50)], equal_tokens=True)
    assert none.changes_a == (0.0,)
