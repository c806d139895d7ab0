"""Does the kit work on this GPU, and what does a training step of the 1.5B recipe cost here?

```bash
python reproduce/gpu_check.py --out runs/gpu_check.json            # one CUDA device
python reproduce/gpu_check.py --dry-run --out /tmp/gpu_check.json  # the same code, CPU, toy sizes
```

Nothing is downloaded: the model is the released 1.5B model's architecture (Qwen2, see
:data:`ARCH_1P5B`) with random weights built from a config on the device, and the tokenizer is
trained locally, as the ``paper-1.5b`` dry run does (``dslib.build.deepmath_model_and_task``).
Random weights never emit EOS, so every sample runs to its length cap (the step costs are
those of full-length nodes and responses), and never write an answer, so the grader's verdicts
are replaced by coin flips (:class:`CoinVerifier`): the update gets mixed groups to learn from.

What it does, in order (a function each; each is a line of the printed table):

| function                | what                                          | passes when            |
|-------------------------|-----------------------------------------------|------------------------|
| ``check_logprobs``      | bf16: behaviour log-probs of sampled tokens   | max and mean abs. diff |
|                         | vs one fresh forward pass                     | within ``Tolerances``  |
| ``check_greedy_batching`` | bf16: greedy rows sampled together vs each  | equal, or they part at |
|                         | prefix alone                                  | a near-tie             |
| ``check_eos_in_chunk``  | bf16: a token sampled mid-chunk declared EOS, | rows stop right after  |
|                         | sampled again with the same seed              | it, nothing else moves |
| ``measure_step`` (tree) | one DeepSearch step of the preset at ``FULL`` | it runs: times,        |
|                         | sizes (8 problems, width 8, depth 4, 256-token| tokens/s, peak memory  |
|                         | nodes)                                        |                        |
| ``measure_step`` (flat) | one flat GRPO step, same group size and       | the same               |
|                         | response cap (depth x node tokens)            |                        |
| ``check_resume``        | checkpoint after the flat step, reload it in  | state bit-equal, next  |
|                         | a new trainer, run the next step in both      | step's samples equal,  |
|                         |                                               | loss equal             |
| ``project``             | the released recipe's GPU-hours at the        | a **projection**, not  |
|                         | measured rates                                | a measurement          |

Training runs with the preset's precision: fp32 master weights, bf16 autocast in the learner
(``optim.dtype``/``optim.compute_dtype``), gradient checkpointing; the transformers backend
samples with the fp32 weights (``dslib.build.train_policy``). Peak memory is
``torch.cuda.max_memory_allocated`` per phase on CUDA; on the CPU it is the process's peak
resident size (``resource.getrusage(...).ru_maxrss``, monotonic over the run) and the report
says so.
"""

from __future__ import annotations

import os

# cuBLAS picks deterministic kernels only with a fixed workspace (read at CUDA start-up): the
# resume check compares two runs of the same step bit for bit
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import argparse  # noqa: E402
import copy  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from dslib import build, presets, rollouts  # noqa: E402
from dslib.config import MODES, TrainConfig, update  # noqa: E402
from dslib.policy.hf import HFPolicy, sequence_logprobs  # noqa: E402
from dslib.trainer import Trainer  # noqa: E402
from dslib.verify import Verdict  # noqa: E402

#: Nemotron-Research-Reasoning-Qwen-1.5B's ``config.json`` (a ``Qwen2ForCausalLM``, the sizes of
#: DeepSeek-R1-Distill-Qwen-1.5B): untied input and output embeddings, 1.78B parameters.
#: ``dslib.policy.qwen2.new_qwen2`` always ties them (the tiny reasoner's choice), so the model
#: is built here from a ``Qwen2Config``. RoPE base 10,000 and RMSNorm eps 1e-6 are the defaults.
ARCH_1P5B: dict[str, Any] = {
    "vocab_size": 151_936, "hidden_size": 1536, "intermediate_size": 8960,
    "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
    "max_position_embeddings": 131_072, "tie_word_embeddings": False,
}
#: the dry run's model: the same builder and untied head at toy sizes; its vocabulary is still
#: larger than the local tokenizer's, as the 1.5B's is (ids the tokenizer lacks decode to "")
ARCH_TOY: dict[str, Any] = {**ARCH_1P5B, "vocab_size": 4096, "hidden_size": 64,
                            "intermediate_size": 128,
                            "num_hidden_layers": 2, "num_attention_heads": 4,
                            "num_key_value_heads": 2, "max_position_embeddings": 4096}


