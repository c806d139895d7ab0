"""Named starting points: the tiny CPU preset, the paper's 1.5B recipe, and their dry run.

``dslib train --preset NAME [--mode M] [--set SECTION.FIELD=VALUE ...]`` is
:func:`configure`; notebooks and ``reproduce/`` call it (or :func:`preset` +
``config.override``) the same way. Round settings (``dslib rounds``) have presets of the same
names (:func:`rounds_preset`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from dslib import tiny
from dslib.build import check_levels
from dslib.config import (
    MODES,
    EvalConfig,
    OptimConfig,
    RolloutConfig,
    RoundsConfig,
    RunConfig,
    SearchConfig,
    TaskConfig,
    TrainConfig,
    TreeGRPOConfig,
    override,
    update,
)


def tiny_preset() -> TrainConfig:
    """The CPU preset: the tiny reasoner trained on its hard levels (4 and 5 numbers), where
    most problems are unsolved (the paper's plateau regime), and evaluated on 3-5 numbers;
    300 steps, under 10 minutes on 2 cores.

    Scaled from the released run (docs/paper-notes.md#hyperparameters): responses are capped at
    max_depth x step_tokens = 80 tokens with the DAPO overlong buffer at the same 25% of the cap
    (4,096 of 16,384 there, 20 of 80 here); lr 5e-5 is about 1/60 of the SFT peak (the released run:
    1e-6 on a model pre-trained at ~1e-4 or more). Flat samples and evaluations get the same
    80-token cap as the tree.
    """
    return TrainConfig(
        task=TaskConfig(levels=(4, 5)),
        rollout=RolloutConfig(samples_per_problem=4, max_new_tokens=80,
                              search=SearchConfig.tiny()),
        optim=OptimConfig(lr=5e-5, warmup_steps=5, weight_decay=0.0, mini_batches=2,
                          grpo=TreeGRPOConfig(overlong_buffer=20, max_response_tokens=80)),
        eval=EvalConfig(every=150, problems=200, samples=4),
        run=RunConfig(steps=300, problems_per_step=16),
    )


#: the released run's round-0 data (docs/paper-notes.md#hyperparameters): the two Pass1@4 hard
#: subsets, in this order
PAPER_DATA = ("data/deepmath103k_round0_train_0.jsonl", "data/deepmath103k_round0_train_25.jsonl")


def paper_preset() -> TrainConfig:
    """The released 1.5B recipe, field by field (docs/paper-notes.md#hyperparameters,
    ``round0.sh``).

    | field                        | value                                 | released run          |
    |------------------------------|---------------------------------------|-----------------------|
    | task.model                   | Nemotron-Research-Reasoning-Qwen-1.5B | actor model path      |
    | task.data                    | DeepMath-103K round-0 hard subsets    | train_0 + train_25    |
    | task.max_prompt_tokens       | 2048 (left truncation)                | max_prompt_length     |
    | search.step_tokens x depth   | 256 x 64 = 16,384 response tokens     | max_response_length   |
    | search.width / n_traj.       | 8 / 8, temperature 1.0, top-p 1.0     | mcts_config           |
    | problems_per_step x n        | 256 x 8 = 2,048 sequences             | train_batch_size, n   |
    | optim.mini_batches           | 8 (32 prompts = 256 sequences each)   | ppo_mini_batch_size   |
    | optim.micro_batch_tokens     | 18,432 per forward, grad. checkpointing | ppo_max_token_len   |
    | lr, warm-up, wd, clip        | 1e-6, 10 steps, 0.1, 1.0; AdamW (0.9, 0.999), constant |  |
    | grpo clip / dual / agg       | 0.2 / 0.28, 10, token-mean; no KL, no entropy bonus |     |
    | overlong buffer              | 4,096 tokens, factor 1.0              | reward_kwargs         |
    | task.grader                  | dapo (math_dapo compute_score_boxed)  | reward fn             |
    | steps / checkpoints / eval   | 100 per round / every 5 / none        | save_freq, test_freq  |
    | replay threshold             | 0.25 (:func:`paper_rounds`)           | replay_buffer_0.25    |
    | dtype / compute_dtype        | fp32 master weights / bf16 autocast   | FSDP mixed precision  |

    ``task.data`` paths are relative to the working directory: point them at the converted
    JSONL or the released parquet files with ``--set task.data=[...]``.
    """
    return TrainConfig(
        task=TaskConfig(name="deepmath", model="nvidia/Nemotron-Research-Reasoning-Qwen-1.5B",
                        data=PAPER_DATA, grader="dapo", max_prompt_tokens=2048, levels=()),
        rollout=RolloutConfig(
            strategy="tree", samples_per_problem=8, max_new_tokens=16384, temperature=1.0,
            search=SearchConfig(step_tokens=256, max_depth=64, width=8, n_trajectories=8,
                                temperature=1.0, top_p=1.0)),
        optim=OptimConfig(lr=1e-6, warmup_steps=10, weight_decay=0.1, grad_clip=1.0,
                          adam_betas=(0.9, 0.999), mini_batches=8, ppo_epochs=1,
                          micro_batch_tokens=18432, gradient_checkpointing=True,
                          dtype="float32", compute_dtype="bfloat16",
                          grpo=TreeGRPOConfig.paper_1p5b()),
        eval=EvalConfig(every=0, levels=()),
        run=RunConfig(steps=100, problems_per_step=256, checkpoint_every=5, seed=0,
                      device="cuda"),
    )


def dry_run(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` shrunk to run its code path in seconds on a CPU (``run.dry_run=True``).

    A random tiny Qwen2 stands in for the model (``build.dry_run_model``); batch, tree and token
    sizes shrink (adaptive: rounds of at most 2, at most 4 samples, the default budget); data
    files that do not exist here are replaced by built-in sample problems.
    Everything else (task, grader, loss, schedule, switches) stays the preset's.
    """
    data = cfg.task.data if cfg.task.data and all(Path(d).exists() for d in cfg.task.data) else ()
    grpo = cfg.optim.grpo
    chunk = min(cfg.rollout.adaptive.chunk, 2)
    return update(cfg, {
        "run.dry_run": True, "task.data": data, "run.device": "cpu", "optim.dtype": "float32",
        "optim.compute_dtype": "float32", "run.steps": min(cfg.run.steps, 2),
        "run.problems_per_step": 2, "rollout.samples_per_problem": 2,
        "rollout.max_new_tokens": 24, "optim.mini_batches": 1,
        "task.max_prompt_tokens": min(cfg.task.max_prompt_tokens or 192, 192),
        "run.checkpoint_every": 1,
        "optim.micro_batch_tokens": 256 if cfg.optim.micro_batch_tokens else None,
        "eval.problems": 2, "eval.samples": 1,
        "rollout.search": dataclasses.replace(cfg.rollout.search, step_tokens=8, max_depth=3,
                                              width=2, n_trajectories=2),
        "rollout.adaptive": dataclasses.replace(
            cfg.rollout.adaptive, chunk=chunk, budget_tokens=None,
            max_samples=max(chunk, min(cfg.rollout.adaptive.max_samples, 4))),
        "optim.grpo": dataclasses.replace(
            grpo, max_response_tokens=24,
            overlong_buffer=6 if grpo.overlong_buffer else grpo.overlong_buffer),
    })


#: named presets (``dslib train --preset NAME``)
PRESETS: dict[str, Callable[[], TrainConfig]] = {"tiny": tiny_preset, "paper-1.5b": paper_preset}


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]()


def configure(name: str, assignments: Sequence[str] = (), mode: str | None = None,
              tiny_build: Sequence[str] = ()) -> TrainConfig:
    """The preset ``name`` with ``--mode``, every ``--set`` and ``--tiny`` applied, checked.

    ``mode`` ("deepsearch", "grpo" or "adaptive-grpo") is ``rollout.strategy``;
    ``tiny_build`` adds to ``task.tiny_build``. A dry run (``run.dry_run=true``) is shrunk by
    :func:`dry_run`. The countdown levels and splits are checked against the tiny build now
    (:func:`check`), not after the model has loaded.
    """
    cfg = preset(name)
    if mode is not None:
        if mode not in MODES:
            raise ValueError(f"--mode {mode!r}: choose from {sorted(MODES)}")
        cfg = update(cfg, {"rollout.strategy": MODES[mode]})
    cfg = override(cfg, list(assignments))
    if tiny_build:
        cfg = update(cfg, {"task.tiny_build": (*cfg.task.tiny_build, *tiny_build)})
    cfg = dry_run(cfg) if cfg.run.dry_run else cfg
    check(cfg)
    return cfg


def check(cfg: TrainConfig) -> None:
    """What a config alone cannot know: the tiny build's fields, levels and splits.

    With model "tiny" the build is ``task.tiny_build`` applied to the default; with a
    checkpoint directory of a tiny build, its ``build_info.json``. Other models: nothing.
    """
    if cfg.task.name != "countdown":
        return
    if cfg.task.model == "tiny":
        try:
            build = tiny.override(tiny.default_config(), list(cfg.task.tiny_build))
        except ValueError as err:
            raise ValueError(f"task.tiny_build: {err}") from None
    else:
        info = Path(cfg.task.model) / "build_info.json"
        if not info.exists():
            return
        build = tiny.config_from_info(json.loads(info.read_text()).get("config") or {}, info)
    check_levels(cfg, build)


# ----------------------------------------------------------------------------- rounds


def tiny_rounds() -> RoundsConfig:
    """Rounds of the tiny preset: 3 x 50 steps on a pool of 400 (half the ``tiny`` preset's
    300 steps, so that ``make demo`` stays within minutes).

    50 steps x 16 problems = 800 draws per round, about two passes over the ~390 problems the
    first filter keeps: the released run's ratio (100 steps x 256 over 13,658 problems,
    docs/paper-notes.md#hyperparameters). Filtering all 1,722 RL problems would take minutes on 2
    cores; 400 take seconds.
    """
    return RoundsConfig(rounds=3, steps_per_round=50, pool_size=400)


def paper_rounds() -> RoundsConfig:
    """The released schedule (docs/paper-notes.md#rounds, #hyperparameters, Table 6): 100 steps a
    round, replay threshold 0.25, 5 rounds as in Table 6; the round-0 files are already filtered, so
    round 1 trains on them."""
    return RoundsConfig(rounds=5, steps_per_round=100, register_threshold=0.25,
                        filter_first=False)


#: round settings per training preset (``dslib rounds --preset NAME``)
ROUND_PRESETS: dict[str, Callable[[], RoundsConfig]] = {"tiny": tiny_rounds,
                                                        "paper-1.5b": paper_rounds}


def rounds_preset(name: str) -> RoundsConfig:
    if name not in ROUND_PRESETS:
        raise ValueError(f"no round settings for preset {name!r}; have {sorted(ROUND_PRESETS)}")
    return ROUND_PRESETS[name]()


def smoke(cfg: TrainConfig, rcfg: RoundsConfig) -> tuple[TrainConfig, RoundsConfig]:
    """A few-step version of a run with the same code path (tests, ``smoke=True`` notebooks)."""
    cfg = update(cfg, {"run.problems_per_step": 4, "eval.problems": 8, "eval.samples": 2,
                       "rollout.search.n_trajectories": 2})
    rcfg = dataclasses.replace(rcfg, rounds=min(rcfg.rounds, 2), steps_per_round=2,
                               pool_size=16)
    return cfg, rcfg
