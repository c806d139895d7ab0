"""A tiny countdown reasoner built offline: tokenizer + Qwen2 config + warm-start SFT.

The paper starts from a 1.5B model that already reasons but plateaus under flat RL. On a laptop
CPU we build the miniature of that situation in about three minutes:

1. a byte-level BPE tokenizer trained on countdown text with Qwen's pre-tokenizer regex (so
   ``AutoTokenizer``, which loads a ``Qwen2Tokenizer`` next to a ``qwen2`` config, produces the
   same ids; digits are single tokens), ChatML template, EOS = ``<|im_end|>``;
2. a ~0.5-1M-parameter ``Qwen2ForCausalLM`` from a config (no download);
3. a warm-start SFT on reference solutions, for a FIXED number of optimizer steps (not a wall
   clock budget, so the build is reproducible), loss on the response tokens only.

The budget is tuned so the model is *imperfect* in the way DeepSearch needs: easy problems are
solved often, most hard problems almost never (pass@4 <= 25%), where flat GRPO gets no signal.
Measured settings: ``reference/tiny-reasoner-feasibility.md``.

The result is a checkpoint directory (``config.json``, ``model.safetensors``, tokenizer files,
``chat_template.jinja``, ``build_info.json``) cached under ``$DSLIB_CACHE`` (default
``~/.cache/dslib``) by a hash of :class:`TinyConfig`, so tests and notebooks build it once.

Command: ``python -m dslib.tiny`` (builds or reuses, then prints the difficulty table).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dslib import files
from dslib.config import check_types
from dslib.config import from_dict as config_from_dict
from dslib.config import override as config_override
from dslib.evaluate import evaluate
from dslib.policy.hf import load_causal_lm
from dslib.policy.make import make_policy
from dslib.policy.qwen2 import new_qwen2
from dslib.progress import progress_bar
from dslib.tasks import countdown
from dslib.tasks.base import Prompted, TokenVerifier, chat_prompt_ids, prompt_all

#: modules whose source decides what a build produces (their digest is part of the cache key)
BUILD_MODULES = (
    "dslib.tiny", "dslib.tasks.countdown", "dslib.tasks.base", "dslib.policy.qwen2")

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|pad|>"
# Qwen2's pre-tokenizer split (transformers' Qwen2Tokenizer re-applies exactly this regex).
QWEN_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    """Everything that determines the tiny reasoner; its hash names the cache directory."""

    levels: tuple[int, ...] = (3, 4, 5)
    """difficulty levels (how many numbers a problem uses)"""
    max_number: int = 6
    """numbers are drawn from 1..max_number (small numbers make the arithmetic learnable)"""
    max_target: int = 100
    """targets are 1..max_target"""
    allow_times_one: bool = False
    """whether generated solutions may multiply by 1 (division by 1 is never generated)"""
    solution_style: str = "forward"
    """how the SFT's reference solutions list their steps: ``forward`` (``6*5=30`` then
    ``30-3=27``) or ``backward`` (goal first: ``27=30-3`` then ``30=6*5``); see
    :func:`dslib.tasks.countdown.solution_text`"""
    split_fractions: tuple[tuple[str, float], ...] = (("sft", 0.6), ("rl", 0.2), ("test", 0.2))
    """disjoint SFT / RL / held-out test split of problem keys (sorted numbers, target)"""
    problems_per_level: int = 4000
    """problems generated per level before splitting (3-number space is smaller: all of it)"""
    sft_mix: tuple[float, ...] = (0.2, 0.45, 0.35)
    """share of SFT batches per level (batches hold one level each: less padding). Most go to
    the hard levels: the few hundred 3-number problems are memorised at any share, while the
    hard levels' held-out pass@1 grows with their share"""
    vocab_size: int = 512
    """BPE vocabulary size asked of the tokenizer trainer (digits stay single tokens)"""
    hidden_size: int = 128
    """Qwen2 hidden width"""
    intermediate_size: int = 384
    """Qwen2 MLP width"""
    num_hidden_layers: int = 2
    """transformer layers"""
    num_attention_heads: int = 4
    """query heads per layer"""
    num_key_value_heads: int = 2
    """key/value heads per layer (grouped-query attention, as Qwen2)"""
    max_position_embeddings: int = 256
    """longest prompt + response the model is built for"""
    sft_steps: int = 1500
    """optimizer steps of the warm-start SFT (the knob that sets how imperfect the model is)"""
    batch_size: int = 32
    """sequences per SFT batch (one level per batch)"""
    lr: float = 3e-3
    """peak SFT learning rate (AdamW; linear warm-up, cosine decay to 10 %)"""
    warmup_steps: int = 50
    """SFT warm-up steps"""
    weight_decay: float = 0.0
    """AdamW weight decay of the SFT"""
    seed: int = 0
    """seed of the problem generator, the splits, the initial weights and the SFT batches"""
    threads: int = 2
    """torch threads of the SFT and the build's evaluation, whatever ``$OMP_NUM_THREADS`` says:
    the thread count splits float sums, so a build on 1 thread differs slightly from one on 2"""

    def __post_init__(self) -> None:
        check_types(self)
        if self.solution_style not in countdown.SOLUTION_STYLES:
            raise ValueError(f"TinyConfig.solution_style must be one of "
                             f"{countdown.SOLUTION_STYLES}, got {self.solution_style!r}")
        bad = [lv for lv in self.levels
               if not countdown.MIN_NUMBERS <= lv <= countdown.MAX_NUMBERS]
        if not self.levels or bad:
            raise ValueError(f"TinyConfig.levels must be numbers in {countdown.MIN_NUMBERS}.."
                             f"{countdown.MAX_NUMBERS}, got {self.levels!r}")
        if len(self.sft_mix) != len(self.levels) or any(w < 0 for w in self.sft_mix):
            raise ValueError(f"TinyConfig.sft_mix must hold one share >= 0 per level "
                             f"{self.levels}, got {self.sft_mix!r}")
        for name in ("max_number", "max_target", "problems_per_level", "vocab_size",
                     "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
                     "sft_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TinyConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.lr <= 0 or self.warmup_steps < 0 or self.weight_decay < 0 or self.seed < 0:
            raise ValueError(f"TinyConfig needs lr > 0 and warmup_steps, weight_decay, seed "
                             f">= 0, got lr={self.lr!r}, warmup_steps={self.warmup_steps!r}, "
                             f"weight_decay={self.weight_decay!r}, seed={self.seed!r}")

    def key(self) -> str:
        """Short hash naming the cache directory: the config, the build code and the machine.

        Everything that changes the weights is in it: every field, the source of
        :data:`BUILD_MODULES`, the versions of torch / transformers / tokenizers, and the CPU
        kernels torch dispatches to (the same config built with AVX2 and with AVX-512 kernels
        gives different weights: float sums round differently, and 1,500 SFT steps amplify
        it; the thread count is the field ``threads``). A cache shared by two kinds of
        machine keeps one build per kind.
        """
        blob = json.dumps({"config": dataclasses.asdict(self), "build": build_environment()},
                          sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def fractions(self) -> dict[str, float]:
        return dict(self.split_fractions)


@dataclass
class TinyReasoner:
    """A built tiny reasoner: where it lives, how it was built, and loaders."""

    path: Path
    config: TinyConfig
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dir(cls, path: str | Path) -> TinyReasoner:
        """A built reasoner (or a trained checkpoint of one) from its directory.

        The config comes from ``build_info.json`` when present (so the problem splits match
        the build), else the default :class:`TinyConfig`.
        """
        path = Path(path)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path}: not a model directory (no config.json)")
        info_file = path / "build_info.json"
        info = json.loads(info_file.read_text()) if info_file.exists() else {}
        cfg = config_from_info(info["config"], info_file) if info.get("config") else TinyConfig()
        return cls(path, cfg, info)

    def load_model(self) -> Any:
        return load_causal_lm(self.path)

    def load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.path))

    def load_policy(self, seed: int = 0) -> Any:
        return make_policy(self.load_model(), seed=seed, source=self.path)

    def prompted(self, level: int, split: str, count: int | None = None) -> list[Prompted]:
        """Problems of one level/split with their chat prompt ids, ready for ``search.run``.

        Memoised per (tokenizer files, config, level, split, count): a rounds run builds five
        trainers on the same splits, and prompting 2,000 problems takes seconds.
        """
        key = (_tokenizer_digest(self.path), self.config, level, split, count)
        if key not in _PROMPTED:
            _PROMPTED[key] = tuple(prompt_all(
                self.load_tokenizer(), self.problems(level, split, count), countdown.prompt_text
            ))
        return [Prompted(it.problem, list(it.prompt_ids)) for it in _PROMPTED[key]]

    def solution_text(self, problem: Any) -> str:
        """The reference solution of ``problem`` in the style this build was trained on."""
        return countdown.solution_text(problem, self.config.solution_style)

    def verifier(self) -> TokenVerifier:
        """The countdown verifier on token ids (what ``search.run`` and ``evaluate`` take)."""
        return TokenVerifier(self.load_tokenizer(), countdown.verify)

    def problems(self, level: int, split: str, count: int | None = None) -> list[Any]:
        """Problems of one level from one split ("sft", "rl" or "test"), deterministic."""
        return task_problems(self.config, level, split, count)


