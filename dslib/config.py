"""Every config dataclass of the kit, and the one parser of ``--set`` overrides.

One dataclass per component, a docstring under every field (CleanRL style). Defaults are the
released code's / the paper's 1.5B recipe (docs/paper-notes.md#hyperparameters); where the paper and
the code disagree (docs/paper-notes.md#paper-vs-code), the default is the CODE and the paper's
variant is the other value.

| dataclass          | what it configures                                  | used by              |
|--------------------|-----------------------------------------------------|----------------------|
| ``SearchConfig``   | the tree search (``search.run``)                    | search, rollouts     |
| ``TreeGRPOConfig`` | token rewards, advantages, clipped loss             | tree_grpo, learner   |
| ``AdaptiveConfig`` | rounds and token budget of adaptive flat sampling   | rollouts             |
| ``TrainConfig``    | one training run: ``task``, ``rollout``, ``optim``, | trainer, presets     |
|                    | ``eval``, ``run`` sections and the ``filters``      |                      |
| ``RoundsConfig``   | filter -> train -> register rounds                  | rounds               |
| ``HygieneConfig``  | thresholds of the data-hygiene criterion            | hygiene              |

Every field is checked when its dataclass is built: its type against the annotation (a JSON
list becomes a tuple, an integer a float where a float is expected) and its range in
``__post_init__``, so a bad value fails at once with the field, the value and what is allowed.
:func:`override` applies ``KEY=VALUE`` strings (dotted keys for sections, values parsed as
JSON, else strings) to any of these dataclasses: the CLI's ``--set``, papermill's
``overrides`` and ``python -m dslib.tiny --set`` all go through it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

_GAMMA = ("code", "paper")
_BACKUP_RULE = ("constrained", "vanilla")
_BACKUP_TERMINALS = ("one", "all_correct")
_NEGATIVE_CHOICE = ("most_confident", "random", "least_confident")
_ENTROPY = ("sampled_nll", "shannon")
_BACKTRACE = ("global", "uct")
_DEPTH_BONUS = ("sqrt", "log", "linear")
#: names accepted for ``SearchConfig.step_boundary`` (the CLI cannot easily type a newline)
STEP_BOUNDARIES = {"line": "\n", "paragraph": "\n\n"}


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"SearchConfig.{name} must be one of {allowed}, got {value!r}")


@dataclass
class SearchConfig:
    """Everything the tree search (``dslib.search.run``) needs; see docs/paper-notes.md#node,
    #search and #hyperparameters."""

    step_tokens: int = 256
    """tokens per node (one fixed-length chunk, not a semantic step; docs/paper-notes.md#node); with
    ``step_boundary``, the most a node may hold"""
    step_boundary: str | None = None
    """where a node ends early: None = fixed chunks of ``step_tokens`` (the released code,
    docs/paper-notes.md#node: a node is 256 sampled tokens, not a semantic step), "\\n" = at the end
    of a line (a countdown step), "\\n\\n" = at a paragraph break (math); the names "line" and
    "paragraph" are accepted. A node that stops there is not terminal (only EOS is)"""
    max_depth: int = 64
    """d_T: a child at this depth is terminal; the root is depth 0 (docs/paper-notes.md#node,
    #expansion)"""
    width: int = 8
    """expansion width: children generated per expansion (docs/paper-notes.md#expansion)"""
    n_trajectories: int = 8
    """stop a tree once this many backed-up trajectories are recorded (terminate_num,
    docs/paper-notes.md#termination)"""
    temperature: float = 1.0
    """sampling temperature of the search's policy calls (docs/paper-notes.md#hyperparameters)"""
    top_p: float = 1.0
    """nucleus sampling threshold of the search's policy calls
    (docs/paper-notes.md#hyperparameters)"""
    incomplete_score: float = -1.0
    """terminal score of a depth-limit leaf without EOS and without an answer
    (docs/paper-notes.md#terminal-score, v4 Eq. 4)"""
    gamma_min: float = 0.1
    """floor of the depth-decay weight gamma(i, l) (backup_threshold; v4 Eq. 3,
    docs/paper-notes.md#backup)"""
    gamma: str = "code"
    """depth-decay weight: "code" (d+1)/(L+1) or "paper" d/L (docs/paper-notes.md#backup,
    #pvc-gamma)"""
    backup_rule: str = "constrained"
    """q update: "constrained" sign rule (v4 Eq. 5) or the Table-4 "vanilla" rule
    (docs/paper-notes.md#advantage)"""
    backup_terminals: str = "one"
    """back up "one" terminal per expansion (code) or "all_correct" (paper;
    docs/paper-notes.md#which-terminal, #pvc-backup-count)"""
    negative_choice: str = "most_confident"
    """which wrong terminal is backed up: most_confident | random | least_confident (Table 5)"""
    entropy: str = "sampled_nll"
    """trajectory entropy: mean sampled-token NLL (code) or mean Shannon entropy (paper;
    docs/paper-notes.md#entropy)"""
    uct_c: float = 2.0
    """UCT exploration constant lambda (lambda_puct; docs/paper-notes.md#uct)"""
    uct_deterministic: bool = True
    """UCT pick: argmax, first on ties (code) or sampling from softmax(UCT)
    (docs/paper-notes.md#uct)"""
    backtrace: str = "global"
    """after a backup: "global" frontier (v4 Eq. 6-7) or "uct" one UCT step from the root
    (docs/paper-notes.md#frontier)"""
    lambda1: float = 0.4
    """frontier weight of tanh(Q(parent)), the quality potential (v4 Eq. 7)"""
    lambda2: float = 0.4
    """frontier weight of the chunk's mean NLL; used only when entropy_bonus is on (v4 Eq. 7)"""
    entropy_bonus: bool = False
    """add the uncertainty term lambda2 * H(chunk) to the frontier score (code default off;
    docs/paper-notes.md#frontier)"""
    lambda3: float = 0.01
    """frontier weight of the depth bonus D(d) (v4 Eq. 7)"""
    lambda4: float = 0.0
    """frontier weight of tanh(Q(s)) of the node itself; code only, applied when > 0
    (docs/paper-notes.md#frontier)"""
    depth_bonus: str = "sqrt"
    """D(d): "sqrt" sqrt(d/d_T) (default), "log" log(d+1), "linear" d (the code's "constant")"""
    dynamic_width: tuple[int, int] | None = None
    """(min_width, decay_factor): width shrinks with depth (code only, off by default;
    docs/paper-notes.md#expansion)"""
    max_iterations: int = 10_000
    """safety cap on batched policy calls; hitting it flags the live trees exhausted"""
    seed: int = 0
    """seed of the driver's random.Random (softmax UCT, random negative choice)"""

    def __post_init__(self) -> None:
        check_types(self)
        if self.depth_bonus == "constant":  # the released code's name for the linear bonus
            self.depth_bonus = "linear"
        if isinstance(self.step_boundary, str):
            self.step_boundary = STEP_BOUNDARIES.get(self.step_boundary, self.step_boundary)
        if self.step_boundary is not None and (
            not isinstance(self.step_boundary, str) or not self.step_boundary
        ):
            raise ValueError(
                "SearchConfig.step_boundary must be None, a non-empty string or one of "
                f"{sorted(STEP_BOUNDARIES)}, got {self.step_boundary!r}"
            )
        _check_choice("gamma", self.gamma, _GAMMA)
        _check_choice("backup_rule", self.backup_rule, _BACKUP_RULE)
        _check_choice("backup_terminals", self.backup_terminals, _BACKUP_TERMINALS)
        _check_choice("negative_choice", self.negative_choice, _NEGATIVE_CHOICE)
        _check_choice("entropy", self.entropy, _ENTROPY)
        _check_choice("backtrace", self.backtrace, _BACKTRACE)
        _check_choice("depth_bonus", self.depth_bonus, _DEPTH_BONUS)
        for name in ("step_tokens", "max_depth", "width", "n_trajectories", "max_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SearchConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= self.gamma_min <= 1.0:
            raise ValueError(f"SearchConfig.gamma_min must be in [0, 1], got {self.gamma_min!r}")
        if self.temperature < 0.0:
            raise ValueError(f"SearchConfig.temperature must be >= 0, got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SearchConfig.top_p must be in (0, 1], got {self.top_p!r}")
        if self.dynamic_width is not None:
            if len(self.dynamic_width) != 2:
                raise ValueError(
                    "SearchConfig.dynamic_width must be None or (min_width, decay_factor), "
                    f"got {self.dynamic_width!r}"
                )
            min_width, decay = (int(v) for v in self.dynamic_width)
            if min_width < 1 or decay < 0:
                raise ValueError(
                    "SearchConfig.dynamic_width needs min_width >= 1 and decay_factor >= 0, "
                    f"got {self.dynamic_width!r}"
                )
            self.dynamic_width = (min_width, decay)  # lists from JSON/CLI become a tuple

    @classmethod
    def tiny(cls, **overrides: object) -> SearchConfig:
        """CPU preset: a line per node (at most 24 tokens), depth 10, width 4, 4 trajectories;
        the rest default. Line nodes, not fixed 8-token chunks: at equal sampled tokens they find
        more solutions on the hardest level (``reproduce/bench_exploration.py``)."""
        base = cls(step_tokens=24, step_boundary="\n", max_depth=10, width=4, n_trajectories=4)
        return replace(base, **overrides) if overrides else base


# ----------------------------------------------------------------------------- Tree-GRPO

_REWARD = ("fine", "coarse", "fine_raw")
_BASELINE = ("recorded", "tree", "none")
_LOSS_AGG = ("token_mean", "step_mean", "seq_mean_token_mean")


@dataclass
class TreeGRPOConfig:
    """Rewards, advantages and loss of Tree-GRPO (docs/paper-notes.md#tree-grpo, #hyperparameters,
    Table 4)."""

    reward: str = "fine"
    """token rewards: "fine" soft-clipped node q (code, v4 Eq. 13,
    docs/paper-notes.md#token-rewards), "coarse" terminal score on every token (Tree-GRPO =
    DAPO), "fine_raw" node q without soft clip (Table 4 "fine-grained")"""
    eps_q: float = 1.0
    """soft-clip temperature eps_q (adv_temperature; v4 Eq. 13)"""
    q_max: float = 1.0
    """soft-clip scale q_max (q_value_max; v4 Eq. 13)"""
    overlong_buffer: int | None = None
    """DAPO overlong buffer in tokens (released run: 4096); None disables the penalty
    (docs/paper-notes.md#token-rewards)"""
    overlong_factor: float = 1.0
    """DAPO overlong penalty factor: the penalty reaches -factor at max_response_tokens
    (docs/paper-notes.md#token-rewards)"""
    max_response_tokens: int | None = None
    """response cap the overlong buffer ends at (released run: 16384); needed with a buffer"""
    baseline: str = "recorded"
    """mu: "recorded" mean final reward of the recorded trajectories (code), "tree" mean score of
    every terminal node of the tree (paper, v4 Eq. 15), "none" mu = 0
    (docs/paper-notes.md#advantage, #pvc-baseline)"""
    std_norm: bool = False
    """divide by (sigma_pop + 1e-6) (verl norm_adv_by_std_in_grpo; Table 4 "standard"); the
    scripts turn it off: mean-only (docs/paper-notes.md#advantage, #pvc-std)"""
    clip_low: float = 0.2
    """eps_low: the ratio is clipped below at 1 - clip_low (docs/paper-notes.md#policy-loss)"""
    clip_high: float = 0.28
    """eps_high: the ratio is clipped above at 1 + clip_high (Clip-Higher;
    docs/paper-notes.md#policy-loss)"""
    dual_clip: float | None = 10.0
    """c of dual-clip PPO: for A < 0 the loss is capped at -A * c (clip_ratio_c;
    docs/paper-notes.md#policy-loss); None: off"""
    loss_agg: str = "token_mean"
    """"token_mean" flat masked mean over the batch (code), "step_mean" mean within each step then
    over steps (paper v4 Eq. 14), "seq_mean_token_mean" mean per sequence then over sequences
    (GRPO-style; docs/paper-notes.md#policy-loss, #pvc-loss-agg)"""

    def __post_init__(self) -> None:
        check_types(self)
        _choice(self, "reward", _REWARD)
        _choice(self, "baseline", _BASELINE)
        _choice(self, "loss_agg", _LOSS_AGG)
        _require(self, "eps_q", self.eps_q > 0.0, "> 0")
        _require(self, "overlong_factor", self.overlong_factor >= 0.0, ">= 0")
        if self.overlong_buffer is not None:
            _require(self, "overlong_buffer", self.overlong_buffer >= 1, ">= 1 or None")
            if self.max_response_tokens is None or self.max_response_tokens < self.overlong_buffer:
                raise ValueError(
                    "TreeGRPOConfig.overlong_buffer needs max_response_tokens >= overlong_buffer, "
                    f"got max_response_tokens={self.max_response_tokens!r}"
                )
        _require(self, "clip_low", 0.0 <= self.clip_low < 1.0, "in [0, 1)")
        _require(self, "clip_high", self.clip_high >= 0.0, ">= 0")
        # verl asserts clip_ratio_c > 1: a cap below 1 would bite on unclipped on-policy tokens
        _require(self, "dual_clip", self.dual_clip is None or self.dual_clip > 1.0, "> 1 or None")

    @classmethod
    def paper_1p5b(cls, **overrides: object) -> TreeGRPOConfig:
        """The released 1.5B run (docs/paper-notes.md#hyperparameters): code defaults plus a
        4096-token overlong buffer at 16384."""
        base = cls(overlong_buffer=4096, max_response_tokens=16384)
        return replace(base, **overrides) if overrides else base


# ----------------------------------------------------------------------------- training run

TASKS = ("countdown", "deepmath")
GRADERS = ("dapo", "check")
#: countdown verification modes (``dslib.tasks.countdown.VERIFY_MODES``; kept here, below tasks)
COUNTDOWN_VERIFY = ("box", "steps")
#: rollout strategy -> the word runs, notebooks and metrics use for it (``--mode``)
STRATEGIES = {"tree": "deepsearch", "flat": "grpo", "adaptive": "adaptive-grpo"}
#: ``--mode`` -> rollout strategy
MODES = {mode: strategy for strategy, mode in STRATEGIES.items()}
FILTERS = ("hygiene", "drop_unsolved")
BACKENDS = ("hf", "vllm")
DTYPES = ("float32", "bfloat16")
_DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")


@dataclass
class TaskConfig:
    """What is trained on: the problems, the model that answers them, and its reward."""

    name: str = "countdown"
    """problem source: "countdown" (the tiny reasoner's splits) or "deepmath" (DeepMath-103K
    files or a dataset name in ``data``, graded by ``grader``; the 1.5B recipe)"""
    model: str = "tiny"
    """"tiny" (the cached tiny reasoner, built if missing), a checkpoint directory or a hub
    name"""
    tiny_build: tuple[str, ...] = ()
    """with model "tiny": ``FIELD=VALUE`` changes to the tiny reasoner's build
    (:class:`dslib.tiny.TinyConfig`), e.g. ``seed=1``; that build is made once and cached
    like the default one (CLI: ``--tiny``)"""
    data: tuple[str, ...] = ()
    """deepmath: training files (JSONL/parquet, read in order) or one Hugging Face dataset name"""
    grader: str = "dapo"
    """deepmath training reward: "dapo" (the released math_dapo exact match,
    docs/paper-notes.md#terminal-score) or "check" (``dslib.verify.check``, the evaluation
    grader)"""
    verify: str = "box"
    """countdown reward: "box" (the boxed expression alone, ``countdown.verify``) or "steps"
    (every line ``a op b = c`` a valid step on the numbers still available and the last result
    the target, ``countdown.verify_steps``: the reasoning decides the answer). The exploration
    benchmark (``reproduce/bench_exploration.py``) compares the two"""
    max_prompt_tokens: int | None = None
    """deepmath: keep the last N prompt tokens (the released run: 2048, truncation left)"""
    levels: tuple[int, ...] = (4, 5)
    """countdown levels (numbers per problem) drawn for training: the hard ones, where flat RL
    stalls; they must be levels of the tiny reasoner's build"""
    split: str = "rl"
    """countdown split the training problems come from ("sft", "rl" or "test" of the build)"""
    train_subset: str | None = None
    """a filter file (``dslib filter``, :mod:`dslib.filtering`): train only on the problems it
    keeps (the hard subset D_hard, docs/paper-notes.md#filtering); None = every problem of
    ``levels``"""

    def __post_init__(self) -> None:
        check_types(self)
        _choice(self, "name", TASKS)
        _choice(self, "grader", GRADERS)
        _choice(self, "verify", COUNTDOWN_VERIFY)
        _require(self, "max_prompt_tokens",
                 self.max_prompt_tokens is None or self.max_prompt_tokens >= 1, ">= 1 or None")
        _require(self, "levels", all(lv >= 1 for lv in self.levels), "numbers >= 1")
        if self.name == "countdown":
            _require(self, "levels", bool(self.levels), "at least one level for countdown")
        _require(self, "split", bool(self.split), "a split name")
        if self.tiny_build and self.model != "tiny":
            raise ValueError(f"TaskConfig.tiny_build changes the tiny reasoner's build; it "
                             f"needs model='tiny', got model={self.model!r}")


@dataclass
class AdaptiveConfig:
    """The "adaptive" strategy (``dslib.rollouts.AdaptiveRollout``): flat samples drawn in
    rounds of ``chunk`` per problem until the group holds a correct AND a wrong sample (the
    outcome advantage is then non-zero) or the problem's token budget is spent.

    For a comparison at equal compute (issue 21) set ``budget_tokens`` to the tree's mean
    sampled tokens per problem of a DeepSearch run with the same preset:
    ``python -c "from dslib import report; print(report.sampled_tokens_per_problem('RUN_DIR'))"``
    (the mean over its training steps of ``sampled_tokens`` / problems, cached problems left
    out), then ``--set rollout.strategy=adaptive rollout.adaptive.budget_tokens=N``.
    """

    chunk: int = 4
    """samples per problem per round; every problem still open is sampled in the same policy
    call of a round. The first round is a flat group of ``chunk``; it is also the group size a
    cached (replay-buffer) group gets in its place"""
    budget_tokens: int | None = None
    """a problem gets no new round once its samples hold this many tokens (checked between
    rounds, so the last round may overshoot by up to ``chunk`` x ``rollout.max_new_tokens``);
    None = ``rollout.samples_per_problem`` x ``rollout.max_new_tokens``, the most a flat group
    of the same n can sample"""
    max_samples: int = 64
    """the most samples one problem gets (the last round is cut to fit), so a policy that
    returns empty samples cannot loop forever; the issue's largest flat n"""

    def __post_init__(self) -> None:
        check_types(self)
        _require(self, "chunk", self.chunk >= 1, ">= 1")
        _require(self, "budget_tokens", self.budget_tokens is None or self.budget_tokens >= 1,
                 ">= 1 or None (= rollout.samples_per_problem x rollout.max_new_tokens)")
        _require(self, "max_samples", self.max_samples >= self.chunk,
                 f">= chunk ({self.chunk}): raise max_samples or lower chunk")


@dataclass
class RolloutConfig:
    """How a group of samples is made for each problem drawn (``dslib.rollouts``)."""

    strategy: str = "tree"
    """"tree": DeepSearch, one search tree per problem and Tree-GRPO rewards (``--mode
    deepsearch``); "flat": ``samples_per_problem`` independent samples with the outcome on
    every token, the GRPO/DAPO baseline (``--mode grpo``); "adaptive": flat samples in rounds
    until the group has both outcomes or its token budget is spent, section ``adaptive``
    (``--mode adaptive-grpo``). Problems in the replay buffer get cached groups whatever the
    strategy"""
    samples_per_problem: int = 4
    """flat: samples per problem (n); the tree's group size is ``search.n_trajectories``"""
    max_new_tokens: int = 64
    """length cap of flat and adaptive samples, of evaluation samples and of the filter's
    samples"""
    temperature: float = 1.0
    """sampling temperature of flat and adaptive samples, evaluations and filters (0 =
    greedy); the search's own is ``search.temperature``"""
    search: SearchConfig = field(default_factory=SearchConfig)
    """the tree search of the "tree" strategy"""
    adaptive: AdaptiveConfig = field(default_factory=AdaptiveConfig)
    """the rounds and budget of the "adaptive" strategy"""
    replay_buffer: str | None = None
    """a replay-buffer file (:mod:`dslib.replay`): its problems skip the strategy and get
    groups of cached solutions + direct samples (docs/paper-notes.md#hybrid-groups); None = no
    buffer"""

    def __post_init__(self) -> None:
        check_types(self)
        _choice(self, "strategy", tuple(STRATEGIES))
        _require(self, "samples_per_problem", self.samples_per_problem >= 1, ">= 1")
        _require(self, "max_new_tokens", self.max_new_tokens >= 1, ">= 1")
        _require(self, "temperature", self.temperature >= 0.0, ">= 0 (0 = greedy)")


@dataclass
class OptimConfig:
    """The learner: AdamW on the clipped Tree-GRPO loss (``dslib.learner``,
    docs/paper-notes.md#hyperparameters)."""

    lr: float = 1e-6
    """AdamW learning rate after the warm-up (constant, docs/paper-notes.md#hyperparameters)"""
    warmup_steps: int = 10
    """linear warm-up of the learning rate over optimizer updates, then constant
    (docs/paper-notes.md#hyperparameters)"""
    weight_decay: float = 0.1
    """AdamW weight decay (docs/paper-notes.md#hyperparameters)"""
    grad_clip: float = 1.0
    """clip the global gradient norm to this before each optimizer step
    (docs/paper-notes.md#hyperparameters)"""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """AdamW (beta1, beta2)"""
    mini_batches: int = 8
    """optimizer updates per step and epoch (released run: 2048 seqs / 256 = 8,
    docs/paper-notes.md#hyperparameters)"""
    ppo_epochs: int = 1
    """passes over the step's samples (the released run: 1)"""
    micro_batch_tokens: int | None = None
    """split each mini-batch's forward/backward into micro-batches of at most this many
    (padded) tokens, accumulating gradients (the released run: 18,432 tokens per GPU,
    docs/paper-notes.md#hyperparameters); None = one pass per mini-batch. The loss is the same: each
    micro-batch is divided by the mini-batch's count"""
    gradient_checkpointing: bool = False
    """recompute activations in the backward pass (long responses on a GPU)"""
    shard_optimizer: bool = False
    """shard AdamW's state over ranks (ZeRO stage 1,
    ``torch.distributed.optim.ZeroRedundancyOptimizer``): each rank keeps the moments of
    1/world of the parameters; ignored with one process"""
    dtype: str = "float32"
    """dtype of the trained model's parameters and AdamW state (the master weights): float32,
    or bfloat16 for memory experiments only: a bf16 weight (8-bit mantissa) cannot take an
    update of lr 1e-6, so pure-bf16 training at the paper's rate barely moves"""
    compute_dtype: str = "float32"
    """dtype of the learner's forward/backward: "bfloat16" runs them under ``torch.autocast``
    while the parameters stay in ``dtype`` (fp32 master weights with bf16 compute, the mixed
    precision of the released run's FSDP workers, docs/paper-notes.md#hyperparameters); also the
    vLLM engine's dtype"""
    skip_zero_signal_updates: bool = True
    """skip the optimizer step of a mini-batch whose advantages are all zero: its gradient is
    zero, and an AdamW step would still move the weights along stale momentum. The released
    run's mini-batches (256 sequences) never have this; the tiny preset's small ones often do"""
    grpo: TreeGRPOConfig = field(default_factory=TreeGRPOConfig)
    """token rewards, advantages and the clipped loss"""

    def __post_init__(self) -> None:
        check_types(self)
        _require(self, "lr", self.lr > 0.0, "> 0")
        _require(self, "warmup_steps", self.warmup_steps >= 0, ">= 0")
        _require(self, "weight_decay", self.weight_decay >= 0.0, ">= 0")
        _require(self, "grad_clip", self.grad_clip > 0.0, "> 0")
        _require(self, "adam_betas", all(0.0 <= b < 1.0 for b in self.adam_betas),
                 "two numbers in [0, 1)")
        _require(self, "mini_batches", self.mini_batches >= 1, ">= 1")
        _require(self, "ppo_epochs", self.ppo_epochs >= 1, ">= 1")
        _require(self, "micro_batch_tokens",
                 self.micro_batch_tokens is None or self.micro_batch_tokens >= 1, ">= 1 or None")
        _choice(self, "dtype", DTYPES)
        _choice(self, "compute_dtype", DTYPES)


@dataclass
class EvalConfig:
    """Held-out evaluation during training: pass@1 (avg@n) per set, at temperature 1."""

    every: int = 10
    """evaluate every this many steps (and after the last); 0 = never"""
    at_start: bool = True
    """also evaluate before the first step (a later round continuing the previous one's
    weights already has that number)"""
    problems: int = 100
    """problems per held-out set (countdown level, or benchmark)"""
    samples: int = 4
    """samples per problem (pass@1 is their mean success)"""
    levels: tuple[int, ...] = (3, 4, 5)
    """countdown levels evaluated, one set each ("L3", "L4", ...)"""
    split: str = "test"
    """countdown split the held-out problems come from"""
    benchmarks: tuple[str, ...] = ()
    """deepmath: benchmarks evaluated every ``every`` steps (the released run: none)"""

    def __post_init__(self) -> None:
        check_types(self)
        _require(self, "every", self.every >= 0, ">= 0 (0 = never)")
        _require(self, "problems", self.problems >= 1, ">= 1")
        _require(self, "samples", self.samples >= 1, ">= 1")
        _require(self, "levels", all(lv >= 1 for lv in self.levels), "numbers >= 1")
        _require(self, "split", bool(self.split), "a split name")


@dataclass
class RunConfig:
    """The run itself: how long, how big a step, where, and what is written."""

    steps: int = 30
    """training steps of the run"""
    problems_per_step: int = 16
    """problems drawn per step (a fixed shuffle per epoch, seeded); one group each"""
    seed: int = 0
    """seeds the problem order, the sampling and the update order (every step reseeds every
    random source from (seed, step), so a resumed run continues exactly)"""
    checkpoint_every: int = 1
    """write the checkpoint every this many steps and after the last (a killed run loses at
    most that many)"""
    keep_previous_checkpoint: bool = False
    """keep the checkpoint before the latest as ``checkpoint.old/``: a resume falls back to it
    when the latest cannot be read (twice the checkpoint's disk space)"""
    log_rollouts: bool = False
    """append every sampled response's outcome to ``rollouts.jsonl`` (the released run dumps
    rollouts every step; the replay buffer of the next round is registered from them)"""
    device: str = "cpu"
    """"cpu", "cuda", "cuda:1", ... (the model, the sampler and the update run there)"""
    backend: str = "hf"
    """sampler: "hf" (transformers, shares the model: updates are visible in place) or "vllm"
    (``dslib.policy.vllm``: its own engine, new weights pushed after every update, asleep
    during the update when colocated on a GPU)"""
    dry_run: bool = False
    """replace the model by a tiny random Qwen2 (the 1.5B model's family) with a locally
    trained tokenizer, and shrink data and sizes: the preset's whole code path, no download"""

    def __post_init__(self) -> None:
        check_types(self)
        _require(self, "steps", self.steps >= 1, ">= 1")
        _require(self, "problems_per_step", self.problems_per_step >= 1, ">= 1")
        _require(self, "seed", self.seed >= 0, ">= 0")
        _require(self, "checkpoint_every", self.checkpoint_every >= 1, ">= 1")
        _require(self, "device", bool(_DEVICE.fullmatch(self.device)),
                 '"cpu", "cuda", "cuda:N" or "mps"')
        _choice(self, "backend", BACKENDS)


@dataclass
class TrainConfig:
    """Everything one training run needs, in sections; presets in :mod:`dslib.presets`.

    ``--set SECTION.FIELD=VALUE`` (e.g. ``optim.lr=1e-4``, ``rollout.search.width=8``) changes
    a field; ``--mode deepsearch|grpo|adaptive-grpo`` is ``rollout.strategy=tree|flat|adaptive``.
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    """problems, model and reward"""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """how each problem's group of samples is made"""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """the learner"""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """held-out evaluation during training"""
    run: RunConfig = field(default_factory=RunConfig)
    """steps, seed, device, files"""
    filters: tuple[str, ...] = ()
    """named filters applied, in order, to the step's groups before the update (each logs
    ``<what>_dropped``): "hygiene" drops garbled or endlessly repeating INCORRECT samples (paper
    Sec. 4.2, docs/paper-notes.md#hygiene; not in the released code),
    "drop_unsolved" drops groups without a correct sample (DAPO's dynamic sampling applied to trees;
    in neither paper nor code). See :mod:`dslib.hygiene` and :func:`dslib.rollouts.drop_unsolved`"""

    def __post_init__(self) -> None:
        check_types(self)
        unknown = [f for f in self.filters if f not in FILTERS]
        _require(self, "filters", not unknown and len(set(self.filters)) == len(self.filters),
                 f"distinct names from {FILTERS}")

    @property
    def mode(self) -> str:
        """"deepsearch", "grpo" or "adaptive-grpo": the word for the rollout strategy in run names
        and metrics."""
        return STRATEGIES[self.rollout.strategy]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        return from_dict(cls, data)


# ----------------------------------------------------------------------------- rounds


@dataclass
class RoundsConfig:
    """The round loop's own settings (``dslib.rounds``); training settings are a TrainConfig."""

    rounds: int = 3
    """rounds to run (a re-run may raise it to continue)"""
    steps_per_round: int = 50
    """training steps of each round"""
    k: int = 4
    """Pass1@K direct rollouts per problem for filtering (docs/paper-notes.md#filtering)"""
    delta: float = 0.25
    """keep a problem while its Pass1@K success rate is <= delta (docs/paper-notes.md#filtering)"""
    strict: bool = False
    """paper's strict "<" (keeps 0/4 only) instead of the code's "<=" (0/4 and 1/4)"""
    register_threshold: float = 0.25
    """replay-buffer registration threshold on the success rate
    (docs/paper-notes.md#replay-buffer)"""
    register_rule: str = "code"
    """"code": 0 < round success share <= threshold; "paper": Pass1@K after the round <
    threshold (uses the next round's filter rates), docs/paper-notes.md#replay-buffer"""
    restart_from_base: bool = False
    """every round starts from the base model (the released round1.sh) instead of the previous
    round's checkpoint"""
    pool_size: int | None = None
    """filter only this many problems of the training pool (a seeded sample), to fit a CPU
    budget; None = the whole pool"""
    filter_first: bool = True
    """filter the pool before round 1; False when the data already is the hard subset (the
    released round-0 files are the base model's Pass1@4 in {0, 25 %} problems,
    docs/paper-notes.md#hyperparameters)"""

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("rounds", "steps_per_round", "k"):
            _require(self, name, getattr(self, name) >= 1, ">= 1")
        _require(self, "delta", 0.0 <= self.delta <= 1.0, "in [0, 1]")
        _require(self, "register_threshold", 0.0 <= self.register_threshold <= 1.0, "in [0, 1]")
        _choice(self, "register_rule", ("code", "paper"))
        _require(self, "pool_size", self.pool_size is None or self.pool_size >= 1, ">= 1 or None")


# ----------------------------------------------------------------------------- hygiene

#: code points (inclusive ranges) that count as ordinary in an English math response, on top
#: of printable ASCII, tab, newline and carriage return
DEFAULT_ALLOWED_RANGES: tuple[tuple[int, int], ...] = (
    (0x00A0, 0x024F),    # Latin-1 supplement, Latin extended A/B: accents, ×, ÷, ±, °, ²
    (0x0370, 0x03FF),    # Greek
    (0x2000, 0x206F),    # general punctuation: dashes, quotes, ellipsis
    (0x2070, 0x209F),    # superscripts and subscripts
    (0x2100, 0x214F),    # letterlike symbols: ℝ, ℕ, ℤ
    (0x2190, 0x23FF),    # arrows, mathematical operators, miscellaneous technical (⌊ ⌋)
    (0x25A0, 0x25FF),    # geometric shapes: □, △
    (0x2713, 0x2717),    # check and cross marks
    (0x27C0, 0x27FF),    # miscellaneous mathematical symbols A, supplemental arrows A
    (0x2980, 0x2AFF),    # miscellaneous mathematical symbols B, supplemental operators
    (0x1D400, 0x1D7FF),  # mathematical alphanumeric symbols
)


@dataclass(frozen=True)
class HygieneConfig:
    """Thresholds of ``hygiene.is_degenerate`` (the paper gives none, docs/paper-notes.md#hygiene;
    ours, documented)."""

    max_period: int = 100
    """longest repeated block looked for, in characters"""
    min_repeats: int = 10
    """a block repeated this many times back to back is a repetition loop..."""
    min_run_chars: int = 40
    """...provided the repeats cover at least this many characters (so "==========" is fine)"""
    min_compress_chars: int = 1000
    """the compression test runs on texts at least this long (zlib's header dominates below)"""
    max_compress_ratio: float = 0.1
    """zlib-compressed size / UTF-8 size below this = repetition (prose and math: 0.3-0.6)"""
    max_foreign_share: float = 0.2
    """more than this share of characters outside the allowed set = garbled"""
    allowed_ranges: tuple[tuple[int, int], ...] = DEFAULT_ALLOWED_RANGES
    """code point ranges (inclusive) that count as ordinary besides printable ASCII"""

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("max_period", "min_repeats", "min_run_chars", "min_compress_chars"):
            _require(self, name, getattr(self, name) >= 1, ">= 1")
        _require(self, "max_compress_ratio", 0.0 <= self.max_compress_ratio <= 1.0, "in [0, 1]")
        _require(self, "max_foreign_share", 0.0 <= self.max_foreign_share <= 1.0, "in [0, 1]")


# ----------------------------------------------------------------------------- checks

C = TypeVar("C")


def _require(obj: object, name: str, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{type(obj).__name__}.{name} must be {allowed}, "
                         f"got {getattr(obj, name)!r}")


def _choice(obj: object, name: str, allowed: tuple[str, ...]) -> None:
    _require(obj, name, getattr(obj, name) in allowed, f"one of {allowed}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_types(obj: Any) -> None:
    """Check (and normalise) every field of a config dataclass against its annotation.

    JSON lists become tuples, integers become floats where a float is expected, a section
    given as a dict becomes its dataclass. Anything else that does not fit raises a
    ValueError naming ``Class.field``, the value and the expected type. Called first in every
    config's ``__post_init__`` (frozen ones included).
    """
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        where = f"{type(obj).__name__}.{f.name}"
        value = coerce(getattr(obj, f.name), hints[f.name], where)
        object.__setattr__(obj, f.name, value)


def _describe(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return f"a {tp.__name__} section"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}s"
        return f"a list of {len(args)} ({', '.join(_describe(a) for a in args)})"
    return {int: "an integer", float: "a finite number", bool: "true or false",
            str: "a string"}.get(tp, str(tp))


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` as the annotation ``tp`` wants it, or a ValueError naming ``where``."""

    def bad() -> ValueError:
        return ValueError(f"{where} must be {_describe(tp)}, got {value!r}")

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, where)
            except ValueError:
                continue
        raise bad()
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return from_dict(tp, value, where)
        raise ValueError(f"{where} is a section ({tp.__name__}): set its fields one by one, "
                         f"e.g. {where.split('.', 1)[-1]}.FIELD=VALUE; got {value!r}")
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            if len(args) == 2 and args[1] is Ellipsis:
                value = [value]  # one item for a list field
            else:
                raise bad()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise bad()
        return tuple(coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
                value):
            return float(value)
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    return value


def from_dict(cls: type[C], data: Mapping[str, Any], where: str | None = None) -> C:
    """A config dataclass from a (JSON) dict; unknown keys are an error, missing ones default."""
    where = where or cls.__name__
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be an object of {cls.__name__} fields, got {data!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; {cls.__name__} has {names}")
    return cls(**dict(data))


# ----------------------------------------------------------------------------- overrides


def parse_assignment(item: str) -> tuple[str, Any]:
    """``"rollout.search.width=8"`` -> ``("rollout.search.width", 8)``: the value parsed as
    JSON (numbers, true/false, null, lists), else kept as a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{item!r}: expected KEY=VALUE")
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


def _field_paths(cls: type, prefix: str = "") -> list[str]:
    """Every dotted field path of a config dataclass (sections included)."""
    out = []
    for name, tp in _hints(cls).items():
        out.append(prefix + name)
        if dataclasses.is_dataclass(tp):
            out += _field_paths(tp, f"{prefix}{name}.")
    return out


def _unknown(cfg: Any, key: str) -> ValueError:
    paths = _field_paths(type(cfg))
    leaf = key.rsplit(".", 1)[-1]
    near = [p for p in paths if p.rsplit(".", 1)[-1] == leaf]
    near += [p for p in difflib.get_close_matches(key, paths, n=3) if p not in near]
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    return ValueError(f"unknown field {key!r} of {type(cfg).__name__}{hint}")


def update(cfg: C, changes: Mapping[str, Any]) -> C:
    """``cfg`` with dotted-path fields replaced, checked as a new config; ``cfg`` is unchanged.

    ``update(cfg, {"optim.lr": 1e-4, "run.steps": 3})``; a value may be a whole section
    (a dataclass, or a dict of its fields).
    """
    for key, value in changes.items():
        cfg = _replace_path(cfg, key.split("."), value, key)
    return cfg


def _replace_path(obj: Any, parts: list[str], value: Any, key: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    if parts[0] not in names:
        raise _unknown(obj, key)
    if len(parts) > 1:
        inner = getattr(obj, parts[0])
        if not dataclasses.is_dataclass(inner):
            raise _unknown(obj, key)
        value = _replace_path(inner, parts[1:], value, key)
    return replace(obj, **{parts[0]: value})


def _takes_text(tp: Any) -> bool:
    """Whether a field stores text (so ``model=123`` means the string "123")."""
    if tp is str:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_takes_text(a) for a in args)
    return origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] is str


def _annotation(cfg: Any, key: str) -> Any:
    tp: Any = type(cfg)
    for part in key.split("."):
        hints = _hints(tp) if dataclasses.is_dataclass(tp) else {}
        if part not in hints:
            raise _unknown(cfg, key)
        tp = hints[part]
    return tp


def override(cfg: C, assignments: Sequence[str]) -> C:
    """``cfg`` with ``["optim.lr=1e-4", "rollout.search.width=8"]`` applied, checked.

    Values are parsed as JSON, else kept as strings (a number given to a text field stays the
    text typed). Any problem raises a ValueError that quotes the assignment and names the
    field, the value and what is allowed.
    """
    for item in assignments:
        try:
            key, value = parse_assignment(item)
            tp = _annotation(cfg, key)
            if dataclasses.is_dataclass(tp) and not isinstance(value, Mapping):
                fields = ", ".join(f.name for f in dataclasses.fields(tp))
                raise ValueError(f"{key} is a section, not a value: set one of its fields, "
                                 f"{key}.FIELD=VALUE ({fields})")
            if not isinstance(value, (str, list, dict)) and value is not None and _takes_text(tp):
                value = item.partition("=")[2]
            cfg = update(cfg, {key: value})
        except ValueError as err:
            msg = str(err)
            raise ValueError(msg if msg.startswith(repr(item)) else f"{item!r}: {msg}") from None
    return cfg