@dataclass(frozen=True)
class Sizes:
    """How big the measured steps and the backend checks are."""

    problems: int
    """problems per training step (the preset: 256)"""
    width: int
    """search expansion width (the preset: 8)"""
    depth: int
    """search max depth (the preset: 64); the flat step's response cap is depth x step_tokens"""
    step_tokens: int
    """tokens per node (the preset: 256)"""
    trajectories: int
    """trajectories per tree = flat samples per problem (the preset: 8)"""
    check_new_tokens: int
    """tokens sampled per row by the backend checks"""
    check_samples: int
    """samples per prefix in the backend checks"""

    @property
    def response_tokens(self) -> int:
        return self.depth * self.step_tokens


#: the GPU run: 8 problems, width 8, depth 4, 256-token nodes (the issue's reduced batch)
FULL = Sizes(problems=8, width=8, depth=4, step_tokens=256, trajectories=8,
             check_new_tokens=64, check_samples=4)
#: the dry run: the same code in seconds on a CPU
DRY = Sizes(problems=2, width=2, depth=3, step_tokens=8, trajectories=2,
            check_new_tokens=12, check_samples=2)


@dataclass(frozen=True)
class Tolerances:
    """What the bf16 backend checks accept (log-probs in nats).

    bf16 keeps 8 significant bits: a logit of size 4-8 is rounded to steps of 1/32, and a
    KV-cached decode and a fresh forward pass add up the same products in different orders,
    so their log-probs differ by a few such steps; a wrong position, mask or cache row shifts
    them by the size of the logits themselves (about 1 nat and more).
    """

    logprob_max: float = 0.25
    """largest |behaviour - fresh forward| over all sampled tokens"""
    logprob_mean: float = 0.03
    """mean |behaviour - fresh forward| over all sampled tokens"""
    near_tie: float = 0.125
    """greedy rows may part only where the two tokens' log-probs are this close (one bf16
    step at a logit of size 16-32): a tie that rounding can break either way"""


@dataclass
class Check:
    """One pass/fail check and what it measured."""

    name: str
    passed: bool
    tolerance: str
    """what "passed" means, in words"""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepCost:
    """One measured training step (``Trainer.train_step``), split into its three phases."""

    mode: str
    """"deepsearch" (tree search) or "grpo" (flat samples)"""
    problems: int
    samples: int
    """training sequences (recorded trajectories or flat samples)"""
    search_s: float
    """rollouts: the search (or the flat samples), verification included"""
    logprob_s: float
    """old log-probs recomputed by the learner (no gradient, bf16 autocast)"""
    update_s: float
    """the optimizer updates (forward + backward per mini-batch), weight push included"""
    step_s: float
    """the whole step"""
    sampled_tokens: int
    trained_tokens: int
    """prompt + response tokens of the sequences the learner trains on (no padding)"""
    search_tokens_per_s: float
    """sampled tokens / search_s"""
    logprob_tokens_per_s: float
    update_tokens_per_s: float
    """trained tokens x ppo_epochs / update_s"""
    peak_search_bytes: int
    peak_update_bytes: int
    loss: float
    updates: int
    search_iterations: float | None = None
    """mean batched policy calls per tree (tree steps only)"""


@dataclass
class Report:
    """Everything the script measured (``--out`` holds it as JSON)."""

    command: str
    dry_run: bool
    device: str
    device_name: str
    versions: dict[str, str]
    model: dict[str, Any]
    sizes: dict[str, Any]
    memory_kind: str
    """"torch.cuda.max_memory_allocated" (per phase) or "ru_maxrss" (CPU: process peak)"""
    checks: list[Check] = field(default_factory=list)
    steps: dict[str, StepCost] = field(default_factory=dict)
    checkpoint: dict[str, Any] = field(default_factory=dict)
    projection: dict[str, Any] = field(default_factory=dict)
    passed: bool = False
    error: str | None = None
    """the exception that stopped the run (out of memory, ...); the parts after it are missing"""
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- model and task


