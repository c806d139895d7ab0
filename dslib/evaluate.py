"""pass@k and avg@k of a policy on a list of problems.

For each problem we draw ``n`` samples and count the ``c`` correct ones. Then

* avg@n (the paper's "Pass1@1 estimated with n samples", reference §7) = mean over problems of c/n;
* pass@k, the unbiased estimator of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)``, averaged
  over problems (k <= n).

The per-problem counts are kept, so callers can also ask for the share of problems whose success
rate is at most a threshold (the "plateau" share: problems where flat GRPO sees no signal).

Math benchmarks (second half of this module): :func:`run_eval` / :func:`evaluate_math` compute
avg@k on the six sets of Table 1 with the paper's protocol (reference §7: k = 32, temperature
0.6, top-p 0.95), grade with ``verify.check`` (injectable), write ``results.jsonl`` per problem
(resumable) and ``table.json`` / ``table.md`` next to the paper's rows (reference §9.1).
``add_eval_arguments`` / ``main_eval`` are the ``dslib eval`` command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dslib.policy.base import Policy
from dslib.progress import progress_bar
from dslib.verify import Verdict


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` correct out of ``n`` samples."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass
class EvalResult:
    """Per-problem correct counts plus the aggregate metrics."""

    n_samples: int
    correct: list[int]
    answered: list[int]
    ids: list[str] = field(default_factory=list)
    ks: tuple[int, ...] = (1,)

    @property
    def pass_at(self) -> dict[int, float]:
        """pass@k averaged over problems, for each requested k."""
        return {
            k: sum(pass_at_k(self.n_samples, c, k) for c in self.correct)
            / max(1, len(self.correct))
            for k in self.ks
        }

    @property
    def avg_at_n(self) -> float:
        """Mean success rate over all samples (avg@n)."""
        return sum(self.correct) / max(1, self.n_samples * len(self.correct))

    @property
    def answer_rate(self) -> float:
        """Share of samples that contained a final answer (format validity)."""
        return sum(self.answered) / max(1, self.n_samples * len(self.answered))

    def share_at_most(self, rate: float) -> float:
        """Share of problems whose success rate c/n is <= ``rate``."""
        if not self.correct:
            return 0.0
        return sum(c / self.n_samples <= rate + 1e-12 for c in self.correct) / len(self.correct)

    def to_dict(self) -> dict[str, Any]:
        return {
            "problems": len(self.correct), "n_samples": self.n_samples,
            "avg@n": self.avg_at_n, **{f"pass@{k}": v for k, v in self.pass_at.items()},
            "answer_rate": self.answer_rate, "correct": self.correct, "ids": self.ids,
        }


def evaluate(
    policy: Policy,
    items: Sequence[Any],
    verifier: Callable[[Any, list[int]], Verdict],
    n_samples: int = 8,
    ks: Sequence[int] = (1,),
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_problems: int = 64,
    progress: bool = True,
    desc: str = "eval",
) -> EvalResult:
    """Sample ``n_samples`` responses per item (anything with ``prompt_ids``) and verify them.

    Problems are processed ``batch_problems`` at a time, each batch in one ``policy.sample`` call.
    """
    if any(k > n_samples for k in ks):
        raise ValueError(f"every k must be <= n_samples={n_samples}, got ks={tuple(ks)}")
    correct: list[int] = []
    answered: list[int] = []
    starts = range(0, len(items), batch_problems)
    bar = progress_bar(enabled=progress, total=len(items), desc=desc, leave=False)
    for s in starts:
        chunk = items[s : s + batch_problems]
        segs = policy.sample(
            [it.prompt_ids for it in chunk], n_samples, max_new_tokens,
            temperature=temperature, top_p=top_p,
        )
        for it, samples in zip(chunk, segs):
            verdicts = [verifier(it, seg.token_ids) for seg in samples]
            correct.append(sum(v.correct for v in verdicts))
            answered.append(sum(v.has_answer for v in verdicts))
        bar.update(len(chunk))
    bar.close()
    ids = [str(getattr(it, "id", i)) for i, it in enumerate(items)]
    return EvalResult(n_samples, correct, answered, ids, tuple(ks))


# ============================================================================================
# Math benchmarks: avg@k of a model on the six sets of Table 1 (reference §7), resumable
# ============================================================================================

#: The paper's evaluation protocol (reference §7): n = 32 samples, temperature 0.6, top-p 0.95.
MATH_K = 32
MATH_TEMPERATURE = 0.6
MATH_TOP_P = 0.95
#: Eval budget is not stated in the paper; the repo README and HF card use max_tokens=32768
#: (training used 16,384), reference §7.
MATH_MAX_NEW_TOKENS = 32768

RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "config.json"
TABLE_JSON = "table.json"
TABLE_MD = "table.md"

#: Config fields that must match for a re-run to append to an existing output directory.
CHECKED_KEYS = (
    "model", "k", "temperature", "top_p", "max_new_tokens", "max_prompt_tokens",
    "instruction_suffix", "grader",
)


class EvalConfigMismatch(ValueError):
    """An output directory holds results of a different evaluation config."""


def grader_name(grader: Callable[..., Any] | None) -> str:
    """A stable name for the grader (part of the checked config; never an object address)."""
    if grader is None:
        return "dslib.verify.check"
    fn = getattr(grader, "func", grader)  # functools.partial: name the wrapped function
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{getattr(fn, '__module__', None) or type(fn).__module__}.{name}"


def config_mismatches(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: saved -> current`` for every checked key that differs."""
    return [
        f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
        for key in CHECKED_KEYS if saved.get(key) != current.get(key)
    ]