# ----------------------------------------------------------------------------- data


#: memo of :meth:`TinyReasoner.prompted` (small: a few thousand short prompts per key)
_PROMPTED: dict[tuple[Any, ...], tuple[Prompted, ...]] = {}


def _tokenizer_digest(path: Path) -> str:
    """Identifies a tokenizer by its files (a trained checkpoint keeps the build's tokenizer)."""
    h = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        f = Path(path) / name
        h.update(f.read_bytes() if f.exists() else b"-")
    return h.hexdigest()[:16]


def task_problems(cfg: TinyConfig, level: int, split: str, count: int | None = None) -> list[Any]:
    """The problems of ``level`` that fall into ``split``; the same list on every call."""
    if split not in cfg.fractions():
        raise ValueError(f"unknown split {split!r}; choose from {sorted(cfg.fractions())}")
    chosen = _split_problems(cfg, level, split)
    return list(chosen if count is None else chosen[:count])


@functools.lru_cache(maxsize=32)
def _split_problems(cfg: TinyConfig, level: int, split: str) -> tuple[Any, ...]:
    fractions = cfg.fractions()
    return tuple(p for p in _level_pool(cfg, level)
                 if countdown.split_of(p, seed=cfg.seed, fractions=fractions) == split)


@functools.lru_cache(maxsize=8)
def _level_pool(cfg: TinyConfig, level: int) -> tuple[Any, ...]:
    """Problems of one level: random expression trees, or the whole space when it is small."""
    try:
        return tuple(countdown.generate(
            level, cfg.problems_per_level, seed=cfg.seed * 1000 + level,
            max_number=cfg.max_number, max_target=cfg.max_target,
            allow_times_one=cfg.allow_times_one,
        ))
    except ValueError:
        # 3 numbers from 1..6 give only a few hundred problems: take all of them
        return tuple(countdown.all_problems(
            level, cfg.max_number, cfg.max_target, allow_times_one=cfg.allow_times_one
        ))


