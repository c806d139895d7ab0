"""The paper-1.5b preset: field by field against the released recipe, and its dry run."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED

from dslib import cli
from dslib.presets import dry_run, preset, rounds_preset
from dslib.tasks.math import dapo_grader

# docs/paper-notes.md#hyperparameters (round0.sh / paper App. A), as the issue lists it: dotted
# config paths
RELEASED = {
    "task.model": "nvidia/Nemotron-Research-Reasoning-Qwen-1.5B",
    "task.name": "deepmath",
    "task.grader": "dapo",
    "task.max_prompt_tokens": 2048,
    "run.problems_per_step": 256,
    "rollout.samples_per_problem": 8,
    "optim.mini_batches": 8,            # 256 prompts / 32 per mini-batch
    "optim.ppo_epochs": 1,
    "rollout.temperature": 1.0,
    "optim.lr": 1e-6,
    "optim.warmup_steps": 10,
    "optim.weight_decay": 0.1,
    "optim.grad_clip": 1.0,
    "optim.adam_betas": (0.9, 0.999),
    "run.steps": 100,
    "run.checkpoint_every": 5,
    "eval.every": 0,                    # test_freq=-1
    "mode": "deepsearch",
    "optim.micro_batch_tokens": 18432,  # ppo_max_token_len_per_gpu
    "optim.dtype": "float32",           # FSDP mixed precision: fp32 master weights ...
    "optim.compute_dtype": "bfloat16",  # ... bf16 compute
}
RELEASED_SEARCH = {"step_tokens": 256, "max_depth": 64, "width": 8, "n_trajectories": 8,
                   "temperature": 1.0, "top_p": 1.0, "uct_c": 2.0, "gamma_min": 0.1,
                   "lambda1": 0.4, "lambda3": 0.01, "depth_bonus": "sqrt",
                   "backtrace": "global", "incomplete_score": -1.0}
RELEASED_GRPO = {"clip_low": 0.2, "clip_high": 0.28, "dual_clip": 10.0,
                 "loss_agg": "token_mean", "overlong_buffer": 4096,
                 "overlong_factor": 1.0, "max_response_tokens": 16384, "std_norm": False,
                 "eps_q": 1.0, "q_max": 1.0}


def test_paper_preset_matches_the_released_recipe_field_by_field():
    cfg = preset("paper-1.5b")
    for name, want in RELEASED.items():
        value = cfg
        for part in name.split("."):
            value = getattr(value, part)
        assert value == want, name
    for name, want in RELEASED_SEARCH.items():
        assert getattr(cfg.rollout.search, name) == want, f"search.{name}"
    for name, want in RELEASED_GRPO.items():
        assert getattr(cfg.optim.grpo, name) == want, f"grpo.{name}"
    search = cfg.rollout.search
    assert search.step_tokens * search.max_depth == 16384  # max response length
    assert [p.split("/")[-1] for p in cfg.task.data] == [
        "deepmath103k_round0_train_0.jsonl", "deepmath103k_round0_train_25.jsonl"]
    r = rounds_preset("paper-1.5b")
    assert (r.steps_per_round, r.register_threshold, r.k, r.delta) == (100, 0.25, 4, 0.25)
    assert not r.filter_first  # the round-0 files already are the hard subset


def test_dry_run_shrinks_sizes_but_keeps_the_recipe():
    cfg = dry_run(preset("paper-1.5b"))
    assert cfg.run.dry_run and cfg.run.device == "cpu" and cfg.run.problems_per_step == 2
    assert (cfg.task.name, cfg.task.grader, cfg.optim.lr, cfg.optim.grpo.clip_high) == (
        "deepmath", "dapo", 1e-6, 0.28)


@pytest.mark.parametrize("response, correct, reason", [
    ("so \\boxed{56}", True, "ok"),
    ("so \\boxed{56.0}", False, "wrong"),        # exact string match after normalisation
    ("the answer is 56", False, "no_answer"),    # [INVALID]: no box
])
def test_dapo_grader_verdicts(response, correct, reason):
    v = dapo_grader(response, "56")
    assert (v.correct, v.reason) == (correct, reason)


def test_cli_dry_run_of_the_paper_preset(tmp_path, capsys):
    args = ["train", "--preset", "paper-1.5b", "--set", "run.dry_run=true", "--runs",
            str(tmp_path), "--name", "dry"]
    assert cli.main(args) == 0
    rows = [json.loads(x) for x in (tmp_path / "dry" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2]
    cfg = json.loads((tmp_path / "dry" / "config.json").read_text())
    assert cfg["task"]["name"] == "deepmath" and cfg["run"]["dry_run"] is True
    assert (tmp_path / "dry" / "checkpoint" / "state.json").exists()


@pytest.mark.skipif(not (SHARED / "data" / "deepmath").exists(), reason="needs ../shared data")
def test_dry_run_rounds_on_the_released_files(tmp_path):
    files = [str(SHARED / "data" / "deepmath" / f"deepmath103k_round0_train_{s}.jsonl")
             for s in (0, 25)]
    args = ["rounds", "--preset", "paper-1.5b", "--runs", str(tmp_path), "--name", "r",
            "--rounds", "2", "--steps-per-round", "1", "--set", "run.dry_run=true",
            "--set", f"task.data={json.dumps(files)}"]
    assert cli.main(args) == 0
    state = json.loads((tmp_path / "r" / "rounds.json").read_text())
    assert state["rows"][0]["hard"] == 64  # the dry run's cap; no first filter (pre-filtered)
    assert not (tmp_path / "r" / "filter-1.jsonl").exists()
    assert (tmp_path / "r" / "filter-2.jsonl").exists()
    assert state["rows"][1]["model"].endswith("round-1/checkpoint")
