"""The paper's Table 1 harness: avg@k of a model on the six math benchmarks, resumable.

The protocol (docs/paper-notes.md#evaluation): k = 32 samples per problem, temperature 0.6, top-p
0.95, graded by ``verify.check`` (injectable). :func:`run_eval` loads the model (``dslib.build``)
and calls :func:`evaluate_math`, which writes, in the output directory:

| file            | content                                                               |
|-----------------|-----------------------------------------------------------------------|
| ``config.json`` | the checked evaluation config (a re-run with another one is refused)  |
| ``results.jsonl``| one record per problem, appended as soon as its batch is graded      |
| ``table.json``  | avg@k per benchmark next to the paper's Table 1 rows                  |
|                 | (docs/paper-notes.md#table-1)                                         |
| ``table.md``    | the same as Markdown                                                  |

A re-run with the same directory skips the problems already in ``results.jsonl``. The command
is ``dslib eval`` (:mod:`dslib.cli`). avg@k itself is :mod:`dslib.evaluate`'s arithmetic.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dslib.build import eval_policy
from dslib.evaluate import pass_at_k
from dslib.files import atomic_write, atomic_write_json
from dslib.policy.base import Policy
from dslib.progress import progress_bar
from dslib.tasks import math as math_task
from dslib.verify import Verdict

#: The paper's evaluation protocol (docs/paper-notes.md#evaluation): n = 32 samples, temperature
#: 0.6, top-p 0.95.
MATH_K = 32
MATH_TEMPERATURE = 0.6
MATH_TOP_P = 0.95
#: Eval budget is not stated in the paper; the repo README and HF card use max_tokens=32768
#: (training used 16,384), docs/paper-notes.md#evaluation.
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
        atomic_write(path, "".join(x + "\n" for x in good))
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
    atomic_write_json(cfg_file, config, indent=2)
    return read_results(res_file)


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
    """avg@k (mean of c/k over problems, docs/paper-notes.md#evaluation) and diagnostics of one
    benchmark."""
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
    """The JSON table: this run's per-benchmark avg@k next to Table 1 of the paper
    (docs/paper-notes.md#table-1)."""
    k = config["k"]
    key = f"avg@{k}"
    percents = {b: 100.0 * s[key] for b, s in per_bench.items()}
    # Avg = unweighted mean of the six (docs/paper-notes.md#evaluation); over fewer sets it is
    # marked partial.
    avg = sum(percents.values()) / len(percents) if percents else float("nan")
    sizes = math_task.BENCHMARK_SIZES
    partial = [b for b, s in per_bench.items() if s["problems"] < sizes.get(b, s["problems"])]
    return {
        "label": label,
        "metric": key,
        "config": config,
        "benchmarks": {
            b: {"column": math_task.BENCHMARKS.get(b, b), **s, "percent": percents[b]}
            for b, s in per_bench.items()
        },
        "average_percent": avg,
        "average_over": list(per_bench),
        "complete_six": set(per_bench) == set(math_task.BENCHMARKS) and not partial,
        "partial_benchmarks": partial,
        "paper_table1": {
            "source": "arXiv 2509.25454 Table 1, Pass1@1 with n=32 (docs/paper-notes.md#table-1)",
            "columns": list(math_task.TABLE1_COLUMNS),
            "rows": {name: list(vals) for name, vals in math_task.PAPER_TABLE1},
        },
    }


def table_markdown(table: dict[str, Any]) -> str:
    """Markdown of :func:`math_table`: the Table 1 layout, then per-benchmark diagnostics."""
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
    lines += ["", "| Model | " + " | ".join(math_task.TABLE1_COLUMNS) + " |",
              "|---" * (len(math_task.TABLE1_COLUMNS) + 1) + "|"]
    for name, vals in math_task.PAPER_TABLE1:
        cells = " | ".join(f"{v:.2f}" for v in vals)
        name = f"**{name}**" if name == "DeepSearch-1.5B" else name
        lines.append(f"| {name} | {cells} |")
    ours = [
        f"{benches[b]['percent']:.2f}" if b in benches else "-" for b in math_task.BENCHMARKS
    ] + [f"{table['average_percent']:.2f}" if benches else "-"]
    lines.append(f"| this run: `{table['label']}` ({key}) | " + " | ".join(ours) + " |")
    lines += [
        "",
        "Paper rows: Table 1 of arXiv 2509.25454 (Pass1@1 estimated with n = 32), verbatim "
        "from docs/paper-notes.md#table-1.",
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
    """avg@k of ``policy`` on math problem sets (docs/paper-notes.md#evaluation), resumable; returns
    the table.

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
    atomic_write_json(out / TABLE_JSON, table, indent=2)
    atomic_write(out / TABLE_MD, table_markdown(table))
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
    reseed = getattr(policy, "seed", None)
    if callable(reseed):
        reseed(seed)
    prompts = [math_task.prompt_ids(tokenizer, p, max_prompt_tokens) for p in problems]
    segs = policy.sample(prompts, k, max_new_tokens, temperature=temperature, top_p=top_p)
    records = []
    for p, samples in zip(problems, segs, strict=True):
        texts = [tokenizer.decode(list(s.token_ids), skip_special_tokens=True) for s in samples]
        records.append(grade_problem(p, texts, samples, grade, save_responses))
    return records




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
    """Evaluate ``model`` on the benchmarks (the protocol of docs/paper-notes.md#evaluation) and
    write the tables.

    ``benchmarks``: names, a comma list or "all"; ``data_dir``: the folder of benchmark files
    (default ``tasks.math.default_data_dir()``); ``limit``: the first problems of each set.
    Data and grader are checked before the model loads, so those errors come fast. Returns the
    table dict (also in ``out_dir/table.json``, Markdown in ``table.md``).
    """
    names = math_task.benchmark_names(benchmarks)
    sets = {b: math_task.load_benchmark(b, data_dir, limit=limit) for b in names}
    require_grader(grader)
    policy, tokenizer, fingerprint, label = eval_policy(model, backend, seed, device)
    return evaluate_math(
        policy, tokenizer, sets, out_dir, k=k, temperature=temperature, top_p=top_p,
        max_new_tokens=max_new_tokens, grader=grader, fingerprint=fingerprint, label=label,
        seed=seed, batch_problems=batch_problems, max_prompt_tokens=max_prompt_tokens,
        overwrite=overwrite, progress=progress, save_responses=save_responses,
    )