def read_results(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Records of ``results.jsonl`` keyed by (benchmark, id); later lines win.

    A line cut short by a kill is dropped (its problem is simply evaluated again) and the file is
    rewritten without it, so the next append does not glue a record onto the fragment.
    """
    if not path.exists():
        return {}
    done: dict[tuple[str, str], dict[str, Any]] = {}
    good: list[str] = []
    torn = 0
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            done[(rec["benchmark"], rec["id"])] = rec
            good.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            torn += line.strip() != ""
    if torn or (text and not text.endswith("\n")):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(x + "\n" for x in good), encoding="utf-8")
        os.replace(tmp, path)
        if torn:
            warnings.warn(f"{path}: dropped {torn} unreadable line(s); those problems run again",
                          stacklevel=2)
    return done


def prepare_out_dir(
    out_dir: Path, config: dict[str, Any], overwrite: bool
) -> dict[tuple[str, str], dict[str, Any]]:
    """Create/check the output directory; return the records already there (resume).

    A directory written with a different checked config raises :class:`EvalConfigMismatch`
    unless ``overwrite`` (which deletes its results first).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_file, res_file = out_dir / CONFIG_FILE, out_dir / RESULTS_FILE
    if overwrite:
        for name in (RESULTS_FILE, CONFIG_FILE, TABLE_JSON, TABLE_MD):
            (out_dir / name).unlink(missing_ok=True)
    if cfg_file.exists():
        saved = json.loads(cfg_file.read_text())
        diff = config_mismatches(saved, config)
        if diff:
            raise EvalConfigMismatch(
                f"{out_dir} holds results of another evaluation config ({'; '.join(diff)}). "
                "Use another output directory, or overwrite=True / --overwrite to start again."
            )
    elif res_file.exists() and res_file.stat().st_size:
        raise EvalConfigMismatch(
            f"{res_file} exists without {CONFIG_FILE}: cannot tell which config made it "
            "(use --overwrite or another output directory)"
        )
    _write_atomic(cfg_file, json.dumps(config, indent=2) + "\n")
    return read_results(res_file)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def batch_seed(seed: int, benchmark: str, start: int) -> int:
    """Sampling seed of one batch: a resumed run draws what an uninterrupted one would have."""
    digest = hashlib.sha256(f"{seed}:{benchmark}:{start}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def grade_problem(
    problem: Any,
    texts: Sequence[str],
    segments: Sequence[Any],
    grader: Callable[[str, str], Verdict],
    save_responses: bool = False,
) -> dict[str, Any]:
    """The JSONL record of one problem: per-sample verdicts and the counts avg@k needs.

    A grader exception is recorded as an incorrect ``grader_error`` sample (a long evaluation
    must not die on one odd response) and counted in the table, so a broken grader shows.
    """
    samples = []
    for text, seg in zip(texts, segments, strict=True):
        try:
            v = grader(text, problem.answer)
            sample = {"correct": bool(v.correct), "extracted": v.extracted, "reason": v.reason}
        except Exception as err:  # recorded, see the docstring
            sample = {"correct": False, "extracted": None, "reason": "grader_error",
                      "error": f"{type(err).__name__}: {err}"[:300]}
        sample["tokens"] = len(seg.token_ids)
        sample["finished"] = bool(seg.finished)
        samples.append(sample)
    rec: dict[str, Any] = {
        "benchmark": problem.source, "id": problem.id, "answer": problem.answer,
        "k": len(samples), "correct": sum(s["correct"] for s in samples),
        "answered": sum(s["reason"] != "no_answer" for s in samples), "samples": samples,
    }
    if save_responses:
        rec["responses"] = list(texts)
    return rec


def benchmark_stats(records: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    """avg@k (mean of c/k over problems, reference §7) and diagnostics of one benchmark."""
    n = len(records)
    samples = [s for r in records for s in r["samples"]]
    total = max(1, n * k)
    correct = sum(r["correct"] for r in records)
    return {
        "problems": n,
        "samples": len(samples),
        "correct": correct,
        f"avg@{k}": correct / total,
        f"pass@{k}": sum(pass_at_k(k, r["correct"], k) for r in records) / max(1, n),
        "answer_rate": sum(r["answered"] for r in records) / total,
        "truncated_rate": sum(not s["finished"] for s in samples) / max(1, len(samples)),
        "mean_response_tokens": sum(s["tokens"] for s in samples) / max(1, len(samples)),
        "grader_errors": sum(s["reason"] == "grader_error" for s in samples),
    }


def math_table(
    per_bench: dict[str, dict[str, Any]], config: dict[str, Any], label: str
) -> dict[str, Any]:
    """The JSON table: this run's per-benchmark avg@k next to Table 1 of the paper (§9.1)."""
    from dslib.tasks.math import BENCHMARK_SIZES, BENCHMARKS, PAPER_TABLE1, TABLE1_COLUMNS

    k = config["k"]
    key = f"avg@{k}"
    percents = {b: 100.0 * s[key] for b, s in per_bench.items()}
    # Avg = unweighted mean of the six (reference §7); over fewer sets it is marked partial.
    avg = sum(percents.values()) / len(percents) if percents else float("nan")
    partial = [
        b for b, s in per_bench.items() if s["problems"] < BENCHMARK_SIZES.get(b, s["problems"])
    ]
    return {
        "label": label,
        "metric": key,
        "config": config,
        "benchmarks": {
            b: {"column": BENCHMARKS.get(b, b), **s, "percent": percents[b]}
            for b, s in per_bench.items()
        },
        "average_percent": avg,
        "average_over": list(per_bench),
        "complete_six": set(per_bench) == set(BENCHMARKS) and not partial,
        "partial_benchmarks": partial,
        "paper_table1": {
            "source": "arXiv 2509.25454 Table 1, Pass1@1 with n=32 (reference §9.1)",
            "columns": list(TABLE1_COLUMNS),
            "rows": {name: list(vals) for name, vals in PAPER_TABLE1},
        },
    }


def table_markdown(table: dict[str, Any]) -> str:
    """Markdown of :func:`math_table`: the Table 1 layout, then per-benchmark diagnostics."""
    from dslib.tasks.math import BENCHMARKS, PAPER_TABLE1, TABLE1_COLUMNS

    cfg, key, benches = table["config"], table["metric"], table["benchmarks"]
    k = cfg["k"]
    lines = [
        f"## {key} of `{table['label']}` on the math benchmarks",
        "",
        f"k = {k} samples per problem, temperature {cfg['temperature']}, top-p {cfg['top_p']}, "
        f"max_new_tokens {cfg['max_new_tokens']}, grader `{cfg['grader']}`.",
    ]
    if not table["complete_six"]:
        lines.append(
            "Partial run (a subset of the problems or benchmarks): not comparable with the "
            "paper's numbers. Avg = mean over the benchmarks evaluated."
        )
    lines += ["", "| Model | " + " | ".join(TABLE1_COLUMNS) + " |",
              "|---" * (len(TABLE1_COLUMNS) + 1) + "|"]
    for name, vals in PAPER_TABLE1:
        cells = " | ".join(f"{v:.2f}" for v in vals)
        name = f"**{name}**" if name == "DeepSearch-1.5B" else name
        lines.append(f"| {name} | {cells} |")
    ours = [
        f"{benches[b]['percent']:.2f}" if b in benches else "-" for b in BENCHMARKS
    ] + [f"{table['average_percent']:.2f}" if benches else "-"]
    lines.append(f"| this run: `{table['label']}` ({key}) | " + " | ".join(ours) + " |")
    lines += [
        "",
        "Paper rows: Table 1 of arXiv 2509.25454 (Pass1@1 estimated with n = 32), verbatim "
        "from reference §9.1.",
        "",
        f"| benchmark | problems | samples | correct | {key} (%) | pass@{k} (%) | answered (%) "
        "| truncated (%) | mean tokens | grader errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b, s in benches.items():
        lines.append(
            f"| {b} | {s['problems']} | {s['samples']} | {s['correct']} | {s['percent']:.2f} "
            f"| {100 * s[f'pass@{k}']:.2f} | {100 * s['answer_rate']:.1f} "
            f"| {100 * s['truncated_rate']:.1f} | {s['mean_response_tokens']:.1f} "
            f"| {s['grader_errors']} |"
        )
    return "\n".join(lines) + "\n"


def require_grader(grader: Callable[[str, str], Verdict] | None) -> None:
    """Fail before any sampling when the default grader ``verify.check`` is missing."""
    if grader is None:
        from dslib import verify as verify_mod

        if not hasattr(verify_mod, "check"):
            raise RuntimeError(
                "the default grader dslib.verify.check is not available in this build "
                "(pass grader= to run_eval/evaluate_math)"
            )


def evaluate_math(
    policy: Policy,
    tokenizer: Any,
    sets: dict[str, Sequence[Any]],
    out_dir: str | Path,
    *,
    k: int = MATH_K,
    temperature: float = MATH_TEMPERATURE,
    top_p: float = MATH_TOP_P,
    max_new_tokens: int = MATH_MAX_NEW_TOKENS,
    grader: Callable[[str, str], Verdict] | None = None,
    fingerprint: dict[str, Any] | None = None,
    label: str = "model",
    seed: int = 0,
    batch_problems: int = 8,
    max_prompt_tokens: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    save_responses: bool = False,
) -> dict[str, Any]:
    """avg@k of ``policy`` on math problem sets (reference §7), resumable; returns the table.

    ``sets`` maps a benchmark name to its :class:`~dslib.tasks.math.MathProblem` list. Each
    batch of ``batch_problems`` problems is ONE ``policy.sample`` call with ``k`` samples per
    prompt (chat template + the released instruction suffix, ``tasks.math.prompt_ids``). The
    decoded responses are graded by ``grader(response, gold)`` (default ``verify.check``).

    Output directory: ``config.json`` (the checked config), ``results.jsonl`` (one record per
    problem, appended as soon as its batch is graded), ``table.json`` and ``table.md``. A
    re-run with the same directory skips the problems already in ``results.jsonl``; batches sit
    at fixed positions and each is sampled with :func:`batch_seed` (when the policy has a
    ``seed(int)`` method), so a run killed between batches and resumed gives the same table as
    an uninterrupted one.
    """
    from dslib.tasks import math as math_task

    if k < 1 or max_new_tokens < 1 or batch_problems < 1:
        raise ValueError(f"need k, max_new_tokens, batch_problems >= 1 (got {k}, "
                         f"{max_new_tokens}, {batch_problems})")
    grade = grader or math_task.default_grader
    require_grader(grader)
    out = Path(out_dir)
    config = {
        "model": (fingerprint or {}).get("digest", label),
        "k": k, "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
        "max_prompt_tokens": max_prompt_tokens,
        "instruction_suffix": math_task.INSTRUCTION_SUFFIX, "grader": grader_name(grader),
        "seed": seed, "batch_problems": batch_problems, "fingerprint": fingerprint or {},
    }
    done = prepare_out_dir(out, config, overwrite)
    total = sum(len(s) for s in sets.values())
    already = sum((b, p.id) in done for b, s in sets.items() for p in s)
    bar = progress_bar(
        enabled=progress, total=total, initial=already, unit="problem", dynamic_ncols=True
    )
    try:
        with open(out / RESULTS_FILE, "a", encoding="utf-8") as fh:
            for bench, problems in sets.items():
                bar.set_description(bench)
                for start in range(0, len(problems), batch_problems):
                    todo = [p for p in problems[start : start + batch_problems]
                            if (bench, p.id) not in done]
                    if not todo:
                        continue
                    records = _run_batch(
                        policy, tokenizer, todo, k, max_new_tokens, temperature, top_p,
                        grade, batch_seed(seed, bench, start), max_prompt_tokens, save_responses,
                    )
                    for rec in records:
                        rec["benchmark"] = bench
                        fh.write(json.dumps(rec) + "\n")
                        done[(bench, rec["id"])] = rec
                    fh.flush()  # a kill loses at most the batch being sampled
                    bar.update(len(todo))
    finally:
        bar.close()
    per_bench = {
        b: benchmark_stats([done[(b, p.id)] for p in s], k) for b, s in sets.items() if len(s)
    }
    table = math_table(per_bench, config, label)
    _write_atomic(out / TABLE_JSON, json.dumps(table, indent=2) + "\n")
    _write_atomic(out / TABLE_MD, table_markdown(table))
    errors = sum(s["grader_errors"] for s in per_bench.values())
    if errors:
        warnings.warn(f"the grader raised on {errors} sample(s); see 'error' in {RESULTS_FILE}",
                      stacklevel=2)
    return table


def _run_batch(
    policy: Policy, tokenizer: Any, problems: Sequence[Any], k: int, max_new_tokens: int,
    temperature: float, top_p: float, grade: Callable[[str, str], Verdict], seed: int,
    max_prompt_tokens: int | None, save_responses: bool,
) -> list[dict[str, Any]]:
    """Sample k responses for each problem in ONE policy call, decode and grade them."""
    from dslib.tasks.math import prompt_ids

    reseed = getattr(policy, "seed", None)
    if callable(reseed):
        reseed(seed)
    prompts = [prompt_ids(tokenizer, p, max_prompt_tokens) for p in problems]
    segs = policy.sample(prompts, k, max_new_tokens, temperature=temperature, top_p=top_p)
    records = []
    for p, samples in zip(problems, segs, strict=True):
        texts = [tokenizer.decode(list(s.token_ids), skip_special_tokens=True) for s in samples]
        records.append(grade_problem(p, texts, samples, grade, save_responses))
    return records


# ----------------------------------------------------------------------------- models


#: Files that identify a checkpoint's behaviour (weights, config, tokenizer, chat template).
_FINGERPRINT_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "chat_template.jinja",
)


def model_fingerprint(model: str | Path) -> dict[str, Any]:
    """``{"name", "path", "digest"}``: a local checkpoint's files hashed, or a hub revision.

    Local directory: SHA-256 over the config, tokenizer, chat template and weight files (a few
    seconds for a 1.5B model). Hub name: ``hub:<name>@<commit>`` from its config (a small
    download), so a moved branch is noticed.
    """
    path = Path(model)
    if path.is_dir():
        h = hashlib.sha256()
        weights = (".safetensors", ".bin")
        files = sorted(
            f for f in path.iterdir()
            if f.is_file() and (f.name in _FINGERPRINT_FILES or f.suffix in weights)
        )
        for f in files:
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
        digest = f"sha256:{h.hexdigest()}"
        return {"name": str(model), "path": str(path.resolve()), "digest": digest}
    from transformers import AutoConfig

    commit = getattr(AutoConfig.from_pretrained(str(model)), "_commit_hash", None)
    return {"name": str(model), "path": None, "digest": f"hub:{model}@{commit}"}


def load_eval_model(
    model: str | Path, backend: str = "hf", seed: int = 0, device: str = "auto"
) -> tuple[Policy, Any, dict[str, Any], str]:
    """(policy, tokenizer, fingerprint, label) for ``model``: "tiny", a directory or a hub name.

    ``"tiny"`` is the cached tiny reasoner (``dslib.tiny.build()``; a countdown model, so math
    scores are ~0: it exercises the pipeline). The ``hf`` backend loads fp32 weights on
    ``device`` ("auto" = CUDA when available) with the cross-call prefix cache off (evaluation
    never revisits a prefix). It keeps the whole batch's KV cache (``batch_problems * k`` rows,
    ~56 KiB per token for a 1.5B Qwen2 in fp32), so the paper's budget (32 x 32k tokens per
    problem) needs ``backend="vllm"``; ``hf`` suits the tiny model and short budgets.
    """
    label = str(model)
    if str(model) == "tiny":
        from dslib import tiny

        model = tiny.build(progress=False).path
    fingerprint = {**model_fingerprint(model), "name": label}
    if backend == "vllm":
        try:
            from dslib.policy.vllm import VLLMPolicy

            policy = VLLMPolicy.from_pretrained(str(model), seed=seed)
        except ImportError as err:  # vLLM not installed: its install hint, as a clear error
            raise ValueError(f"backend 'vllm' is not available: {err}") from err
    elif backend == "hf":
        import torch

        from dslib.policy.hf import HFPolicy, load_causal_lm

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        lm = load_causal_lm(model).to(device)
        eos = lm.generation_config.eos_token_id
        eos = eos[0] if isinstance(eos, list) else eos
        if eos is None:
            raise ValueError(f"{model}: generation_config has no eos_token_id")
        policy = HFPolicy(lm, eos_token_id=eos, pad_token_id=lm.generation_config.pad_token_id,
                          seed=seed, prefix_cache_tokens=0)
    else:
        raise ValueError(f"unknown backend {backend!r}; choose 'hf' or 'vllm'")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    return policy, tokenizer, fingerprint, label


def run_eval(
    model: str | Path,
    benchmarks: str | Sequence[str] = "all",
    data_dir: str | Path | None = None,
    out_dir: str | Path = "runs/eval",
    k: int = MATH_K,
    temperature: float = MATH_TEMPERATURE,
    top_p: float = MATH_TOP_P,
    max_new_tokens: int = MATH_MAX_NEW_TOKENS,
    limit: int | None = None,
    seed: int = 0,
    backend: str = "hf",
    overwrite: bool = False,
    *,
    grader: Callable[[str, str], Verdict] | None = None,
    batch_problems: int = 8,
    max_prompt_tokens: int | None = None,
    device: str = "auto",
    progress: bool = True,
    save_responses: bool = False,
) -> dict[str, Any]:
    """Evaluate ``model`` on the benchmarks (reference §7 protocol) and write the tables.

    ``benchmarks``: names, a comma list or "all"; ``data_dir``: the folder of benchmark files
    (default ``tasks.math.default_data_dir()``); ``limit``: the first problems of each set.
    Data and grader are checked before the model loads, so those errors come fast. Returns the
    table dict (also in ``out_dir/table.json``, Markdown in ``table.md``).
    """
    from dslib.tasks.math import benchmark_names, load_benchmark

    names = benchmark_names(benchmarks)
    sets = {b: load_benchmark(b, data_dir, limit=limit) for b in names}
    require_grader(grader)
    policy, tokenizer, fingerprint, label = load_eval_model(model, backend, seed, device)
    return evaluate_math(
        policy, tokenizer, sets, out_dir, k=k, temperature=temperature, top_p=top_p,
        max_new_tokens=max_new_tokens, grader=grader, fingerprint=fingerprint, label=label,
        seed=seed, batch_problems=batch_problems, max_prompt_tokens=max_prompt_tokens,
        overwrite=overwrite, progress=progress, save_responses=save_responses,
    )


# ----------------------------------------------------------------------------- CLI


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``dslib eval`` options (defaults = the paper's protocol, reference §7)."""
    parser.add_argument("--model", default="tiny",
                        help='"tiny" (the cached tiny reasoner), a checkpoint dir or a hub name')
    parser.add_argument("--benchmarks", default="all",
                        help="comma list of aime24,aime25,amc23,math500,minerva_math,"
                             "olympiadbench, or all")
    parser.add_argument("--data-dir", default=None,
                        help="folder with <benchmark>.jsonl files (default: $DSLIB_BENCHMARKS "
                             "or ../shared/data/benchmarks when present)")
    parser.add_argument("--out", default=None,
                        help="output dir (default runs/eval-<model name>); re-running resumes")
    parser.add_argument("--k", type=int, default=MATH_K, help="samples per problem (avg@k)")
    parser.add_argument("--temperature", type=float, default=MATH_TEMPERATURE)
    parser.add_argument("--top-p", type=float, default=MATH_TOP_P)
    parser.add_argument("--max-new-tokens", type=int, default=MATH_MAX_NEW_TOKENS)
    parser.add_argument("--max-prompt-tokens", type=int, default=None,
                        help="keep the last N prompt tokens (the released run used 2048)")
    parser.add_argument("--limit", type=int, default=None, help="first N problems per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--device", default="auto", help='"auto", "cpu", "cuda", ...')
    parser.add_argument("--batch-problems", type=int, default=8,
                        help="problems per policy.sample call (k samples each)")
    parser.add_argument("--save-responses", action="store_true",
                        help="also store the decoded responses in results.jsonl")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard results of a different config in --out")
    return parser


def main_eval(args: argparse.Namespace) -> int:
    """Run :func:`run_eval` from parsed ``dslib eval`` arguments; print the Markdown table."""
    out = args.out or f"runs/eval-{Path(str(args.model)).name}"
    t0 = time.perf_counter()
    try:
        table = run_eval(
            args.model, args.benchmarks, args.data_dir, out, k=args.k,
            temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
            limit=args.limit, seed=args.seed, backend=args.backend, overwrite=args.overwrite,
            batch_problems=args.batch_problems, max_prompt_tokens=args.max_prompt_tokens,
            device=args.device, save_responses=args.save_responses,
        )
    except (FileNotFoundError, ImportError, ValueError, RuntimeError) as err:
        raise SystemExit(str(err)) from None
    print(table_markdown(table))
    print(f"wrote {out}/{TABLE_MD}, {TABLE_JSON}, {RESULTS_FILE}  "
          f"({time.perf_counter() - t0:.0f} s this call)")
    return 0
