"""The composition root: the only place that loads models and tokenizers by name.

Everything above this layer (trainer, rounds, benchmarks, cli) asks here for what a config or
a name stands for; everything below receives objects.

| function          | from                                      | gives                          |
|-------------------|-------------------------------------------|--------------------------------|
| ``model_and_task``| a ``TrainConfig``                         | the model and its ``Task``     |
| ``train_policy``  | a ``TrainConfig``, the model, the task    | the sampler of a training run  |
| ``load_model``    | a checkpoint directory, a ``TrainConfig`` | the model on the run's device  |
| ``eval_policy``   | "tiny", a checkpoint directory, a hub name| policy, tokenizer, fingerprint |

Tasks: "countdown" (the tiny reasoner, a cached build or a checkpoint of one, and its splits)
and "deepmath" (a causal LM with a chat template and DeepMath problems; ``run.dry_run``: a
tiny random Qwen2 and a tokenizer trained here, nothing downloaded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from dslib import tiny
from dslib.config import TrainConfig
from dslib.filtering import subset_from_file
from dslib.policy.base import Policy
from dslib.policy.hf import load_causal_lm
from dslib.policy.make import make_policy, model_fingerprint
from dslib.tasks import countdown
from dslib.tasks import math as math_task
from dslib.tasks.base import TokenVerifier
from dslib.verify import Verdict

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class Task:
    """What a run trains and evaluates on: prompted items and a token-level verifier."""

    train_items: list[Any]
    eval_sets: dict[str, list[Any]]
    verifier: Callable[[Any, list[int]], Verdict]
    tokenizer: Any = None
    source: Path | None = None
    """the model directory the task came from; its ``build_info.json`` (problem splits) is
    copied into every checkpoint, so a checkpoint reloads with the same splits"""


def model_and_task(cfg: TrainConfig) -> tuple[Any, Task]:
    """The model ``cfg.task.model`` names (on ``run.device`` in ``optim.dtype``) and its task
    (``task.train_subset`` applied)."""
    if cfg.task.name == "deepmath":
        model, task = deepmath_model_and_task(cfg)
    else:
        model, task = countdown_model_and_task(cfg)
    return model.to(device=cfg.run.device, dtype=DTYPES[cfg.optim.dtype]), task


def load_model(path: str | Path, cfg: TrainConfig) -> Any:
    """A checkpoint's model on ``run.device`` in ``optim.dtype`` (a resumed run's weights)."""
    return load_causal_lm(path).to(device=cfg.run.device, dtype=DTYPES[cfg.optim.dtype])


def train_policy(cfg: TrainConfig, model: Any, task: Task) -> Policy:
    """The sampler of a training run (``run.backend``); bf16 when the weights or the compute
    are bf16."""
    bf16 = "bfloat16" in (cfg.optim.dtype, cfg.optim.compute_dtype)
    return make_policy(model, backend=cfg.run.backend, seed=cfg.run.seed,
                       source=task.source or cfg.task.model,
                       dtype="bfloat16" if bf16 else "float32")


# ----------------------------------------------------------------------------- countdown


def reasoner(cfg: TrainConfig) -> tiny.TinyReasoner:
    """The tiny reasoner ``task.model`` names: the cached build (``task.tiny_build`` applied,
    built if missing) or a checkpoint directory of one."""
    if cfg.task.model == "tiny":
        return tiny.build(tiny.override(tiny.default_config(), list(cfg.task.tiny_build)))
    return tiny.TinyReasoner.from_dir(cfg.task.model)


def countdown_model_and_task(cfg: TrainConfig) -> tuple[Any, Task]:
    """The tiny reasoner's model and its countdown splits."""
    r = reasoner(cfg)
    return r.load_model(), countdown_task(cfg, r)


def countdown_task(cfg: TrainConfig, reasoner: tiny.TinyReasoner) -> Task:
    """The build's ``task.split`` problems of ``task.levels`` and ``eval.split`` problems of
    ``eval.levels``; levels or splits the build does not have are a clear error."""
    check_levels(cfg, reasoner.config)
    train = [it for lv in cfg.task.levels for it in reasoner.prompted(lv, cfg.task.split)]
    if not train:
        raise ValueError(f"no {cfg.task.split!r} problems for levels {cfg.task.levels}")
    if cfg.task.train_subset:
        train = subset_from_file(train, cfg.task.train_subset)
    evals = {f"L{lv}": reasoner.prompted(lv, cfg.eval.split, cfg.eval.problems)
             for lv in cfg.eval.levels}
    tokenizer = reasoner.load_tokenizer()
    verifier = TokenVerifier(tokenizer, countdown.verifier(cfg.task.verify))  # box | steps
    return Task(train, evals, verifier, tokenizer, reasoner.path)