def build_model(arch: dict[str, Any], tokenizer: Any, device: str, seed: int) -> Any:
    """A random Qwen2 of ``arch``, created directly on ``device`` in fp32 (seeded); the
    generation config's EOS and pad are the tokenizer's, as ``new_qwen2`` sets them."""
    config = Qwen2Config(**arch, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model.to(torch.float32).eval()


def train_config(sizes: Sizes, mode: str, device: str, seed: int) -> TrainConfig:
    """The ``paper-1.5b`` preset at ``sizes``; everything else (loss, optimizer, precision,
    mini-batches, micro-batch token budget, checkpointing) stays the preset's.

    The overlong buffer keeps the preset's share of the response cap (4,096 of 16,384).
    """
    cfg = presets.paper_preset()
    grpo = cfg.optim.grpo
    cap = sizes.response_tokens
    return update(cfg, {
        "rollout.strategy": MODES[mode], "task.data": (), "run.device": device,
        "run.seed": seed, "run.steps": 2, "run.checkpoint_every": 1,
        "run.problems_per_step": sizes.problems,
        "rollout.samples_per_problem": sizes.trajectories, "rollout.max_new_tokens": cap,
        "rollout.search": dataclasses.replace(
            cfg.rollout.search, width=sizes.width, max_depth=sizes.depth,
            step_tokens=sizes.step_tokens, n_trajectories=sizes.trajectories),
        "optim.grpo": dataclasses.replace(
            grpo, max_response_tokens=cap,
            overlong_buffer=cap * grpo.overlong_buffer // grpo.max_response_tokens),
    })


def make_task(cfg: TrainConfig) -> build.Task:
    """The dry run's DeepMath task (sample problems, the locally trained tokenizer, the dapo
    grader): ``build.deepmath_model_and_task`` with ``run.dry_run``; its toy model is dropped.
    Verdicts are coin flips (:class:`CoinVerifier`)."""
    _, task = build.deepmath_model_and_task(update(cfg, {"run.dry_run": True}))
    return dataclasses.replace(task, verifier=CoinVerifier(task.verifier))


class CoinVerifier:
    """The task's verifier, run on every response (its cost counts), with its verdict replaced
    by a coin flip seeded by the response's tokens.

    Random weights never write a boxed answer: every sample would be wrong, every advantage
    zero and every update skipped (``optim.skip_zero_signal_updates``), so the measured update
    would do no work and the resume check would compare zero losses. With the coin, groups are
    mixed, as in a real step; the same tokens always get the same verdict.
    """

    def __init__(self, verifier: Callable[[Any, list[int]], Verdict]) -> None:
        self.verifier = verifier

    def __call__(self, item: Any, response_ids: list[int]) -> Verdict:
        verdict = self.verifier(item, response_ids)
        heads = zlib.crc32(",".join(map(str, response_ids)).encode()) % 2 == 1
        return Verdict(heads, verdict.extracted, "ok" if heads else "wrong")


def check_prefixes(task: build.Task, count: int = 3) -> list[list[int]]:
    """Prompts of different lengths (whole, two thirds, one third): left padding is exercised."""
    items = task.train_items
    out = []
    for i in range(count):
        ids = list(items[i % len(items)].prompt_ids)
        out.append(ids[: max(2, len(ids) * (count - i) // count)])
    return out


# ----------------------------------------------------------------------------- backend checks


def check_logprobs(model: Any, prefixes: list[list[int]], sizes: Sizes, tol: Tolerances,
                   never: int, seed: int = 3) -> Check:
    """Behaviour log-probs (KV-cached decode) against one fresh forward pass per sample
    (``dslib.policy.hf.sequence_logprobs``), temperature 1."""
    pol = HFPolicy(model, eos_token_id=never, pad_token_id=0, seed=seed, prefix_cache_tokens=0)
    out = pol.sample(prefixes, n=sizes.check_samples, max_new_tokens=sizes.check_new_tokens)
    diffs = []
    with torch.no_grad():
        for prefix, segs in zip(prefixes, out, strict=True):
            for seg in segs:
                ref = sequence_logprobs(model, prefix, seg.token_ids).float().cpu()
                diffs.append((ref - torch.tensor(seg.logprobs)).abs())
    d = torch.cat(diffs)
    worst, mean = float(d.max()), float(d.mean())
    return Check("logprobs vs fresh forward", worst <= tol.logprob_max and mean <= tol.logprob_mean,
                 f"max |diff| <= {tol.logprob_max}, mean <= {tol.logprob_mean} nats",
                 {"max_abs_diff": worst, "mean_abs_diff": mean, "tokens": int(d.numel())})


def parting(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first position where two token sequences differ (a length difference counts);
    None when they are equal."""
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return k
    return None if len(a) == len(b) else min(len(a), len(b))


def tie_gap(model: Any, context: list[int], a: int, b: int) -> float:
    """|log p(a) - log p(b)| of the next token after ``context``, one fresh forward pass."""
    ids = torch.tensor([context], device=next(model.parameters()).device)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), -1)
    return float((logp[a] - logp[b]).abs())


def check_greedy_batching(model: Any, prefixes: list[list[int]], sizes: Sizes,
                          tol: Tolerances, never: int) -> Check:
    """Greedy rows of one batched call (left-padded, 2 per prefix) against each prefix alone.

    Rows may part only at a near-tie: bf16 rounding depends on the batch shape, so two tokens
    whose log-probs are within ``near_tie`` may swap places; before that point the tokens are
    equal and their log-probs agree within ``logprob_max``.
    """
    pol = HFPolicy(model, eos_token_id=never, pad_token_id=0, prefix_cache_tokens=0)
    n_new = sizes.check_new_tokens
    batched = pol.sample(prefixes, n=2, max_new_tokens=n_new, temperature=0.0)
    rows = equal = 0
    gaps, lp_diff = [], 0.0
    for prefix, segs in zip(prefixes, batched, strict=True):
        alone = pol.sample([prefix], n=1, max_new_tokens=n_new, temperature=0.0)[0][0]
        for seg in segs:
            rows += 1
            k = parting(seg.token_ids, alone.token_ids)
            same = len(seg.token_ids) if k is None else k
            if same:
                diff = torch.tensor(seg.logprobs[:same]) - torch.tensor(alone.logprobs[:same])
                lp_diff = max(lp_diff, float(diff.abs().max()))
            if k is None:
                equal += 1
            elif k < min(len(seg.token_ids), len(alone.token_ids)):
                gaps.append(tie_gap(model, prefix + seg.token_ids[:k], seg.token_ids[k],
                                    alone.token_ids[k]))
            else:
                gaps.append(math.inf)  # one row stopped early: never a near-tie
    worst_gap = max(gaps, default=0.0)
    ok = worst_gap <= tol.near_tie and lp_diff <= tol.logprob_max
    return Check("batched vs unbatched greedy", ok,
                 f"rows equal, or part where the two tokens' log-probs are within "
                 f"{tol.near_tie} nats; log-probs before that within {tol.logprob_max}",
                 {"rows": rows, "equal_rows": equal, "parted_rows": len(gaps),
                  "largest_gap_where_parted": worst_gap if gaps else None,
                  "max_abs_logprob_diff": lp_diff})


def check_eos_in_chunk(model: Any, prefixes: list[list[int]], sizes: Sizes, never: int,
                       seed: int = 5) -> Check:
    """Sample once without EOS, declare a token first seen mid-chunk to be EOS, sample again
    with the same seed: every row must stop right after its first EOS, EOS kept, nothing after
    it, ``finished`` set; rows without it are unchanged."""
    n, n_new = sizes.check_samples, sizes.check_new_tokens
    ref = HFPolicy(model, eos_token_id=never, pad_token_id=0, seed=seed, prefix_cache_tokens=0)
    ref_out = ref.sample(prefixes, n=n, max_new_tokens=n_new)
    toks = ref_out[0][0].token_ids
    cut = next((i for i in range(2, len(toks)) if toks[i] not in toks[:i]), None)
    if cut is None:
        return Check("EOS inside a chunk", False, "a token first seen mid-chunk is needed",
                     {"reference_tokens": toks})
    eos = toks[cut]
    pol = HFPolicy(model, eos_token_id=eos, pad_token_id=0, seed=seed, prefix_cache_tokens=0)
    out = pol.sample(prefixes, n=n, max_new_tokens=n_new)
    bad, stopped = [], 0
    for i, (segs, ref_segs) in enumerate(zip(out, ref_out, strict=True)):
        for j, (seg, r) in enumerate(zip(segs, ref_segs, strict=True)):
            if eos in r.token_ids:
                k = r.token_ids.index(eos)
                ok = (seg.finished and seg.token_ids == r.token_ids[: k + 1]
                      and len(seg.logprobs) == k + 1)
                stopped += ok
            else:
                ok = not seg.finished and seg.token_ids == r.token_ids
            if not ok:
                bad.append(f"prefix {i} sample {j}")
    return Check("EOS inside a chunk", not bad and stopped >= 1,
                 "rows with the EOS token stop right after it (EOS kept, finished); "
                 "the others are unchanged",
                 {"eos_position": cut, "chunk": n_new, "rows_stopped": stopped,
                  "rows": sum(map(len, out)), "wrong_rows": bad})


def backend_checks(model: Any, task: build.Task, sizes: Sizes, tol: Tolerances) -> list[Check]:
    """The three checks on a bf16 copy of ``model`` (freed afterwards)."""
    bf16 = copy.deepcopy(model).to(torch.bfloat16).eval()
    never = int(bf16.config.vocab_size)  # an id outside the vocabulary: no row stops early
    prefixes = check_prefixes(task)
    try:
        return [check_logprobs(bf16, prefixes, sizes, tol, never),
                check_greedy_batching(bf16, prefixes, sizes, tol, never),
                check_eos_in_chunk(bf16, prefixes, sizes, never)]
    finally:
        del bf16
        free_memory()


# ----------------------------------------------------------------------------- measured steps


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: str) -> int:
    """Peak bytes since :func:`peak_reset` (CUDA) or the process's peak resident size (CPU;
    ``ru_maxrss`` is in KiB on Linux)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def watched(fn: Callable[..., Any], device: str, into: dict[str, Any], key: str) -> Callable:
    """``fn`` wrapped: its peak memory and its first argument are stored in ``into``."""
    def call(*args: Any, **kwargs: Any) -> Any:
        peak_reset(device)
        try:
            return fn(*args, **kwargs)
        finally:
            into[key] = peak_bytes(device)
            into[f"{key}_arg"] = args[0] if args else None
    return call


def measure_step(trainer: Trainer) -> StepCost:
    """One ``trainer.train_step()``; its two phases are watched for peak memory (the
    trainer's own ``rollouts`` and ``learner.update``, wrapped on the instance)."""
    device = trainer.cfg.run.device
    seen: dict[str, Any] = {}
    trainer.rollouts = watched(trainer.rollouts, device, seen, "search")
    trainer.learner.update = watched(trainer.learner.update, device, seen, "update")
    try:
        row = trainer.train_step()
    finally:
        del trainer.rollouts, trainer.learner.update  # back to the class's methods
    samples = [s for s in seen["update_arg"] if s.response_ids]
    trained = sum(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    search_s, logprob_s = float(row["rollout_s"]), float(row.get("logprob_s", 0.0))
    upd_s = float(row["update_s"]) - logprob_s
    sampled = int(row["sampled_tokens"])
    return StepCost(
        mode=trainer.cfg.mode, problems=len(trainer.last_groups), samples=len(samples),
        search_s=search_s, logprob_s=logprob_s, update_s=upd_s, step_s=float(row["wall_s"]),
        sampled_tokens=sampled, trained_tokens=trained,
        search_tokens_per_s=sampled / max(search_s, 1e-9),
        logprob_tokens_per_s=trained / max(logprob_s, 1e-9),
        update_tokens_per_s=trained * trainer.cfg.optim.ppo_epochs / max(upd_s, 1e-9),
        peak_search_bytes=seen["search"], peak_update_bytes=seen["update"],
        loss=float(row.get("loss", 0.0)), updates=int(row.get("updates", 0)),
        search_iterations=row.get("search_iterations"))


# ----------------------------------------------------------------------------- resume


def cpu_copy(obj: Any) -> Any:
    """``obj`` with every tensor copied to the CPU (dicts, lists and tuples walked)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two nested states differ (tensors: dtype, shape and every bit), or None."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{path}: tensor vs {type(b if isinstance(a, torch.Tensor) else a).__name__}"
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{path}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
        return None if torch.equal(a.cpu(), b.cpu()) else f"{path}: values differ"
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(map(str, a.keys() ^ b.keys()))[:5]} differ"
        for k in a:
            found = first_difference(a[k], b[k], f"{path}/{k}")
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """What a checkpoint must restore: weights, AdamW + schedule, step, token count (the
    trainer's own tensors, not copies)."""
    return {"model": trainer.model.state_dict(), "learner": trainer.learner.state_dict(),
            "step": trainer.step, "cumulative_sampled": trainer.cumulative_sampled}


def next_step(trainer: Trainer) -> tuple[dict[str, Any], list[list[int]], list[str]]:
    """One more step with deterministic algorithms asked for (warn only): its metrics row,
    its sampled responses, and the warnings of ops that have no deterministic kernel."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            row = trainer.train_step()
        finally:
            torch.use_deterministic_algorithms(False)
    responses = [s.response_ids for s in rollouts.flatten(trainer.last_groups)]
    notes = sorted({str(w.message).split("\n")[0][:160] for w in caught
                    if "determinis" in str(w.message)})
    return row, responses, notes


def check_resume(box: list[Trainer], task: build.Task, loss_tol: float,
                 info: dict[str, Any]) -> Check:
    """Save the trainer's checkpoint (the trainer's own files), run one more step, then resume
    a new trainer from the checkpoint (``Trainer.resume``) and run the same step there.

    Passes when the reloaded state equals the saved one bit for bit, the next step samples
    the same responses and its loss differs by at most ``loss_tol`` (0: exactly equal).
    ``box`` is a one-element list holding the trainer and nothing else may: it is emptied so
    that the first trainer is freed before the second one loads (weights, gradients and AdamW
    state of the 1.5B model are about 28 GiB). ``info`` gets the checkpoint's size and times.
    """
    trainer = box.pop()
    run_dir = trainer.run_dir
    trainer.files.write_config(trainer.cfg.to_dict())
    t0 = time.perf_counter()
    ckpt = trainer.save_checkpoint()
    info["save_s"] = time.perf_counter() - t0
    info["bytes"] = sum(f.stat().st_size for f in ckpt.rglob("*") if f.is_file())
    saved = cpu_copy(trainer_state(trainer))  # host memory: about 21 GiB for the 1.5B model
    row_a, resp_a, notes_a = next_step(trainer)
    trainer.model.zero_grad(set_to_none=True)
    del trainer
    free_memory()
    t0 = time.perf_counter()
    resumed = Trainer.resume(run_dir, task=task, progress=False)
    info["load_s"] = time.perf_counter() - t0
    diff = first_difference(saved, trainer_state(resumed))
    del saved
    step = resumed.step
    row_b, resp_b, notes_b = next_step(resumed)
    del resumed
    free_memory()
    loss_diff = abs(float(row_a["loss"]) - float(row_b["loss"]))
    same = resp_a == resp_b
    ok = diff is None and same and loss_diff <= loss_tol
    return Check("checkpoint and exact resume", ok,
                 f"state bit-equal after reload, next step's samples equal, |loss diff| <= "
                 f"{loss_tol}",
                 {"state_difference": diff, "next_step_samples_equal": same,
                  "next_step_loss": [float(row_a["loss"]), float(row_b["loss"])],
                  "loss_abs_diff": loss_diff, "resumed_at_step": step,
                  "nondeterministic_ops": sorted(set(notes_a) | set(notes_b))})


# ----------------------------------------------------------------------------- projection


@dataclass(frozen=True)
class Recipe:
    """The released run's sizes the projection scales the measured rates to
    (docs/paper-notes.md#hyperparameters; Tables 2 and 3: docs/paper-notes.md#table-2, #table-3)."""

    steps: int = 50
    """Tree-GRPO steps of the headline run (Table 2: +50 steps, 102.4K samples)"""
    problems_per_step: int = 256
    """trees per step (train_batch_size)"""
    iterations_per_tree: int = 190
    """batched expansions per tree (Table 3: about 190 iterations per tree)"""
    width: int = 8
    """children per expansion"""
    step_tokens: int = 256
    """tokens per node; every sampled node counted at full length (an upper bound)"""
    trajectories: int = 8
    """trained sequences per tree"""
    trajectory_tokens: int = 5120
    """tokens per trained sequence (Table 3: mean depth about 20 nodes, about 5k tokens)"""
    paper_gpu_hours: float = 330.0
    """Table 2: DeepSearch-1.5B's training, 20.6 h on 16 H100"""


#: what the projection does not model: (short name, what it means)
LEAVES_OUT = (
    ("SGLang/vLLM generation", "the released run generated with SGLang (paged KV cache, "
     "continuous batching); the rate used here is the transformers backend's"),
    ("several GPUs", "16 H100 in the paper, 8 in the scripts: FSDP sharding, communication and "
     "weight sync to the engine; here one GPU's seconds are summed"),
    ("batch size", "the run expands 16 trees per rank, thousands of rows per engine call; the "
     "measured search ran the reduced batch"),
    ("context length", "nodes there sit up to 16,384 tokens deep, the measured ones at most "
     "depth x step tokens; attention per token grows with the prefix"),
    ("EOS", "real responses stop early, random weights never do: every sampled node is counted "
     "at full length"),
    ("the rest", "replay-buffer hits (fewer searches in later rounds), checkpoints, "
     "verification"),
)


def project(cost: StepCost, recipe: Recipe = Recipe()) -> dict[str, Any]:
    """GPU-hours of the released recipe at the measured rates: a projection, not a measurement.

    | term      | tokens per step                                       | at the rate of          |
    |-----------|-------------------------------------------------------|-------------------------|
    | search    | problems x iterations x width x step_tokens (sampled) | ``search_tokens_per_s`` |
    | log-probs | problems x trajectories x trajectory_tokens (trained) | ``logprob_tokens_per_s``|
    | update    | the same trained tokens                               | ``update_tokens_per_s`` |

    GPU-hours = steps x (sum of the three times) / 3600, on one GPU's rates.
    """
    r = recipe
    rates = (cost.search_tokens_per_s, cost.logprob_tokens_per_s, cost.update_tokens_per_s)
    if min(rates) <= 0:
        return {"label": "projection", "error": f"a measured rate is zero: {rates}"}
    sampled = r.problems_per_step * r.iterations_per_tree * r.width * r.step_tokens
    trained = r.problems_per_step * r.trajectories * r.trajectory_tokens
    seconds = {"search": sampled / cost.search_tokens_per_s,
               "logprob": trained / cost.logprob_tokens_per_s,
               "update": trained / cost.update_tokens_per_s}
    hours = {k: r.steps * v / 3600 for k, v in seconds.items()}
    return {"label": "projection", "gpu_hours": sum(hours.values()), "gpu_hours_by_phase": hours,
            "sampled_tokens_per_step": sampled, "trained_tokens_per_step": trained,
            "recipe": asdict(r), "paper_gpu_hours": r.paper_gpu_hours,
            "from_rates_of": cost.mode,
            "leaves_out": {name: what for name, what in LEAVES_OUT}}


# ----------------------------------------------------------------------------- report


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def summary(report: Report) -> str:
    """The short printed table."""
    lines = [f"gpu_check on {report.device} ({report.device_name})"
             f"{' -- DRY RUN: toy model on the CPU, no GPU figure' if report.dry_run else ''}",
             f"model: Qwen2, {report.model['parameters'] / 1e9:.3f}B parameters, random weights; "
             f"sizes: {report.sizes}", "",
             "| check | result | detail |", "|---|---|---|"]
    for c in report.checks:
        shown = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in c.detail.items()}
        lines.append(f"| {c.name} | {'PASS' if c.passed else 'FAIL'} | {shown} |")
    mem = "peak GPU mem" if report.memory_kind.startswith("torch") else "process maxrss (CPU)"
    lines += ["", f"| step | search s | log-prob s | update s | sampled tok | search tok/s | "
              f"trained tok | log-prob tok/s | update tok/s | {mem} search / update |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in report.steps.items():
        lines.append(f"| {name} | {s.search_s:.2f} | {s.logprob_s:.2f} | {s.update_s:.2f} | "
                     f"{s.sampled_tokens} | {s.search_tokens_per_s:.0f} | {s.trained_tokens} | "
                     f"{s.logprob_tokens_per_s:.0f} | {s.update_tokens_per_s:.0f} | "
                     f"{gib(s.peak_search_bytes)} / {gib(s.peak_update_bytes)} |")
    ck = report.checkpoint
    if ck:
        lines += ["", f"checkpoint: {gib(ck['bytes'])} on disk, saved in {ck['save_s']:.1f} s, "
                      f"resumed in {ck['load_s']:.1f} s"]
    p = report.projection
    if p.get("gpu_hours") is not None:
        lines += ["", f"PROJECTION (not a measurement) of the released recipe from the "
                      f"{p['from_rates_of']} step's rates: {p['gpu_hours']:.0f} GPU-hours "
                      f"(search {p['gpu_hours_by_phase']['search']:.0f}, log-probs "
                      f"{p['gpu_hours_by_phase']['logprob']:.0f}, update "
                      f"{p['gpu_hours_by_phase']['update']:.0f}); the paper: "
                      f"{p['paper_gpu_hours']:.0f} GPU-hours (Table 2)",
                  "  leaves out: " + ", ".join(p["leaves_out"]) + " (see the JSON report)"]
        if report.dry_run:
            lines.append("  (dry run: CPU rates of a toy model; the number means nothing)")
    if report.error:
        lines += ["", f"STOPPED BY {report.error}"]
    lines += ["", f"{'ALL CHECKS PASSED' if report.passed else 'SOME CHECKS FAILED'} "
                  f"in {report.wall_s:.1f} s"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true",
                    help="the same code on the CPU with a toy model and toy sizes (< 60 s)")
    ap.add_argument("--out", type=Path, default=Path("runs/gpu_check.json"),
                    help="where the JSON report goes")
    ap.add_argument("--device", default="cuda", help="the CUDA device (ignored by --dry-run)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="where the checkpoint is written (default: a temporary directory, "
                         "removed at the end); needs about 21 GiB for the 1.5B model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume-loss-tol", type=float, default=0.0,
                    help="accepted |loss difference| of the step after a resume (0: exact)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every part, print the table, write the report; 0 when every check passed."""
    args = parse_args(argv)
    t_start = time.perf_counter()
    if args.dry_run:
        device, sizes, arch = "cpu", DRY, ARCH_TOY
    else:
        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); "
                  "run `python reproduce/gpu_check.py --dry-run` for the CPU code path",
                  file=sys.stderr)
            return 2
        device, sizes, arch = args.device, FULL, ARCH_1P5B
    cuda = device.startswith("cuda")
    tree_cfg = train_config(sizes, "deepsearch", device, args.seed)
    task = make_task(tree_cfg)
    model = build_model(arch, task.tokenizer, device, args.seed)
    report = Report(
        command="python " + shlex.join(["reproduce/gpu_check.py", *(argv or sys.argv[1:])]),
        dry_run=args.dry_run, device=device,
        device_name=torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        versions={"python": platform.python_version(), "torch": torch.__version__,
                  "transformers": transformers.__version__,
                  "cuda": str(torch.version.cuda)},
        model={"arch": arch, "parameters": sum(p.numel() for p in model.parameters()),
               "tokenizer_vocab": len(task.tokenizer)},
        sizes=asdict(sizes),
        memory_kind="torch.cuda.max_memory_allocated" if cuda else
        "ru_maxrss (CPU: the process's peak resident size, not per phase)")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    try:
        report.checks += backend_checks(model, task, sizes, Tolerances())
        tree = Trainer(tree_cfg, work / "deepsearch", model=model, task=task, progress=False)
        report.steps["deepsearch"] = measure_step(tree)
        del tree
        model.zero_grad(set_to_none=True)
        free_memory()
        flat_cfg = train_config(sizes, "grpo", device, args.seed)
        flat = Trainer(flat_cfg, work / "grpo", model=model, task=task, progress=False)
        report.steps["grpo"] = measure_step(flat)
        box = [flat]
        del model, flat  # the box holds the last reference (check_resume frees it)
        report.checks.append(check_resume(box, task, args.resume_loss_tol, report.checkpoint))
        report.projection = project(report.steps["deepsearch"])
    except Exception as err:  # report what ran; the error is the finding (e.g. out of memory)
        report.error = f"{type(err).__name__}: {err}"
        traceback.print_exc()
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report.passed = report.error is None and all(c.passed for c in report.checks)
    report.wall_s = time.perf_counter() - t_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    print(summary(report))
    print(f"report: {args.out}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
