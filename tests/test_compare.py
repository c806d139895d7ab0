"""``dslib compare``: the per-run table and the seed-grouped mean ± std table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