def corpus_lines(cfg: TinyConfig) -> list[str]:
    """Chat-formatted text the tokenizer is trained on (prompts, solutions, chat words)."""
    lines = []
    for level in cfg.levels:
        for p in _level_pool(cfg, level)[:1000]:
            lines.append(
                "<|im_start|>user\n" + countdown.prompt_text(p)
                + "<|im_end|>\n<|im_start|>assistant\n"
                + countdown.solution_text(p, cfg.solution_style) + "<|im_end|>\n"
            )
    return lines


# ----------------------------------------------------------------------------- tokenizer


def build_tokenizer(cfg: TinyConfig) -> Any:
    """Train the byte-level BPE and wrap it as a ``PreTrainedTokenizerFast`` with ChatML."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(cfg), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
        bos_token=None, unk_token=None, padding_side="left", chat_template=CHATML_TEMPLATE,
    )


# ----------------------------------------------------------------------------- model + SFT


def build_model(cfg: TinyConfig, tokenizer: Any) -> Any:
    """A randomly initialised Qwen2 of the configured size (seeded)."""
    import torch

    torch.manual_seed(cfg.seed)
    return new_qwen2(
        len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id,
        hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        max_position_embeddings=cfg.max_position_embeddings)


def sft_examples(cfg: TinyConfig, tokenizer: Any) -> dict[int, list[tuple[list[int], list[int]]]]:
    """(prompt ids, response ids + EOS) per level, from the SFT split only."""
    eos = tokenizer.eos_token_id
    out: dict[int, list[tuple[list[int], list[int]]]] = {}
    for level in cfg.levels:
        rows = []
        for p in task_problems(cfg, level, "sft"):
            prompt = chat_prompt_ids(tokenizer, countdown.prompt_text(p))
            resp = tokenizer(countdown.solution_text(p, cfg.solution_style),
                             add_special_tokens=False)["input_ids"]
            rows.append((prompt, list(resp) + [eos]))
        out[level] = rows
    return out


def sft(
    model: Any,
    examples: dict[int, list[tuple[list[int], list[int]]]],
    cfg: TinyConfig,
    pad_id: int,
    progress: bool = True,
) -> list[float]:
    """Warm-start SFT: AdamW, linear warm-up then cosine decay to 10%, loss on responses only.

    Each batch holds one level, drawn with probabilities ``cfg.sft_mix``. Returns the loss curve.
    """
    import torch

    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    levels = [lv for lv in cfg.levels if examples.get(lv)]
    weights = [cfg.sft_mix[cfg.levels.index(lv)] for lv in levels]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, cfg.sft_steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    bar = progress_bar(range(cfg.sft_steps), enabled=progress, desc="SFT", leave=False)
    losses = []
    model.train()
    for _ in bar:
        level = rng.choices(levels, weights)[0]
        batch = [rng.choice(examples[level]) for _ in range(cfg.batch_size)]
        ids, labels, mask = _collate(batch, pad_id)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.3f}")
    model.eval()
    return losses


def _collate(batch: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(p) + len(r) for p, r in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (p, r) in enumerate(batch):
        seq = p + r
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, len(p) : len(seq)] = torch.tensor(r)
        mask[i, : len(seq)] = 1
    return ids, labels, mask


# ----------------------------------------------------------------------------- build + cache


@functools.lru_cache(maxsize=1)
def build_environment() -> dict[str, str]:
    """What besides the config decides a build: code digest, library versions, CPU kernels."""
    import importlib
    import platform

    import tokenizers
    import torch
    import transformers

    code = hashlib.sha256()
    for name in BUILD_MODULES:
        code.update(Path(importlib.import_module(name).__file__).read_bytes())
    return {
        "code": code.hexdigest()[:16], "torch": torch.__version__,
        "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
        "machine": platform.machine(), "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
    }


def cache_root() -> Path:
    """Where built artefacts live: ``$DSLIB_CACHE`` or ``~/.cache/dslib``."""
    return Path(os.environ.get("DSLIB_CACHE", Path.home() / ".cache" / "dslib"))


def build(
    cfg: TinyConfig | None = None,
    *,
    force: bool = False,
    evaluate: bool = True,
    eval_problems: int = 100,
    eval_samples: int = 8,
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> TinyReasoner:
    """Build the tiny reasoner (or reuse the cached one) and return it.

    ``cache_dir`` overrides :func:`cache_root` (tests put throw-away builds there).

    The build writes into a temporary directory and renames it into place, so an interrupted
    build never leaves a half-written checkpoint behind. It runs under a lock on
    ``.tiny-KEY.lock`` beside the cache directory: a second process asking for the same build
    (two notebooks opened at once) waits and then reuses the first one's result
    (:func:`dslib.files.exclusive`).
    """
    import torch

    cfg = cfg or default_config()
    target = Path(cache_dir or cache_root()) / f"tiny-{cfg.key()}"
    if target.exists() and not force:
        return _cached(target, cfg)
    target.parent.mkdir(parents=True, exist_ok=True)
    with files.exclusive(target.with_name(f".{target.name}.lock"),
                         f"another process is building {target}; waiting for it"):
        if target.exists() and not force:  # built while this process waited
            return _cached(target, cfg)
        threads_before = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            return _build(cfg, target, evaluate, eval_problems, eval_samples, progress)
        finally:
            torch.set_num_threads(threads_before)


def _cached(target: Path, cfg: TinyConfig) -> TinyReasoner:
    info = json.loads((target / "build_info.json").read_text())
    return TinyReasoner(target, cfg, info)


def _build(cfg: TinyConfig, target: Path, evaluate: bool, eval_problems: int,
           eval_samples: int, progress: bool) -> TinyReasoner:
    t0 = time.perf_counter()
    tokenizer = build_tokenizer(cfg)
    model = build_model(cfg, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    examples = sft_examples(cfg, tokenizer)
    losses = sft(model, examples, cfg, tokenizer.pad_token_id, progress=progress)
    sft_seconds = time.perf_counter() - t0
    info: dict[str, Any] = {
        "config": dataclasses.asdict(cfg), "key": cfg.key(), "build": build_environment(),
        "parameters": n_params,
        "vocab_size": len(tokenizer), "sft_examples": {str(k): len(v) for k, v in examples.items()},
        "initial_loss": sum(losses[:10]) / max(1, len(losses[:10])),
        "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])),
        "build_seconds": round(sft_seconds, 1),
    }
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-tiny-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        reasoner = TinyReasoner(tmp, cfg, info)
        if evaluate:
            table = difficulty_table(
                reasoner, n_problems=eval_problems, n_samples=eval_samples, progress=progress
            )
            info["difficulty_table"] = table
            info["eval_seconds"] = round(time.perf_counter() - t0 - sft_seconds, 1)
        (tmp / "build_info.json").write_text(json.dumps(info, indent=2))
        files.replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return TinyReasoner(target, cfg, info)


class _LineTally:
    """The box verifier, counting on the side what the lines of each response are worth.

    ``evaluate`` scores with the box (the build's own verifier); for each response this also
    checks every step line (:func:`countdown.verify_steps`) and the first line alone
    (:func:`countdown.first_step_holds`), so one sampling pass gives both tables.
    """

    def __init__(self) -> None:
        self.samples = self.box = self.steps = self.box_and_steps = self.first_line = 0

    def __call__(self, problem: Any, response: str) -> Any:
        box = countdown.verify(problem, response)
        steps = countdown.verify_steps(problem, response).correct
        self.samples += 1
        self.box += box.correct
        self.steps += steps
        self.box_and_steps += box.correct and steps
        self.first_line += countdown.first_step_holds(problem, response)
        return box


def difficulty_table(
    reasoner: TinyReasoner,
    n_problems: int = 100,
    n_samples: int = 8,
    max_new_tokens: int = 64,
    seed: int = 1234,
    progress: bool = True,
    split: str = "test",
) -> list[dict[str, Any]]:
    """pass@1, pass@4 and the share of problems at <= 25% success, per level, on one split.

    Sampling at temperature 1.0 (the training temperature), ``n_samples`` per problem. The
    default ``split="test"`` is held out; ``split="sft"`` scores the problems the SFT saw, so
    the difference between the two tables is what the model memorised rather than learned.

    The box decides ``pass@1`` (the answer alone, ``countdown.verify``); the same samples also
    give ``steps_pass@1`` (every line a valid step, ``countdown.verify_steps``), the share of
    box-correct answers whose lines are all valid (``lines_valid_if_correct``: how much the
    scratch lines decide the answer) and the share of samples whose first line is a valid step
    (``first_line_valid``).
    """
    tokenizer = reasoner.load_tokenizer()
    policy = make_policy(reasoner.load_model(), seed=seed, source=reasoner.path)
    rows = []
    for level in reasoner.config.levels:
        tally = _LineTally()
        probs = reasoner.problems(level, split, n_problems)
        items = [Prompted(p, chat_prompt_ids(tokenizer, countdown.prompt_text(p))) for p in probs]
        res = evaluate(
            policy, items, TokenVerifier(tokenizer, tally), n_samples=n_samples, ks=(1, 4),
            max_new_tokens=max_new_tokens, temperature=1.0, progress=progress,
            desc=f"eval {level} numbers",
        )
        rows.append({
            "level": level, "split": split, "problems": len(items), "samples": n_samples,
            "pass@1": res.pass_at[1], "pass@4": res.pass_at[4],
            "share_le_25pct": res.share_at_most(0.25),
            "share_never": res.share_at_most(0.0),
            "answer_rate": res.answer_rate,
            "steps_pass@1": tally.steps / max(1, tally.samples),
            "lines_valid_if_correct": tally.box_and_steps / tally.box if tally.box else None,
            "first_line_valid": tally.first_line / max(1, tally.samples),
        })
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`difficulty_table` rows (older builds lack the line columns)."""
    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    head = (
        "| numbers | problems x samples | pass@1 | pass@4 | share at <= 25% success "
        "| never solved | boxed answer | steps pass@1 | correct with valid lines "
        "| valid first line |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['level']} | {r['problems']} x {r['samples']} | {r['pass@1']:.2f} | "
        f"{r['pass@4']:.2f} | {r['share_le_25pct']:.2f} | {r['share_never']:.2f} | "
        f"{r['answer_rate']:.2f} | {share(r.get('steps_pass@1'))} | "
        f"{share(r.get('lines_valid_if_correct'))} | {share(r.get('first_line_valid'))} |\n"
        for r in rows
    )
    return head + body


def override(cfg: TinyConfig, assignments: list[str]) -> TinyConfig:
    """``["sft_steps=2000", "num_hidden_layers=4"]`` -> a new, checked config
    (``dslib.config.override``: a ValueError names the field, the value and what is allowed)."""
    return config_override(cfg, assignments)


def config_from_info(data: dict[str, Any], source: object) -> TinyConfig:
    """The :class:`TinyConfig` stored in a build's ``build_info.json`` (``source`` names it in
    errors). Every field must be there, so a checkpoint reloads with its build's splits; keys
    that are not TinyConfig fields do not change the build and are ignored."""
    names = {f.name for f in dataclasses.fields(TinyConfig)}
    missing = sorted(names - set(data))
    if missing:
        raise ValueError(f"{source}: the build's config lacks {missing}; rebuild it "
                         "(python -m dslib.tiny --force) or train from a newer checkpoint")
    return config_from_dict(TinyConfig, {k: v for k, v in data.items() if k in names},
                            str(source))


#: environment variable of ``FIELD=VALUE`` assignments (separated by spaces) that change the
#: default build everywhere the kit builds "the" tiny reasoner: ``DSLIB_TINY_SET='seed=1' make
#: test`` runs the tests, notebooks and commands against another build
DEFAULT_BUILD_ENV = "DSLIB_TINY_SET"


def default_config() -> TinyConfig:
    """:class:`TinyConfig` with ``$DSLIB_TINY_SET`` applied (the default build when unset)."""
    assignments = os.environ.get(DEFAULT_BUILD_ENV, "").split()
    try:
        return override(TinyConfig(), assignments)
    except ValueError as err:
        raise ValueError(f"${DEFAULT_BUILD_ENV}: {err}") from None


BUILD_HELP = ("change the tiny reasoner's build (a dslib.tiny.TinyConfig field), e.g. "
              "seed=1 or num_hidden_layers=4; built once and cached")


def add_build_option(parser: Any, flag: str = "--tiny", help: str = BUILD_HELP) -> None:
    """The repeatable ``FIELD=VALUE`` option that picks a build (CLI, benchmarks, ``main``)."""
    parser.add_argument(flag, action="append", default=[], metavar="FIELD=VALUE", help=help)


def config_or_exit(assignments: list[str], flag: str = "--tiny") -> TinyConfig:
    """:func:`override` of the default config for a command line: a bad field is a clear
    exit naming the option, before any work starts."""
    try:
        return override(default_config(), list(assignments))
    except ValueError as err:
        raise SystemExit(f"{flag} {err}") from None


def main(argv: list[str] | None = None) -> None:
    """``python -m dslib.tiny [--force] [--set FIELD=VALUE] [--split sft]``: build or reuse it,
    print its difficulty table (held-out test problems, or the problems of ``--split``)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--sft-steps", type=int, default=None)
    ap.add_argument("--layers", type=int, default=None)
    add_build_option(ap, "--set", "override any TinyConfig field (value parsed as JSON, else a "
                     "string)")
    ap.add_argument(
        "--split", choices=("test", "sft", "rl"), default="test",
        help="score this split instead (sft: problems the SFT saw; the build's table is test)",
    )
    args = ap.parse_args(argv)
    cfg = config_or_exit(args.set, "--set")
    if args.sft_steps is not None:
        cfg = dataclasses.replace(cfg, sft_steps=args.sft_steps)
    if args.layers is not None:
        cfg = dataclasses.replace(cfg, num_hidden_layers=args.layers)
    t0 = time.perf_counter()
    r = build(cfg, force=args.force)
    print(f"tiny reasoner: {r.path}")
    print(
        f"parameters: {r.info['parameters']:,}  vocab: {r.info['vocab_size']}  "
        f"SFT steps: {cfg.sft_steps}  build: {r.info['build_seconds']} s SFT "
        f"+ {r.info.get('eval_seconds', 0)} s eval (this call: {time.perf_counter() - t0:.1f} s)"
    )
    if args.split == "test":
        print(format_table(r.info["difficulty_table"]))
    else:
        print(f"split {args.split!r} (the build's own table is on held-out test problems):")
        print(format_table(difficulty_table(r, split=args.split)))


if __name__ == "__main__":
    main()