def check_levels(cfg: TrainConfig, build: tiny.TinyConfig) -> None:
    """``task.levels``/``eval.levels`` and both splits must exist in the tiny build."""
    for name, levels in (("task.levels", cfg.task.levels), ("eval.levels", cfg.eval.levels)):
        missing = [lv for lv in levels if lv not in build.levels]
        if missing:
            raise ValueError(f"{name}={list(levels)}: the tiny reasoner's build has no level "
                             f"{missing[0]}; its levels (numbers per problem) are "
                             f"{list(build.levels)} (another build: task.tiny_build)")
    for name, split in (("task.split", cfg.task.split), ("eval.split", cfg.eval.split)):
        if split not in build.fractions():
            raise ValueError(f"{name}={split!r}: the tiny reasoner's build has the splits "
                             f"{sorted(build.fractions())}")


# ----------------------------------------------------------------------------- deepmath


def deepmath_model_and_task(cfg: TrainConfig) -> tuple[Any, Task]:
    """DeepMath problems with the model's chat template, graded by ``task.grader``
    (docs/paper-notes.md#hyperparameters).

    ``run.dry_run``: a tiny random Qwen2 and a tokenizer trained here replace the model, and
    the data is capped at 64 problems (the built-in sample problems when no file is given).
    """
    t, dry = cfg.task, cfg.run.dry_run
    if dry and not Path(t.model).is_dir():  # a dry run's own checkpoints load
        model, tokenizer = dry_run_model()
    else:
        tokenizer = load_tokenizer(t.model)
        model = load_causal_lm(t.model)
    if t.data:
        problems = list(math_task.load_deepmath(list(t.data), limit=64 if dry else None))
    elif dry:
        problems = list(math_task.SAMPLE_PROBLEMS)
    else:
        raise ValueError("task 'deepmath' needs data: --set task.data=[FILE, ...] or a "
                         "dataset name")
    train = math_task.prompted(tokenizer, problems, t.max_prompt_tokens)
    if t.train_subset:
        train = subset_from_file(train, t.train_subset)
    grader = math_task.dapo_grader if t.grader == "dapo" else None
    verifier = TokenVerifier(tokenizer, partial(math_task.verify, grader=grader))
    evals = {}
    if cfg.eval.benchmarks and cfg.eval.every:
        sets = math_task.load_benchmarks(list(cfg.eval.benchmarks), limit=cfg.eval.problems)
        evals = {name: math_task.prompted(tokenizer, probs, t.max_prompt_tokens)
                 for name, probs in sets.items()}
    return model, Task(train, evals, verifier, tokenizer,
                       Path(t.model) if Path(t.model).is_dir() else None)


def dry_run_model() -> tuple[Any, Any]:
    """A randomly initialised tiny Qwen2 and a byte-level BPE trained in about a second.

    Qwen2 is the 1.5B model's architecture family (Nemotron-Research-Reasoning-Qwen-1.5B is a
    ``Qwen2ForCausalLM``); byte-level BPE encodes any math text. Nothing is downloaded.
    """
    tcfg = tiny.TinyConfig()
    tokenizer = tiny.build_tokenizer(tcfg)
    return tiny.build_model(tcfg, tokenizer).eval(), tokenizer


# ----------------------------------------------------------------------------- evaluation


def eval_policy(
    model: str | Path, backend: str = "hf", seed: int = 0, device: str = "auto"
) -> tuple[Policy, Any, dict[str, Any], str]:
    """(policy, tokenizer, fingerprint, label) for ``model``: "tiny", a directory or a hub name.

    ``"tiny"`` is the cached tiny reasoner (``dslib.tiny.build()``; a countdown model, so math
    scores are ~0: it exercises the pipeline). The ``hf`` backend loads fp32 weights on
    ``device`` ("auto" = CUDA when available) with the cross-call prefix cache off (evaluation
    never revisits a prefix). It keeps the whole batch's KV cache (``batch_problems * k`` rows,
    ~56 KiB per token for a 1.5B Qwen2 in fp32), so the paper's budget (32 x 32k tokens per
    problem) needs ``backend="vllm"``; ``hf`` suits the tiny model and short budgets.
    ``fingerprint`` is ``{"name", "path", "digest"}`` (``policy.make.model_fingerprint``).
    """
    label = str(model)
    if label == "tiny":
        model = tiny.build(progress=False).path
    path = Path(model)
    fingerprint = {"name": label, "path": str(path.resolve()) if path.is_dir() else None,
                   "digest": model_fingerprint(model)}
    if backend == "hf":
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        policy = make_policy(load_causal_lm(model).to(device), seed=seed, source=model,
                             prefix_cache_tokens=0)
    else:
        policy = make_policy(backend=backend, source=model, seed=seed)
    return policy, load_tokenizer(model), fingerprint, label


def load_tokenizer(model: str | Path) -> Any:
    """The tokenizer of a checkpoint directory or hub name."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model))
