"""Hard-subset training, hygiene, the rollout log, and the multi-round loop end to end."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from dslib import cli, hygiene, presets
from dslib.build import countdown_task
from dslib.config import RoundsConfig, SearchConfig, TrainConfig, update
from dslib.filtering import (
    FilterFileError,
    FilterHeader,
    FilterRecord,
    read_filter,
    subset_from_file,
    write_filter,
)
from dslib.replay import ReplayBuffer, correct_share
from dslib.rollouts import Sample, flatten
from dslib.rounds import Rounds, cache_savings, round_config, round_outcomes, table6
from dslib.trainer import Trainer


def small_cfg(changes: dict | None = None) -> TrainConfig:
    """A small countdown run with ``changes`` (dotted paths)."""
    base = update(TrainConfig(), {
        "run.steps": 2, "run.problems_per_step": 4, "rollout.samples_per_problem": 2,
        "optim.lr": 1e-4, "optim.warmup_steps": 1, "optim.weight_decay": 0.0,
        "optim.mini_batches": 1, "eval.every": 0, "eval.problems": 4, "eval.samples": 2,
        "task.levels": (3,), "eval.levels": (3,), "rollout.max_new_tokens": 40,
        "rollout.search": SearchConfig.tiny(n_trajectories=2, width=2, max_depth=4)})
    return update(base, changes or {})


def write_subset(path, ids_successes, k=4):
    recs = [FilterRecord(i, s, k) for i, s in ids_successes]
    write_filter(path, recs, FilterHeader("f" * 16, k))


# ----------------------------------------------------------------------------- subset


def test_trainer_trains_only_on_the_problems_the_filter_keeps(quick_reasoner, tmp_path):
    items = countdown_task(small_cfg(), quick_reasoner).train_items
    a, b, c = (str(it.id) for it in items[:3])
    write_subset(tmp_path / "f.jsonl", [(a, 0), (b, 1), (c, 2)])  # 2/4 > 0.25: dropped
    task = countdown_task(small_cfg({"task.train_subset": str(tmp_path / "f.jsonl")}),
                          quick_reasoner)
    assert [str(it.id) for it in task.train_items] == [a, b]
    t = Trainer(small_cfg(), tmp_path / "r", task=task,
                model=quick_reasoner.load_model(), progress=False)
    assert {str(it.id) for it in t.problems_for(0) + t.problems_for(1)} == {a, b}


def test_foreign_or_empty_subset_files_are_clear_errors(quick_reasoner, tmp_path):
    items = countdown_task(small_cfg(), quick_reasoner).train_items
    write_subset(tmp_path / "x.jsonl", [("cd9-not-a-problem", 0)])
    with pytest.raises(FilterFileError, match="not in the training data"):
        subset_from_file(items, tmp_path / "x.jsonl")
    write_subset(tmp_path / "y.jsonl", [(str(items[0].id), 4)])
    with pytest.raises(FilterFileError, match="keeps no problem"):
        subset_from_file(items, tmp_path / "y.jsonl")


# ----------------------------------------------------------------------------- hygiene


def sample(tok, text: str, correct: bool) -> Sample:
    ids = tok.encode(text, add_special_tokens=False)
    return Sample([1], ids, [0.0] * len(ids), [0] * len(ids), 1.0 if correct else -1.0,
                  correct, [0.0] * len(ids))


def test_hygiene_drops_only_degenerate_incorrect_samples(quick_reasoner):
    tok = countdown_task(small_cfg(), quick_reasoner).tokenizer
    loop = "3 + 4 = 7\n" * 12
    normal = "5 * 3 = 15\n15 - 4 = 11\n\\boxed{5*3-4}"
    samples = [sample(tok, loop, False), sample(tok, normal, False), sample(tok, loop, True)]
    # the correct loop is kept (paper Sec. 4.2)
    assert hygiene.degenerate(samples, tok) == [samples[0]]
    with pytest.raises(ValueError, match="needs the task's tokenizer"):
        hygiene.degenerate(samples, None)


def test_hygiene_runs_inside_the_step_and_is_logged(quick_reasoner, tmp_path, monkeypatch):
    task = countdown_task(small_cfg(), quick_reasoner)
    t = Trainer(small_cfg({"filters": ("hygiene",), "rollout.strategy": "flat",
                           "run.steps": 1}), tmp_path, task=task,
                model=quick_reasoner.load_model(), progress=False)
    calls = []
    monkeypatch.setattr(hygiene, "degenerate", lambda s, tok: calls.append(len(s)) or [
        x for x in s if not x.correct][:1])
    seen = []
    monkeypatch.setattr(t.learner, "update", lambda samples, seed: seen.extend(samples) or {})
    row = t.train_step()
    assert calls == [len(g.samples) for g in t.last_groups]  # one call per group
    wrong_groups = sum(any(not s.correct for s in g.samples) for g in t.last_groups)
    assert row["hygiene_dropped"] == wrong_groups == len(flatten(t.last_groups)) - len(seen)
    assert row["sequences"] == len(flatten(t.last_groups))  # metrics: every rollout


# ----------------------------------------------------------------------------- rollout log


def test_rollout_log_is_cut_back_to_the_checkpoint_on_resume(quick_reasoner, tmp_path):
    task = countdown_task(small_cfg(), quick_reasoner)
    t = Trainer(small_cfg({"run.log_rollouts": True, "run.steps": 3}), tmp_path, task=task,
                model=quick_reasoner.load_model(), progress=False)
    t.train(steps=1)
    rows = [json.loads(x) for x in (tmp_path / "rollouts.jsonl").read_text().splitlines()]
    assert len(rows) == len(flatten(t.last_groups)) and {r["step"] for r in rows} == {1}
    with open(tmp_path / "rollouts.jsonl", "a") as f:  # step 2 logged, then killed
        f.write(json.dumps({"step": 2, "problem_id": "x", "correct": True,
                            "response_ids": [1]}) + "\n")
    Trainer.resume(tmp_path, task=task, progress=False)
    assert set(round_outcomes(tmp_path / "rollouts.jsonl")) == {r["problem_id"] for r in rows}


# ----------------------------------------------------------------------------- bookkeeping


def test_cache_savings_arithmetic():
    rows = [{"kind": "train", "cached_groups": 1, "cache_sampled_tokens": 10,
             "sampled_tokens": 310},  # 3 searched problems: 300 tokens
            {"kind": "train", "cached_groups": 0, "sampled_tokens": 400},  # 4 searched
            {"kind": "eval", "cached_groups": 99}]
    s = cache_savings(rows, problems_per_step=4)
    assert s["searches_skipped"] == 1 and s["searched"] == 7
    assert s["tokens_per_search"] == pytest.approx(700 / 7)
    assert s["saved_tokens"] == pytest.approx(100 - 10)
    assert s["saved_share"] == pytest.approx(90 / (710 + 90))


def test_table6_shape():
    row = {"round": 2, "cached": 765, "unsolved": 12893, "cached_ratio": 765 / 13658,
           "savings": {"searches_skipped": 3, "sampled_tokens": 1000, "saved_tokens": 50,
                       "saved_share": 0.05}, "eval_after": {"L3": 0.25}}
    md = table6([row])
    assert "| 2 | 765 | 12893 | 5.6% | 3 | 1,000 | 50 (5.0%) | 0.250 |" in md


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def two_rounds(tiny_reasoner, tmp_path_factory):
    """Two rounds on 3-number problems with the default tiny reasoner.

    Built so that no check depends on how well one build happens to solve: ``delta=1`` keeps
    the whole pool of 24 in every round and 3 steps of 8 problems draw each of them once per
    round, and ``register_threshold=1`` registers every problem solved at least once in
    round 1's 96 trajectories (any build that solves 3-number problems at all does). So the
    buffer of round 2 is not empty and every buffered problem is drawn in round 2.
    """
    out = tmp_path_factory.mktemp("rounds")
    cfg = small_cfg({"run.problems_per_step": 8, "eval.every": 1, "optim.lr": 5e-5,
                     "rollout.search": SearchConfig.tiny(n_trajectories=4)})
    rcfg = RoundsConfig(rounds=2, steps_per_round=3, pool_size=24, delta=1.0,
                        register_threshold=1.0)
    rows = Rounds(cfg, rcfg, out, progress=False).run()
    return cfg, rcfg, out, rows


def test_rounds_chain_filters_buffers_and_checkpoints(two_rounds):
    cfg, rcfg, out, rows = two_rounds
    assert [r["round"] for r in rows] == [1, 2]
    h1, recs1 = read_filter(out / "filter-1.jsonl")
    assert len(recs1) == 24 and h1.k == 4
    _, recs2 = read_filter(out / "filter-2.jsonl")
    assert {r.id for r in recs2} == {r.id for r in recs1}  # round 2 re-filters D_hard^(1)
    assert rows[0]["hard"] == 24 and rows[0]["cached"] == 0  # empty buffer in round 1
    assert rows[1]["model"].endswith("round-1/checkpoint")  # continues the previous weights
    for r in rows:
        assert r["cached"] + r["unsolved"] == r["hard"]
    # registration follows the code rule on the round's logged rollouts
    outcomes = round_outcomes(out / "round-1" / "rollouts.jsonl")
    assert set(outcomes) == {r.id for r in recs1}  # each problem of the pool was searched
    expect = {p for p, rs in outcomes.items() if 0 < correct_share(rs) <= 1.0}
    buf2 = ReplayBuffer.load(out / "buffer-2.json")
    assert set(buf2.ids()) == expect
    assert buf2.ids(), "round 1 solved none of 24 three-number problems in 96 trajectories"
    assert rows[1]["cached"] == len(buf2)


def test_round_two_serves_every_buffered_problem_from_the_cache(two_rounds):
    """Through the real call path: each drawn buffered problem skipped the search."""
    _, rcfg, out, _ = two_rounds
    buf = ReplayBuffer.load(out / "buffer-2.json")
    t = Trainer.resume(out / "round-2", progress=False)
    metrics = [json.loads(x) for x in (out / "round-2" / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if m["kind"] == "train"]
    expect = [sum(str(it.id) in buf for it in t.problems_for(s))
              for s in range(rcfg.steps_per_round)]
    assert [m["cached_groups"] for m in train] == expect
    assert sum(expect) == len(buf) > 0  # the whole pool is drawn once: every entry served
    # the cached groups' direct rollouts are logged, so cache_savings subtracts them
    for m, hits in zip(train, expect):
        assert (m["cache_sampled_tokens"] > 0) == (hits > 0)


def test_rounds_resume_and_grow(two_rounds):
    cfg, rcfg, out, rows = two_rounds
    again = Rounds(cfg, rcfg, out, progress=False)
    assert again.rows == rows and again.run() == rows  # nothing to redo
    with pytest.raises(ValueError, match="another configuration"):
        Rounds(cfg, replace(rcfg, k=8), out, progress=False)
    assert "| 1 | 0 |" in (out / "table6.md").read_text()
    # a field missing from the saved config takes its default, as in any config file
    state_path = out / "rounds.json"
    saved = state_path.read_text()
    state = json.loads(saved)
    del state["train_config"]["optim"]["compute_dtype"]
    state_path.write_text(json.dumps(state))
    try:
        assert Rounds(cfg, rcfg, out, progress=False).rows == rows
    finally:
        state_path.write_text(saved)


# ----------------------------------------------------------------------------- CLI


def test_cli_filter_and_rounds(quick_reasoner, tmp_path, capsys):
    common = ["--preset", "tiny", "--runs", str(tmp_path), "--pool", "6",
              "--set", f"task.model={quick_reasoner.path}", "--set", "task.levels=[3]",
              "--set", "rollout.max_new_tokens=24"]
    assert cli.main(["filter", *common]) == 0
    out = capsys.readouterr().out
    assert "kept" in out and "train_subset=" in out
    _, recs = read_filter(tmp_path / "filter-tiny.jsonl")
    assert len(recs) == 6
    args = ["rounds", *common, "--rounds", "1", "--steps-per-round", "1", "--name", "r",
            "--set", "run.problems_per_step=2", "--set", "eval.every=0",
            "--set", "rollout.search.n_trajectories=2", "--set", "rollout.search.max_depth=3"]
    assert cli.main(args) == 0
    assert "# cached" in capsys.readouterr().out
    assert (tmp_path / "r" / "buffer-2.json").exists()
    with pytest.raises(SystemExit, match="another configuration"):
        cli.main([*args[:-2], "--set", "rollout.search.max_depth=4"])
    with pytest.raises(SystemExit, match="RoundsConfig.rounds must be >= 1, got 0"):
        cli.main([*args[:5], "--rounds", "0"])


def test_history_joins_the_rounds_into_one_run(two_rounds):
    cfg, rcfg, out, _ = two_rounds
    hist = Rounds(cfg, rcfg, out, progress=False).history()
    train = [r for r in hist if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 2 * rcfg.steps_per_round + 1))
    tokens = [r["cumulative_sampled_tokens"] for r in train]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
    evals = [r for r in hist if r["kind"] == "eval"]
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 2 * rcfg.steps_per_round


def test_round_config_keeps_tiny_build_only_for_the_tiny_model():
    cfg = update(presets.preset("tiny"), {"task.tiny_build": ("sft_steps=9",)})
    first = round_config(cfg, RoundsConfig(), 1, "tiny", None, None)
    assert first.task.tiny_build == ("sft_steps=9",)
    later = round_config(cfg, RoundsConfig(), 2, "runs/x/round-1/checkpoint", None, None)
    assert later.task.model == "runs/x/round-1/checkpoint" and later.task.tiny_build == ()
    assert later.run.seed == cfg.run.seed + 1000 and later.run.log_rollouts
