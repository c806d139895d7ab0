"""The RL loop: DeepSearch (tree search + Tree-GRPO) or a flat GRPO/DAPO baseline.

One training step (reference §4, §6; the released code's ``ray_trainer.fit`` + MCTS rollout):

1. draw ``problems_per_step`` problems (a fixed shuffle per epoch, seeded);
2. ``before_rollout`` hook: the efficiency issue fills it with cached solutions (replay buffer);
3. rollouts: ``search.run`` over all problems at once (mode ``deepsearch``) or ``n`` flat samples
   per problem in one ``policy.sample`` call (mode ``grpo``);
4. training signal: per-token rewards and group advantages from :mod:`dslib.tree_grpo`
   (flat samples: the terminal score on every token, so the loss is DAPO's);
5. old log-probs recomputed by the current model (the code's actor recompute, §4.3);
6. ``ppo_epochs`` passes of ``mini_batches`` optimizer updates (AdamW, warm-up then constant,
   weight decay, grad-norm clip), the clipped loss of :func:`dslib.tree_grpo.policy_loss`;
7. the policy backend sees the new weights (shared model: in place; else ``load_weights``).

State lives in :class:`Trainer` only. Every step reseeds every random source from
``(seed, step)``, so a run resumed from a checkpoint continues exactly as if never stopped
(model, optimizer and scheduler come from the checkpoint; nothing else carries state).

Files of a run directory (``runs/<name>/``):

| file              | content                                                          |
|-------------------|------------------------------------------------------------------|
| ``config.json``   | the full :class:`TrainConfig`                                    |
| ``metrics.jsonl`` | one JSON line per step (and per evaluation, ``"kind": "eval"``)  |
| ``checkpoint/``   | model + tokenizer (HF directory), ``optimizer.pt``, ``state.json`` |
| ``curves.png``    | training curves, redrawn at the end                              |

Shapes inside an update (B sequences of a mini-batch, T = longest prompt + response):

| tensor          | shape      | meaning                                                  |
|-----------------|------------|----------------------------------------------------------|
| ``input_ids``   | [B, T]     | prompt + response, right-padded                          |
| ``resp_mask``   | [B, T - 1] | 1 where position t predicts a response token t + 1       |
| ``adv``         | [B, T - 1] | per-token advantage at the same positions                |
| ``old_logp``    | [B, T - 1] | recomputed before the first update of the step           |
| ``step_ids``    | [B, T - 1] | node index of each response token (step-mean loss), -1 pad |
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dslib import distributed, search, tree_grpo
from dslib.config import SearchConfig, parse_assignment
from dslib.evaluate import evaluate
from dslib.progress import progress_bar
from dslib.tree_grpo import TreeGRPOConfig
from dslib.verify import Verdict

MODES = ("deepsearch", "grpo")
TASKS = ("countdown", "deepmath")


# ----------------------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """Everything one training run needs; presets in :data:`PRESETS`, CLI ``--set a.b=v``."""

    mode: str = "deepsearch"
    """"deepsearch" (tree search + Tree-GRPO) or "grpo" (flat samples, DAPO loss)"""
    model: str = "tiny"
    """"tiny" (the cached tiny reasoner, built if missing) or a checkpoint directory"""
    tiny_build: tuple[str, ...] = ()
    """with model "tiny": ``FIELD=VALUE`` changes to the tiny reasoner's build
    (:class:`dslib.tiny.TinyConfig`), e.g. ``seed=1``; that build is made once and cached
    like the default one (CLI: ``--tiny``)"""
    task: str = "countdown"
    """problem source: "countdown" (the tiny reasoner's splits) or "deepmath" (DeepMath-103K
    files or a dataset name in ``data``, graded by ``grader``; the 1.5B recipe)"""
    data: tuple[str, ...] = ()
    """deepmath: training files (JSONL/parquet, read in order) or one Hugging Face dataset name"""
    grader: str = "dapo"
    """deepmath training reward: "dapo" (the released math_dapo exact match, reference §3.3) or
    "check" (``dslib.verify.check``, the evaluation grader)"""
    max_prompt_tokens: int | None = None
    """deepmath: keep the last N prompt tokens (the released run: 2048, truncation left)"""
    eval_benchmarks: tuple[str, ...] = ()
    """deepmath: benchmarks evaluated every ``eval_every`` steps (the released run: none)"""
    dry_run: bool = False
    """replace ``model`` by a tiny random Qwen2 (the 1.5B model's family) with a locally
    trained tokenizer, and cap the data: the preset's whole code path, no download"""
    device: str = "cpu"
    """"cpu", "cuda", "cuda:1", ... (the model, the sampler and the update run there)"""
    backend: str = "hf"
    """sampler: "hf" (transformers, shares the model: updates are visible in place) or "vllm"
    (``dslib.policy.vllm``: its own engine, new weights pushed after every update, asleep
    during the update when colocated on a GPU)"""
    dtype: str = "float32"
    """dtype of the trained model's parameters and AdamW state (the master weights): float32,
    or bfloat16 for memory experiments only: a bf16 weight (8-bit mantissa) cannot take an
    update of lr 1e-6, so pure-bf16 training at the paper's rate barely moves"""
    compute_dtype: str = "float32"
    """dtype of the learner's forward/backward: "bfloat16" runs them under ``torch.autocast``
    while the parameters stay in ``dtype`` (fp32 master weights with bf16 compute, the mixed
    precision of the released run's FSDP workers, §6); also the vLLM engine's dtype"""
    train_levels: tuple[int, ...] = (4, 5)
    """countdown levels drawn for training (the hard ones: where flat RL stalls)"""
    train_split: str = "rl"
    eval_levels: tuple[int, ...] = (3, 4, 5)
    eval_split: str = "test"
    steps: int = 30
    problems_per_step: int = 16
    samples_per_problem: int = 4
    """grpo: flat samples per problem (n); deepsearch uses ``search.n_trajectories``"""
    max_new_tokens: int = 64
    """length cap of flat samples (grpo mode and evaluation)"""
    temperature: float = 1.0
    lr: float = 1e-6
    warmup_steps: int = 10
    """linear warm-up of the learning rate over optimizer updates, then constant (§6)"""
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    mini_batches: int = 8
    """optimizer updates per step and epoch (released run: 2048 seqs / 256 = 8, §6)"""
    ppo_epochs: int = 1
    micro_batch_tokens: int | None = None
    """split each mini-batch's forward/backward into micro-batches of at most this many
    (padded) tokens, accumulating gradients (the released run: 18,432 tokens per GPU, §6);
    None = one pass per mini-batch. The loss is the same: each micro-batch is divided by the
    mini-batch's count"""
    gradient_checkpointing: bool = False
    """recompute activations in the backward pass (long responses on a GPU)"""
    shard_optimizer: bool = False
    """shard AdamW's state over ranks (ZeRO stage 1,
    ``torch.distributed.optim.ZeroRedundancyOptimizer``): each rank keeps the moments of
    1/world of the parameters; ignored with one process"""
    drop_unsolved_groups: bool = False
    """leave every group (tree, or flat group) without a correct trajectory out of the update:
    DAPO's dynamic-sampling filter applied to trees. NOT in the paper or the released code,
    which train on a confident mistake when a tree has no correct leaf (§3.4); an experiment
    for the tiny reasoner, whose trees are >= 90 % all wrong and whose code advantage then
    gives the mistake's prefix tanh(q) + 1 > 0 (§4.2)"""
    skip_zero_signal_updates: bool = True
    """skip the optimizer step of a mini-batch whose advantages are all zero: its gradient is
    zero, and an AdamW step would still move the weights along stale momentum. The released
    run's mini-batches (256 sequences) never have this; the tiny preset's small ones often do"""
    eval_every: int = 10
    """evaluate every this many steps (and before the first and after the last); 0 = never"""
    eval_at_start: bool = True
    """evaluate before the first step (a later round continuing the previous one's weights
    already has that number)"""
    eval_problems: int = 100
    eval_samples: int = 4
    checkpoint_every: int = 1
    """write the checkpoint every this many steps (a killed run loses at most that many)"""
    train_subset: str | None = None
    """a filter file (``dslib filter``, :mod:`dslib.filtering`): train only on the problems it
    keeps (the hard subset D_hard, reference §5.1); None = every problem of ``train_levels``"""
    replay_buffer: str | None = None
    """a replay-buffer file (:mod:`dslib.replay`): its problems skip the search and get hybrid
    groups of cached solutions + direct rollouts (reference §5.3); None = no buffer"""
    hygiene: bool = False
    """drop garbled or endlessly repeating INCORRECT samples before the update (paper §4.2,
    reference §5.5; not in the released code, so off by default; criterion:
    :func:`dslib.replay.is_degenerate`)"""
    log_rollouts: bool = False
    """append every sampled response's outcome to ``rollouts.jsonl`` (the released run dumps
    rollouts every step; the replay buffer of the next round is registered from them)"""
    seed: int = 0
    search: SearchConfig = field(default_factory=SearchConfig)
    grpo: TreeGRPOConfig = field(default_factory=TreeGRPOConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"TrainConfig.mode must be one of {MODES}, got {self.mode!r}")
        for name in ("steps", "problems_per_step", "samples_per_problem", "mini_batches",
                     "ppo_epochs", "max_new_tokens"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if isinstance(self.search, dict):
            self.search = SearchConfig(**self.search)
        if isinstance(self.grpo, dict):
            self.grpo = TreeGRPOConfig(**self.grpo)
        if self.task not in TASKS:
            raise ValueError(f"TrainConfig.task must be one of {TASKS}, got {self.task!r}")
        if self.grader not in ("dapo", "check"):
            raise ValueError(f"TrainConfig.grader must be 'dapo' or 'check', got {self.grader!r}")
        if self.backend not in ("hf", "vllm"):
            raise ValueError(f"TrainConfig.backend must be 'hf' or 'vllm', got {self.backend!r}")
        for name in ("dtype", "compute_dtype"):
            if getattr(self, name) not in ("float32", "bfloat16"):
                raise ValueError(f"TrainConfig.{name} must be float32 or bfloat16, "
                                 f"got {getattr(self, name)!r}")
        self.data = (self.data,) if isinstance(self.data, str) else tuple(self.data)
        self.tiny_build = ((self.tiny_build,) if isinstance(self.tiny_build, str)
                           else tuple(str(v) for v in self.tiny_build))
        if self.tiny_build:
            if self.model != "tiny":
                raise ValueError(f"TrainConfig.tiny_build changes the tiny reasoner's build; it "
                                 f"needs model='tiny', got model={self.model!r}")
            from dslib import tiny

            try:  # unknown fields fail now, not after the first minutes of a run
                tiny.override(tiny.default_config(), list(self.tiny_build))
            except ValueError as err:
                raise ValueError(f"TrainConfig.tiny_build: {err}") from None
        self.eval_benchmarks = tuple(self.eval_benchmarks)
        self.train_levels = tuple(int(v) for v in self.train_levels)
        self.eval_levels = tuple(int(v) for v in self.eval_levels)
        self.adam_betas = (float(self.adam_betas[0]), float(self.adam_betas[1]))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}")
        return cls(**data)


def tiny_preset() -> TrainConfig:
    """The CPU preset: the tiny reasoner trained on its hard levels (4 and 5 numbers), where
    most problems are unsolved (the paper's plateau regime), and evaluated on 3-5 numbers;
    300 steps, under 10 minutes on 2 cores.

    Scaled from the released run (reference §6): responses are capped at max_depth x
    step_tokens = 80 tokens with the DAPO overlong buffer at the same 25% of the cap
    (4,096 of 16,384 there, 20 of 80 here); lr 5e-5 is about 1/60 of the SFT peak (the released
    run: 1e-6 on a model pre-trained at ~1e-4 or more). Flat samples and evaluations get the
    same 80-token cap as the tree.
    """
    return TrainConfig(
        train_levels=(4, 5), steps=300, problems_per_step=16, samples_per_problem=4,
        max_new_tokens=80, lr=5e-5, warmup_steps=5, weight_decay=0.0, mini_batches=2,
        eval_every=150, eval_problems=200, eval_samples=4,
        search=SearchConfig.tiny(),
        grpo=TreeGRPOConfig(overlong_buffer=20, max_response_tokens=80),
    )


#: the released run's round-0 data (reference §6): the two Pass1@4 hard subsets, in this order
PAPER_DATA = ("data/deepmath103k_round0_train_0.jsonl", "data/deepmath103k_round0_train_25.jsonl")


def paper_preset() -> TrainConfig:
    """The released 1.5B recipe, field by field (reference §6, ``round0.sh``).

    | field                      | value                                   | released run          |
    |----------------------------|-----------------------------------------|-----------------------|
    | model                      | nvidia/Nemotron-Research-Reasoning-Qwen-1.5B | actor model path |
    | data                       | DeepMath-103K round-0 hard subsets      | train_0 + train_25    |
    | max_prompt_tokens          | 2048 (left truncation)                  | max_prompt_length     |
    | search.step_tokens x depth | 256 x 64 = 16,384 response tokens       | max_response_length   |
    | search.width / n_traj.     | 8 / 8, temperature 1.0, top-p 1.0       | mcts_config           |
    | problems_per_step x n      | 256 x 8 = 2,048 sequences               | train_batch_size, n   |
    | mini_batches               | 8 (32 prompts = 256 sequences each)     | ppo_mini_batch_size   |
    | micro_batch_tokens         | 18,432 per forward, gradient checkpointing | ppo_max_token_len |
    | lr, warm-up, wd, clip      | 1e-6, 10 steps, 0.1, 1.0; AdamW (0.9, 0.999), constant |  |
    | grpo clip / dual / agg     | 0.2 / 0.28, 10, token-mean; no KL, no entropy bonus |       |
    | overlong buffer            | 4,096 tokens, factor 1.0                | reward_kwargs         |
    | grader                     | dapo (math_dapo compute_score_boxed)    | reward fn             |
    | steps / checkpoints / eval | 100 per round / every 5 / none          | save_freq, test_freq  |
    | replay threshold           | 0.25 (``dslib.rounds``' paper preset)   | replay_buffer_0.25    |
    | dtype / compute_dtype      | fp32 master weights / bf16 autocast     | FSDP mixed precision  |

    ``data`` paths are relative to the working directory: point them at the converted JSONL
    (``../shared/data/deepmath/`` here) or the released parquet files with ``--set data=[...]``.
    """
    return TrainConfig(
        mode="deepsearch", model="nvidia/Nemotron-Research-Reasoning-Qwen-1.5B",
        task="deepmath", data=PAPER_DATA, grader="dapo", max_prompt_tokens=2048,
        train_levels=(), eval_levels=(), steps=100, problems_per_step=256,
        samples_per_problem=8, max_new_tokens=16384, temperature=1.0, lr=1e-6,
        warmup_steps=10, weight_decay=0.1, grad_clip=1.0, adam_betas=(0.9, 0.999),
        mini_batches=8, ppo_epochs=1, eval_every=0, checkpoint_every=5, seed=0,
        device="cuda", dtype="float32", compute_dtype="bfloat16", micro_batch_tokens=18432,
        gradient_checkpointing=True,
        search=SearchConfig(step_tokens=256, max_depth=64, width=8, n_trajectories=8,
                            temperature=1.0, top_p=1.0),
        grpo=TreeGRPOConfig.paper_1p5b(),
    )


def dry_run_config(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` shrunk to run its code path in seconds on a CPU (``dry_run=True``).

    A random tiny Qwen2 stands in for the model (:func:`dry_run_model`); batch, tree and token
    sizes shrink; data files that do not exist here are replaced by built-in sample problems.
    Everything else (task, grader, loss, schedule, switches) stays the preset's.
    """
    data = cfg.data if cfg.data and all(Path(d).exists() for d in cfg.data) else ()
    return dataclasses.replace(
        cfg, dry_run=True, data=data, device="cpu", dtype="float32", compute_dtype="float32",
        steps=min(cfg.steps, 2),
        problems_per_step=2, samples_per_problem=2, max_new_tokens=24, mini_batches=1,
        max_prompt_tokens=min(cfg.max_prompt_tokens or 192, 192), checkpoint_every=1,
        micro_batch_tokens=256 if cfg.micro_batch_tokens else None,
        eval_problems=2, eval_samples=1,
        search=dataclasses.replace(cfg.search, step_tokens=8, max_depth=3, width=2,
                                   n_trajectories=2),
        grpo=dataclasses.replace(
            cfg.grpo, max_response_tokens=24,
            overlong_buffer=6 if cfg.grpo.overlong_buffer else cfg.grpo.overlong_buffer),
    )


#: named presets (``dslib train --preset NAME``)
PRESETS: dict[str, Callable[[], TrainConfig]] = {"tiny": tiny_preset, "paper-1.5b": paper_preset}


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]()


def apply_overrides(cfg: TrainConfig, assignments: Sequence[str]) -> TrainConfig:
    """``["lr=1e-4", "search.width=8", "grpo.baseline=tree"]`` -> a new validated config.

    Values are parsed as JSON (numbers, true/false, null, lists), else taken as strings.
    """
    data = cfg.to_dict()
    for item in assignments:
        key, value = parse_assignment(item)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"--set {item!r}: {part!r} is not a config section")
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"--set {item!r}: unknown field; have {sorted(node)}")
        node[parts[-1]] = value
    return TrainConfig.from_dict(data)


# ----------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """One training sequence: a prompt, a response and its per-token advantages."""

    prompt_ids: list[int]
    response_ids: list[int]
    advantages: list[float]
    step_ids: list[int]
    """node index of each response token (0-based; flat samples: one step of the whole response)"""
    score: float
    correct: bool
    behaviour_logprobs: list[float]
    """log-probs the tokens were sampled with (zeros for cached solutions: unknown)"""
    group: int
    problem_id: str = ""
    cached: bool = False
    """a replayed verified solution (reference §5.3), not sampled this step"""


@dataclass
class Task:
    """What the trainer trains and evaluates on: prompted items and a token-level verifier."""

    train_items: list[Any]
    eval_sets: dict[str, list[Any]]
    verifier: Callable[[Any, list[int]], Verdict]
    tokenizer: Any = None
    source: Path | None = None
    """the model directory the task came from; its ``build_info.json`` (problem splits) is
    copied into every checkpoint, so a checkpoint reloads with the same splits"""


def countdown_task(cfg: TrainConfig, reasoner: Any) -> Task:
    """The tiny reasoner's RL split of the training levels and test split of the eval levels."""
    train = [it for lv in cfg.train_levels for it in reasoner.prompted(lv, cfg.train_split)]
    if not train:
        raise ValueError(f"no {cfg.train_split!r} problems for levels {cfg.train_levels}")
    if cfg.train_subset:
        from dslib.filtering import subset_from_file

        train = subset_from_file(train, cfg.train_subset)
    evals = {
        f"L{lv}": reasoner.prompted(lv, cfg.eval_split, cfg.eval_problems)
        for lv in cfg.eval_levels
    }
    return Task(train, evals, reasoner.verifier(), reasoner.load_tokenizer(), reasoner.path)


def outcome_group(
    item: Any,
    members: Sequence[tuple[list[int], list[float], bool]],
    verifier: Callable[[Any, list[int]], Verdict],
    grpo_cfg: TreeGRPOConfig,
    incomplete_score: float,
    group: int,
    n_cached: int = 0,
) -> list[Sample]:
    """One problem's group of whole responses with OUTCOME rewards (flat GRPO, cached groups).

    ``members``: (response ids, behaviour log-probs, finished with EOS); the first ``n_cached``
    are replayed solutions (reference §5.3). Each is verified and scored by
    :func:`dslib.search.outcome`, gets its score (+ overlong penalty) on every token
    (``tree_grpo.outcome_token_rewards``) and the group advantage of ``tree_grpo.advantages``:
    with sequence-level rewards the loss is DAPO's (§4.2).
    """
    scores, oks, rewards = [], [], []
    for ids, _, finished in members:
        verdict = verifier(item, ids)
        score, _ = search.outcome(verdict, not finished, incomplete_score)
        scores.append(score)
        oks.append(bool(verdict.correct))
        rewards.append(tree_grpo.outcome_token_rewards(len(ids), score, grpo_cfg))
    finals = [r[-1] if r else sc for r, sc in zip(rewards, scores, strict=True)]
    advs = tree_grpo.advantages(rewards, finals, grpo_cfg, tree_terminal_scores=finals)
    return [
        Sample(prompt_ids=list(item.prompt_ids), response_ids=list(ids), advantages=list(adv),
               step_ids=[0] * len(ids), score=score, correct=ok,
               behaviour_logprobs=list(logps), group=group, problem_id=str(item.id),
               cached=j < n_cached)
        for j, ((ids, logps, _), score, ok, adv) in enumerate(
            zip(members, scores, oks, advs, strict=True)
        )
    ]


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """Owns the model, optimizer, scheduler, policy backend and run directory.

    ``Trainer(cfg, run_dir)`` starts a run (the model from ``cfg.model``);
    ``Trainer.resume(run_dir)`` continues one from its checkpoint. ``model``/``task`` can be
    passed in (tests, notebooks) to skip building the tiny reasoner.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        *,
        model: Any = None,
        task: Task | None = None,
        progress: bool = True,
        before_rollout: Callable[[Trainer, list[Any]], dict[str, list[Sample]]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.dist = distributed.current()
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.before_rollout = before_rollout
        self.step = 0
        self.cumulative_sampled = 0
        self.history: list[dict[str, Any]] = []
        #: the samples of the latest step (a round's replay-buffer registration reads them)
        self.last_samples: list[Sample] = []
        if model is None or task is None:
            loaded_model, loaded_task = load_model_and_task(cfg)
            model = model if model is not None else loaded_model
            task = task if task is not None else loaded_task
        self.model = model
        self.task = task
        if cfg.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        torch.manual_seed(cfg.seed)
        #: AdamW's state sharded over the ranks (``cfg.shard_optimizer`` with several processes)
        self.sharded_optimizer = bool(cfg.shard_optimizer and self.dist.active)
        if self.sharded_optimizer:
            from torch.distributed.optim import ZeroRedundancyOptimizer

            # each rank steps its partition with the full (summed, clipped) gradient, then
            # broadcasts the new values: the same weights as AdamW, 1/world of its state
            self.optimizer = ZeroRedundancyOptimizer(
                self.model.parameters(), optimizer_class=torch.optim.AdamW, lr=cfg.lr,
                betas=cfg.adam_betas, weight_decay=cfg.weight_decay,
            )
        else:
            self.optimizer = torch.optim.AdamW(
                self.model.parameters(), lr=cfg.lr, betas=cfg.adam_betas,
                weight_decay=cfg.weight_decay,
            )
        warm = max(1, cfg.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda u: min(1.0, (u + 1) / warm)
        )
        self.policy = make_policy(self.model, cfg.seed, cfg.backend,
                                  source=self.task.source or cfg.model,
                                  dtype=policy_dtype(cfg))
        if self.before_rollout is None and cfg.replay_buffer:
            from dslib.replay import ReplayBuffer, make_before_rollout

            self.before_rollout = make_before_rollout(ReplayBuffer.load(cfg.replay_buffer))

    # ------------------------------------------------------------------ run
    @classmethod
    def resume(cls, run_dir: str | Path, **kwargs: Any) -> Trainer:
        """Continue a run from ``run_dir/checkpoint`` (or the previous one, if a swap broke)."""
        run_dir = Path(run_dir)
        ckpt = _latest_checkpoint(run_dir)
        if ckpt is None:
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from")
        cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        from dslib.policy.hf import load_causal_lm

        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.dtype]
        model = load_causal_lm(ckpt).to(device=cfg.device, dtype=dtype)
        trainer = cls(cfg, run_dir, model=model, **kwargs)
        state = json.loads((ckpt / "state.json").read_text())
        opt = torch.load(ckpt / "optimizer.pt", weights_only=False)
        # the full AdamW state, whether saved sharded or not; a sharded optimizer keeps its part
        trainer.optimizer.load_state_dict(opt["optimizer"])
        trainer.scheduler.load_state_dict(opt["scheduler"])
        trainer.step = int(state["step"])
        trainer.cumulative_sampled = int(state["cumulative_sampled"])
        trainer.history = _read_metrics(run_dir / "metrics.jsonl", upto_step=trainer.step)
        rollouts = run_dir / "rollouts.jsonl"
        if trainer.dist.main:  # rank 0 alone writes the run directory
            _write_metrics(run_dir / "metrics.jsonl", trainer.history)  # drop a lost step's lines
            if rollouts.exists():
                _write_metrics(rollouts, _read_metrics(rollouts, upto_step=trainer.step))
        return trainer

    def train(self, steps: int | None = None) -> list[dict[str, Any]]:
        """Run until ``cfg.steps`` (or ``steps`` more); returns the metrics history."""
        main = self.dist.main  # rank 0 writes files and evaluates (dslib.distributed)
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2))
        last = self.cfg.steps if steps is None else min(self.cfg.steps, self.step + steps)
        if (main and self.step == 0 and self.cfg.eval_every and self.cfg.eval_at_start
                and not self._has_eval(0)):
            self._log(self.evaluate())
        bar = progress_bar(
            range(self.step, last), enabled=self.progress and main, desc=f"train {self.cfg.mode}"
        )
        for _ in bar:
            row = self.train_step()
            save = self.step % self.cfg.checkpoint_every == 0 or self.step == last
            if save:
                self.gather_optimizer_state()  # every rank: a collective when sharded
            if not main:
                self.history.append(row)
                continue
            self._log(row)
            if self.cfg.log_rollouts:
                self._log_rollouts()
            bar.set_postfix(reward=f"{row['reward']:+.2f}", acc=f"{row['accuracy']:.2f}")
            ev = self.cfg.eval_every
            if ev and (self.step % ev == 0 or self.step == self.cfg.steps):
                self._log(self.evaluate())
            if save:
                self.save_checkpoint()
        if main:
            self.plot()
        return self.history

    def train_step(self) -> dict[str, Any]:
        """One training step (module docstring); returns its metrics row."""
        t0 = time.perf_counter()
        step = self.step
        self._reseed(step)
        items = distributed.shard(self.problems_for(step), self.dist)  # all of them: 1 process
        cached = self.before_rollout(self, items) if self.before_rollout else {}
        fresh = [it for it in items if str(it.id) not in cached]
        t_roll = time.perf_counter()
        if self.cfg.mode == "deepsearch":
            samples, roll = self.search_rollouts(fresh, step)
        else:
            samples, roll = self.flat_rollouts(fresh)
        for pid, group in cached.items():
            base = max((s.group for s in samples), default=-1) + 1
            samples.extend(
                dataclasses.replace(s, group=base, problem_id=str(pid)) for s in group
            )
        hook_stats = dict(getattr(self.before_rollout, "last_stats", None) or {})
        if self.dist.active:
            samples, roll, hook_stats, cached = _merge_ranks(
                distributed.gather((samples, roll, hook_stats, list(cached)), self.dist))
        rollout_s = time.perf_counter() - t_roll
        self.last_samples = samples
        dropped = self.degenerate(samples) if self.cfg.hygiene else []
        if dropped:
            gone = set(map(id, dropped))
            samples = [s for s in samples if id(s) not in gone]
        train_samples = samples
        if self.cfg.drop_unsolved_groups:
            solved = {s.group for s in samples if s.correct}
            train_samples = [s for s in samples if s.group in solved]
        t_upd = time.perf_counter()
        getattr(self.policy, "sleep", lambda: None)()  # a colocated engine frees the GPU
        upd = self.update(train_samples, step)
        self.step += 1
        sampled = roll.pop("sampled_tokens") + int(hook_stats.pop("sampled_tokens", 0))
        self.cumulative_sampled += sampled
        own = [s for s in samples if not s.cached]
        groups: dict[int, list[Sample]] = {}
        for s in samples:
            groups.setdefault(s.group, []).append(s)
        all_ok = sum(all(s.correct for s in g) for g in groups.values())
        all_bad = sum(not any(s.correct for s in g) for g in groups.values())
        n_groups = max(1, len(groups))
        return {
            "kind": "train", "step": self.step, "mode": self.cfg.mode,
            "reward": _mean([s.score for s in samples]),
            "accuracy": _mean([float(s.correct) for s in samples]),
            "solved_share": (len(groups) - all_bad) / n_groups,
            "all_correct_share": all_ok / n_groups, "all_wrong_share": all_bad / n_groups,
            "zero_signal_share": (all_ok + all_bad) / n_groups,
            "response_length": _mean([len(s.response_ids) for s in samples]),
            "entropy": _mean([-x for s in own for x in s.behaviour_logprobs]),
            "sequences": len(samples), "cached_groups": len(cached),
            "sampled_tokens": sampled, "cumulative_sampled_tokens": self.cumulative_sampled,
            "lr": self.scheduler.get_last_lr()[0],
            "rollout_s": rollout_s, "update_s": time.perf_counter() - t_upd,
            "wall_s": time.perf_counter() - t0, **roll, **upd,
            **{f"cache_{k}": v for k, v in hook_stats.items()},
            **({"hygiene_dropped": len(dropped)} if self.cfg.hygiene else {}),
            **({"unsolved_dropped": len(samples) - len(train_samples)}
               if self.cfg.drop_unsolved_groups else {}),
        }

    def degenerate(self, samples: Sequence[Sample]) -> list[Sample]:
        """The INCORRECT samples whose decoded text is garbled or a repetition loop (§5.5).

        Paper Sec. 4.2 removes them "among the incorrect samples" before training; the
        criterion is :func:`dslib.replay.is_degenerate`. Correct samples are always kept.
        """
        from dslib.replay import is_degenerate

        tok = self.task.tokenizer
        if tok is None:
            raise ValueError("hygiene=True needs the task's tokenizer to decode responses")
        return [s for s in samples if not s.correct and is_degenerate(
            tok.decode(s.response_ids, skip_special_tokens=True)) is not None]

    # ------------------------------------------------------------------ data
    def problems_for(self, step: int) -> list[Any]:
        """``problems_per_step`` items: epoch e is a fixed shuffle seeded by (seed, e)."""
        items = self.task.train_items
        k = self.cfg.problems_per_step
        out = []
        for pos in range(step * k, step * k + k):
            epoch, i = divmod(pos, len(items))
            order = list(range(len(items)))
            random.Random(self.cfg.seed * 7919 + epoch).shuffle(order)
            out.append(items[order[i]])
        return out

    # ------------------------------------------------------------------ rollouts
    def search_rollouts(self, items: list[Any], step: int) -> tuple[list[Sample], dict[str, Any]]:
        """DeepSearch: one tree per problem, Tree-GRPO rewards and advantages per tree."""
        if not items:
            return [], {"sampled_tokens": 0}
        scfg = dataclasses.replace(self.cfg.search, seed=self._rank_seed(step, 2))
        results = search.run(items, self.policy, self.task.verifier, scfg)
        samples: list[Sample] = []
        for g, res in enumerate(results):
            if not res.trajectories:
                continue
            advs = tree_grpo.group_advantages(res.trajectories, self.cfg.grpo, tree=res.tree)
            for traj, adv in zip(res.trajectories, advs, strict=True):
                samples.append(Sample(
                    prompt_ids=list(traj.prompt_ids), response_ids=list(traj.response_ids),
                    advantages=list(adv),
                    step_ids=tree_grpo.step_ids_from_spans(
                        traj.node_spans, len(traj.response_ids)
                    ),
                    score=float(traj.score), correct=bool(traj.correct),
                    behaviour_logprobs=list(traj.logprobs), group=g, problem_id=str(res.problem.id),
                ))
        stats = [r.stats for r in results]
        return samples, {
            "sampled_tokens": sum(s.sampled_tokens for s in stats),
            "forward_tokens": sum(s.forward_tokens for s in stats),
            "forward_tokens_no_reuse": sum(s.forward_tokens_no_reuse for s in stats),
            "search_iterations": _mean([s.iterations for s in stats]),
            "search_nodes": _mean([s.nodes for s in stats]),
            "search_exhausted": _mean([float(r.exhausted) for r in results]),
            "search_solved": _mean([float(s.n_correct > 0) for s in stats]),
        }

    def flat_rollouts(self, items: list[Any]) -> tuple[list[Sample], dict[str, Any]]:
        """GRPO/DAPO: n samples per problem in one call, the outcome on every token."""
        if not items:
            return [], {"sampled_tokens": 0}
        n = self.cfg.samples_per_problem
        outs = self.policy.sample(
            [it.prompt_ids for it in items], n=n, max_new_tokens=self.cfg.max_new_tokens,
            temperature=self.cfg.temperature,
        )
        samples: list[Sample] = []
        sampled = prompts = 0
        for g, (item, segs) in enumerate(zip(items, outs, strict=True)):
            members = [(list(s.token_ids), list(s.logprobs), bool(s.finished)) for s in segs]
            sampled += sum(len(s.token_ids) for s in segs)
            prompts += len(item.prompt_ids)
            samples.extend(outcome_group(
                item, members, self.task.verifier, self.cfg.grpo,
                self.cfg.search.incomplete_score, g,
            ))
        # forward tokens as search.SearchStats counts them: each prompt once (the shared
        # prefill), or once per sample (no prefix reuse)
        return samples, {"sampled_tokens": sampled, "forward_tokens": prompts + sampled,
                         "forward_tokens_no_reuse": n * prompts + sampled}

    # ------------------------------------------------------------------ update
    def update(self, samples: list[Sample], step: int) -> dict[str, float]:
        """Recompute old log-probs, then ``ppo_epochs`` x ``mini_batches`` clipped updates.

        With several processes (:mod:`dslib.distributed`) every rank holds the same global
        ``samples``; a rank computes the rows it owns, divides by the mini-batch's global
        count, and the summed gradients equal one process's (same mini-batches, same weights).
        """
        samples = [s for s in samples if s.response_ids]
        if not samples:
            return {"updates": 0}
        d = self.dist
        pad = int(self.policy.pad_token_id)
        rng = random.Random(self._seed(step, 3))
        dev = next(self.model.parameters()).device
        batch = {k: v.to(dev) for k, v in _collate(samples, pad).items()}
        mine_all = torch.tensor(distributed.owned(range(len(samples)), d), dtype=torch.long)
        old_logp = torch.zeros_like(batch["adv"])
        t_logp = time.perf_counter()
        self.model.eval()
        with torch.no_grad(), self._autocast():
            for part in self._micro_batches(mine_all.tolist(), batch):
                old_logp[part] = _token_logprobs(
                    self.model, batch["input_ids"][part], batch["attention_mask"][part])
        logprob_s = time.perf_counter() - t_logp
        metrics: list[dict[str, float]] = []
        self.model.train()
        for _ in range(self.cfg.ppo_epochs):
            order = list(range(len(samples)))
            rng.shuffle(order)
            for chunk in _split(order, self.cfg.mini_batches):
                whole = torch.tensor(chunk, dtype=torch.long)
                silent = bool((batch["adv"][whole] * batch["resp_mask"][whole]).abs().max() == 0)
                skip = silent and self.cfg.skip_zero_signal_updates
                # the loss is a sum over the whole mini-batch divided by ITS count, on any rank
                count = tree_grpo.aggregation_count(
                    batch["resp_mask"][whole], self.cfg.grpo, batch["step_ids"][whole])
                idx = torch.tensor(distributed.owned(chunk, d), dtype=torch.long)
                self.optimizer.zero_grad(set_to_none=True)
                loss, parts = torch.zeros(()), []
                for part in self._micro_batches(idx.tolist(), batch):  # a silent mini-batch
                    sub = {k: v[part] for k, v in batch.items()}     # still reports metrics
                    with self._autocast():
                        logp = _token_logprobs(
                            self.model, sub["input_ids"], sub["attention_mask"])
                    part_loss, part_m = tree_grpo.policy_loss(
                        logp, old_logp[part], sub["adv"], sub["resp_mask"], self.cfg.grpo,
                        step_ids=sub["step_ids"], normalizer=count,
                    )
                    if not skip:
                        part_loss.backward()
                    loss = loss + part_loss.detach()
                    parts.append((part_m, int(sub["resp_mask"].sum())))
                m = _weighted_metrics(parts)
                if skip:
                    norm = torch.zeros(())
                else:
                    distributed.sum_gradients(self.model.parameters(), d)
                    norm = torch.nn.utils.clip_grad_norm_(
                        self.model.parameters(), self.cfg.grad_clip
                    )
                    self.optimizer.step()
                    self.scheduler.step()  # the warm-up counts optimizer updates
                row = {k: float(v) for k, v in (m or {}).items()}
                row["loss"] = distributed.sum_scalar(float(loss.detach()), d)
                row["grad_norm"], row["skipped_updates"] = float(norm), float(skip)
                metrics.append(row)
        self.model.eval()
        self._push_weights()
        keys = set().union(*metrics)
        out = {k: _mean([m[k] for m in metrics if k in m]) for k in sorted(keys)}
        out["updates"] = len(metrics)
        out["logprob_s"] = logprob_s
        # behaviour vs recomputed log-probs over sampled tokens (cached ones have none)
        own = batch["resp_mask"][mine_all] * batch["sampled"][mine_all][:, None]
        out["behaviour_vs_recomputed_logp"] = float(
            (old_logp[mine_all] - batch["behaviour_logp"][mine_all]).abs().mul(own).sum()
            / own.sum().clamp(min=1)
        )
        return out

    def _autocast(self) -> Any:
        """bf16 compute over fp32 master weights when ``compute_dtype`` says so."""
        if self.cfg.compute_dtype == "float32":
            return contextlib.nullcontext()
        device = next(self.model.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    def _micro_batches(self, rows: list[int], batch: dict[str, torch.Tensor]) -> list[list[int]]:
        """``rows`` in consecutive groups whose padded size (rows x longest) fits the budget."""
        budget = self.cfg.micro_batch_tokens
        if not rows:
            return []
        if budget is None:
            return [rows]
        lengths = batch["attention_mask"].sum(dim=1)
        out: list[list[int]] = [[]]
        longest = 0
        for r in rows:
            n = int(lengths[r])
            if out[-1] and max(longest, n) * (len(out[-1]) + 1) > budget:
                out.append([])
                longest = 0
            out[-1].append(r)
            longest = max(longest, n)
        return out

    def _push_weights(self) -> None:
        # The tiny/HF path shares the model with the policy: the update is already visible
        # (the policy notices in-place changes and drops its prefix cache). A separate backend
        # (vLLM) gets the new weights here.
        if getattr(self.policy, "model", None) is not self.model:
            self.policy.load_weights(self.model.state_dict())

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, Any]:
        """pass@1 (avg@n over ``eval_samples``) per held-out set, at temperature 1."""
        self._reseed(self.step, salt=4)
        row: dict[str, Any] = {"kind": "eval", "step": self.step}
        t0 = time.perf_counter()
        for name, items in self.task.eval_sets.items():
            res = evaluate(
                self.policy, items, self.task.verifier, n_samples=self.cfg.eval_samples,
                ks=(1,), max_new_tokens=self.cfg.max_new_tokens,
                temperature=self.cfg.temperature, progress=False,
            )
            row[f"{name}/pass@1"] = res.pass_at[1]
            row[f"{name}/solved"] = sum(c > 0 for c in res.correct) / max(1, len(res.correct))
            row[f"{name}/answer_rate"] = res.answer_rate
        row["eval_s"] = time.perf_counter() - t0
        return row

    # ------------------------------------------------------------------ checkpoints
    def gather_optimizer_state(self) -> None:
        """Collect a sharded optimizer's state on rank 0 for :meth:`save_checkpoint`.

        A collective: with ``shard_optimizer`` every rank calls it at the same point, before
        rank 0 saves (:meth:`train` does); nothing to do otherwise.
        """
        if self.sharded_optimizer:
            self.optimizer.consolidate_state_dict(to=0)

    def _optimizer_state(self) -> dict[str, Any]:
        """The full AdamW state (rank 0 of a sharded run: gathered by the last
        :meth:`gather_optimizer_state`), in the layout a plain AdamW loads."""
        state = self.optimizer.state_dict()
        if self.sharded_optimizer:
            # drop rank 0's gathered copy: frees its memory, and a later save that skipped
            # gather_optimizer_state raises instead of writing stale moments
            self.optimizer._all_state_dicts = []
        return state

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint/`` atomically: a new directory swapped in by renames.

        Rank 0 alone calls it; with a sharded optimizer every rank first calls
        :meth:`gather_optimizer_state`.
        """
        final = self.run_dir / "checkpoint"
        tmp = self.run_dir / "checkpoint.tmp"
        old = self.run_dir / "checkpoint.old"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one bar per checkpoint would drown the run's bar
        self.model.save_pretrained(tmp)
        if self.task.tokenizer is not None:
            self.task.tokenizer.save_pretrained(tmp)
        info = self.task.source / "build_info.json" if self.task.source else None
        if info is not None and info.exists():
            shutil.copy2(info, tmp / "build_info.json")
        torch.save(
            {"optimizer": self._optimizer_state(), "scheduler": self.scheduler.state_dict()},
            tmp / "optimizer.pt",
        )
        (tmp / "state.json").write_text(json.dumps({
            "step": self.step, "cumulative_sampled": self.cumulative_sampled,
            "config": self.cfg.to_dict(),
        }, indent=2))
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        return final

    # ------------------------------------------------------------------ helpers
    def _seed(self, step: int, salt: int) -> int:
        return (self.cfg.seed * 1_000_003 + step * 101 + salt) % (2**31)

    def _rank_seed(self, step: int, salt: int) -> int:
        """A sampling seed of its own per rank (rank 0: the single-process seed)."""
        return (self._seed(step, salt) + 7919 * self.dist.rank) % (2**31)

    def _reseed(self, step: int, salt: int = 1) -> None:
        seed = self._rank_seed(step, salt) if salt == 1 else self._seed(step, salt)
        random.seed(seed)
        torch.manual_seed(seed)
        self.policy.seed(seed)

    def _has_eval(self, step: int) -> bool:
        return any(r.get("kind") == "eval" and r["step"] == step for r in self.history)

    def _log(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def _log_rollouts(self) -> None:
        """One line per response of the latest step (cached replays excluded: not sampled)."""
        with open(self.run_dir / "rollouts.jsonl", "a") as f:
            for s in self.last_samples:
                if not s.cached:
                    f.write(json.dumps({"step": self.step, "problem_id": s.problem_id,
                                        "correct": s.correct, "score": s.score,
                                        "response_ids": s.response_ids}) + "\n")

    def plot(self) -> Path | None:
        """Training curves to ``curves.png`` (reward, accuracy, zero-signal share, eval)."""
        if not self.history:
            return None
        from dslib.viz import plot_training

        path = self.run_dir / "curves.png"
        fig = plot_training(self.history, title=f"{self.run_dir.name} ({self.cfg.mode})")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        return path


# ----------------------------------------------------------------------------- pure helpers


def _weighted_metrics(parts: Sequence[tuple[dict[str, Any], int]]) -> dict[str, float] | None:
    """Micro-batch metrics combined, each weighted by its response tokens."""
    if not parts:
        return None
    if len(parts) == 1:
        return {k: float(v) for k, v in parts[0][0].items()}
    total = sum(w for _, w in parts) or 1
    keys = parts[0][0].keys()
    return {k: sum(float(m[k]) * w for m, w in parts) / total for k in keys}


def _merge_ranks(
    parts: Sequence[tuple[list[Sample], dict[str, Any], dict[str, Any], list[str]]],
) -> tuple[list[Sample], dict[str, Any], dict[str, Any], list[str]]:
    """One global step from every rank's (samples, rollout stats, hook stats, cached ids).

    Samples keep rank order; group ids are renumbered so groups stay distinct. Token counts
    add up; other rollout statistics (means over trees) are averaged over the ranks.
    """
    samples: list[Sample] = []
    rolls, hooks, cached = [], [], []
    for part_samples, roll, hook, ids in parts:
        base = max((s.group for s in samples), default=-1) + 1
        samples.extend(dataclasses.replace(s, group=s.group + base) for s in part_samples)
        rolls.append(roll)
        hooks.append(hook)
        cached.extend(ids)
    roll = {k: (sum(r.get(k, 0) for r in rolls) if k == "sampled_tokens"
                else _mean([r[k] for r in rolls if k in r]))
            for k in set().union(*rolls)}
    hook = {k: sum(h.get(k, 0) for h in hooks) for k in set().union(*hooks)}
    return samples, roll, hook, cached


def _collate(samples: Sequence[Sample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; per-token fields sit at the position that PREDICTS the token."""
    width = max(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    b = len(samples)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    attn = torch.zeros((b, width), dtype=torch.long)
    resp = torch.zeros((b, width - 1), dtype=torch.float32)
    adv = torch.zeros((b, width - 1), dtype=torch.float32)
    beh = torch.zeros((b, width - 1), dtype=torch.float32)
    steps = torch.full((b, width - 1), -1, dtype=torch.long)
    sampled = torch.tensor([0.0 if s.cached else 1.0 for s in samples])
    for i, s in enumerate(samples):
        p, r = len(s.prompt_ids), len(s.response_ids)
        ids[i, : p + r] = torch.tensor(s.prompt_ids + s.response_ids, dtype=torch.long)
        attn[i, : p + r] = 1
        resp[i, p - 1 : p + r - 1] = 1.0
        adv[i, p - 1 : p + r - 1] = torch.tensor(s.advantages, dtype=torch.float32)
        beh[i, p - 1 : p + r - 1] = torch.tensor(s.behaviour_logprobs, dtype=torch.float32)
        steps[i, p - 1 : p + r - 1] = torch.tensor(s.step_ids, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": attn, "resp_mask": resp, "adv": adv,
            "behaviour_logp": beh, "step_ids": steps, "sampled": sampled}


def _token_logprobs(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """log pi(token t+1 | tokens <= t) for every position, shape [B, T-1], from raw logits."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


def _split(order: list[int], parts: int) -> list[list[int]]:
    parts = max(1, min(parts, len(order)))
    size = math.ceil(len(order) / parts)
    return [order[i : i + size] for i in range(0, len(order), size)]


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _latest_checkpoint(run_dir: Path) -> Path | None:
    for name in ("checkpoint", "checkpoint.old"):
        path = run_dir / name
        if (path / "state.json").exists():
            return path
    return None


def _read_metrics(path: Path, upto_step: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("step", 0) <= upto_step:
                rows.append(row)
    return rows


def _write_metrics(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    from dslib.files import atomic_write

    atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows))


def policy_dtype(cfg: TrainConfig) -> str:
    """The sampler's dtype: bf16 when either the weights or the compute are bf16."""
    return "bfloat16" if "bfloat16" in (cfg.dtype, cfg.compute_dtype) else "float32"


def make_policy(model: Any, seed: int, backend: str = "hf", source: str | Path | None = None,
                dtype: str = "float32") -> Any:
    """The sampling backend for ``model`` (:func:`dslib.policy.make.make_policy`)."""
    from dslib.policy.make import make_policy as make

    return make(model, backend=backend, seed=seed, source=source, dtype=dtype)


def load_model_and_task(cfg: TrainConfig) -> tuple[Any, Task]:
    """The model ``cfg.model`` names and the task of ``cfg`` (its subset applied)."""
    if cfg.task == "deepmath":
        model, task = deepmath_model_and_task(cfg)
    else:
        model, task = countdown_model_and_task(cfg)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.dtype]
    return model.to(device=cfg.device, dtype=dtype), task


def deepmath_model_and_task(cfg: TrainConfig) -> tuple[Any, Task]:
    """DeepMath problems with the model's chat template, graded by ``cfg.grader`` (§6).

    ``dry_run``: a tiny random Qwen2 and a tokenizer trained here replace the model, and the
    data is capped at 64 problems (the built-in sample problems when no file is given).
    """
    from functools import partial

    from dslib.tasks import math as math_task
    from dslib.tasks.base import TokenVerifier

    if cfg.dry_run and not Path(cfg.model).is_dir():  # a dry run's own checkpoints load
        model, tokenizer = dry_run_model()
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(cfg.model)
        model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32).eval()
    if cfg.data:
        problems = list(math_task.load_deepmath(list(cfg.data), limit=64 if cfg.dry_run else None))
    elif cfg.dry_run:
        problems = list(math_task.SAMPLE_PROBLEMS)
    else:
        raise ValueError("task 'deepmath' needs data: --set data=[FILE, ...] or a dataset name")
    train = math_task.prompted(tokenizer, problems, cfg.max_prompt_tokens)
    if cfg.train_subset:
        from dslib.filtering import subset_from_file

        train = subset_from_file(train, cfg.train_subset)
    grader = math_task.dapo_grader if cfg.grader == "dapo" else None
    verifier = TokenVerifier(tokenizer, partial(math_task.verify, grader=grader))
    evals = {}
    if cfg.eval_benchmarks and cfg.eval_every:
        sets = math_task.load_benchmarks(list(cfg.eval_benchmarks), limit=cfg.eval_problems)
        evals = {name: math_task.prompted(tokenizer, probs, cfg.max_prompt_tokens)
                 for name, probs in sets.items()}
    return model, Task(train, evals, verifier, tokenizer,
                       Path(cfg.model) if Path(cfg.model).is_dir() else None)


def dry_run_model() -> tuple[Any, Any]:
    """A randomly initialised tiny Qwen2 and a byte-level BPE trained in about a second.

    Qwen2 is the 1.5B model's architecture family (Nemotron-Research-Reasoning-Qwen-1.5B is a
    ``Qwen2ForCausalLM``); byte-level BPE encodes any math text. Nothing is downloaded.
    """
    from dslib import tiny

    tcfg = tiny.TinyConfig()
    tokenizer = tiny.build_tokenizer(tcfg)
    return tiny.build_model(tcfg, tokenizer).eval(), tokenizer


def countdown_model_and_task(cfg: TrainConfig) -> tuple[Any, Task]:
    """The tiny reasoner (cached build, or a checkpoint of one) and its countdown splits."""
    from dslib import tiny

    if cfg.model == "tiny":
        reasoner = tiny.build(tiny.override(tiny.default_config(), list(cfg.tiny_build)))
    else:
        reasoner = tiny.TinyReasoner.from_dir(cfg.model)
    return reasoner.load_model(), countdown_task(cfg, reasoner)
