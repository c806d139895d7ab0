"""Table 3 in miniature: tree-search variants vs flat sampling at an equal token budget.

What it measures (docs/paper-notes.md#table-3, the paper's search-strategy ablation, here on the
tiny countdown reasoner's hard split instead of 1.2K "extremely hard" DeepMath problems):

| row | method                                                      | SearchConfig.tiny(...)   |
|-----|-------------------------------------------------------------|--------------------------|
| (a) | flat sampling: k independent 64-token responses per problem | (none)                   |
| (b) | vanilla UCT backtrace (one UCT step below the root)         | backtrace="uct"          |
| (c) | global frontier, lambda1=0.4, lambda3=0.01, sqrt (default)  | (defaults)               |
| (d) | depth bonus log(d+1) / linear d / entropy bonus lambda2=0.4 | depth_bonus / entropy_bonus |

All trees of a variant are searched in ONE ``search.run`` call (the driver's lock-step batching,
one ``policy.sample`` per iteration). Every tree stops at ``--trajectories`` recorded trajectories,
as the paper's rows all stop at terminate_num=8, so the variants spend different token budgets,
exactly what Table 3's "Num. Iter." and "Time/Tree" columns show.

Equal budget. The flat row gets the budget B of the default tree search (row c): its mean
sampled tokens per tree, or ``--budget-per-problem`` when given. How k is picked: a pilot call
draws one response per problem to measure the mean response length L; k = round(B / L); then
ONE timed call ``policy.sample(prompts, n=k, max_new_tokens=64)`` is row (a) (the pilot does not
count). The last column gives every tree row its own equal-budget flat reference: problems
solved by the first k_v = round(B_v / L) flat samples, B_v = that row's mean sampled tokens per
tree (extra flat samples are drawn when some k_v > k).

How to read the table:

- ``solved``: problems with >= 1 correct RECORDED trajectory (for flat: >= 1 correct sample);
- ``reward``: mean terminal score of the recorded trajectories (+1 / -1; flat: of the samples),
  Table 3's "Reward";
- ``depth`` / ``entropy``: mean leaf depth and mean sampled-token NLL of the trajectories
  (flat: ceil(length / step_tokens) and the response's mean NLL), Table 3's columns;
- ``iter/tree``, ``tokens/tree``, ``time/tree``: mean +- sd over trees (time: the driver's
  ``SearchStats.time_s``, each batched call's wall time split by forward tokens);
- ``fwd/tok``: forward tokens per sampled token. "cached" = what this backend ran, measured by
  its counters (``HFPolicy`` keeps a node's KV cache from the call that sampled it to the call
  that expands it, so only the uncached tail is pre-filled); "shared" = a backend that pre-fills
  each distinct prefix once per call but keeps nothing across calls; "re-prefill" = the
  official code, which re-prefills every one of the n copies (docs/paper-notes.md#termination:
  SGLang's prefix cache is flushed after every call);
- ``exh.``: share of trees that stopped before ``--trajectories`` (empty frontier / cap);
- ``flat@B_v``: problems solved by flat sampling at that row's own budget.

The throughput section compares sampled tokens per second of the batched tree search (row c)
with the flat call on the same backend, model and problems, and explains the gap from a
per-call log (rows, decode steps, pre-fill tokens) and a pre-fill probe (the logged calls re-issued
with one new token). ``--unbatched N`` also times N trees searched one at a time, to show what
the lock-step batching buys. Timings on a shared 2-core machine are noisy, and two torch threads
slow down badly when other processes compete for the cores: the output prints the load average;
``--threads 1`` is the robust choice there.

Command (default tiny reasoner, 32 hard problems; ~30 s on 2 idle cores, minutes on busy ones)::

    python reproduce/bench_search.py --json reproduce/results/bench_search.json

Smoke run (seconds, an under-trained throw-away model)::

    python reproduce/bench_search.py --quick --quick-model --cache-dir /tmp/dslib-bench-cache
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dslib import search, tiny
from dslib.config import SearchConfig
from dslib.policy.base import Segment, per_prefix_counts
from dslib.tasks import countdown
from dslib.tasks.base import Prompted, TokenVerifier, prompt_all

#: the under-trained reasoner of ``tests/conftest.py::quick_reasoner`` (seconds to build)
QUICK_MODEL = dataclasses.replace(tiny.TinyConfig(), sft_steps=60, problems_per_level=400)
#: flat responses get this many new tokens (the tiny reasoner's evaluation length)
FLAT_MAX_NEW_TOKENS = 64

#: (key, label, SearchConfig.tiny overrides); the flat row (a) is handled apart
VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("uct", "(b) vanilla UCT backtrace", {"backtrace": "uct"}),
    ("global", "(c) global frontier, sqrt(d/d_T) (default)", {}),
    ("log", "(d) depth bonus log(d+1)", {"depth_bonus": "log"}),
    ("linear", "(d) depth bonus d (linear)", {"depth_bonus": "linear"}),
    ("entropy", "(d) entropy bonus lambda2=0.4", {"entropy_bonus": True, "lambda2": 0.4}),
]
METHOD_KEYS = ["flat"] + [key for key, _, _ in VARIANTS]


# ----------------------------------------------------------------------------- call log


@dataclass
class CallRecord:
    """One ``policy.sample`` call as the backend ran it."""

    prefixes: int
    rows: int
    prefix_tokens: int
    """sum of the distinct prefixes' lengths (what a shared-prefix backend pre-fills)"""
    padded_prefix_tokens: int
    """prefixes x longest prefix (what the left-padded pre-fill actually computes)"""
    decode_steps: int
    """longest sampled segment: the decode loop's length"""
    sampled_tokens: int
    seconds: float
    requests: list[list[int]] = field(default_factory=list, repr=False)
    """the prefixes, kept to re-issue the call in the pre-fill probe"""
    counts: list[int] = field(default_factory=list, repr=False)
    max_new_tokens: int = 0
    computed_prefix_tokens: int | None = None
    """prefix tokens the backend actually ran through the model (its counters; None if it
    has none): below ``prefix_tokens`` when its cross-call prefix cache hit"""


@dataclass
class LoggedPolicy:
    """A :class:`~dslib.policy.base.Policy` that delegates and logs every call."""

    policy: Any
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def eos_token_id(self) -> int:
        return int(self.policy.eos_token_id)

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n: int | Sequence[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        **stop: Any,
    ) -> list[list[Segment]]:
        counts = per_prefix_counts(prefixes, n)
        counters = getattr(self.policy, "counters", None)
        before = counters["prefill_tokens"] if counters else None
        t0 = time.perf_counter()
        out = self.policy.sample(
            prefixes, n, max_new_tokens, temperature=temperature, top_p=top_p, **stop
        )
        seconds = time.perf_counter() - t0
        computed = counters["prefill_tokens"] - before if counters else None
        lens = [len(p) for p, k in zip(prefixes, counts) if k > 0]
        segs = [s for group in out for s in group]
        self.calls.append(CallRecord(
            prefixes=len(lens), rows=sum(counts), prefix_tokens=sum(lens),
            padded_prefix_tokens=len(lens) * max(lens, default=0),
            decode_steps=max((len(s.token_ids) for s in segs), default=0),
            sampled_tokens=sum(len(s.token_ids) for s in segs), seconds=seconds,
            requests=[list(p) for p in prefixes], counts=counts, max_new_tokens=max_new_tokens,
            computed_prefix_tokens=computed,
        ))
        return out

    def load_weights(self, state_dict: Any) -> None:
        self.policy.load_weights(state_dict)

    def seed(self, seed: int) -> None:
        self.policy.seed(seed)

    def take(self) -> list[CallRecord]:
        """The calls logged since the last ``take`` (and forget them)."""
        calls, self.calls = self.calls, []
        return calls


def call_summary(calls: Sequence[CallRecord]) -> dict[str, float]:
    """Per-call means and totals of a call log (what the throughput note quotes)."""
    n = max(1, len(calls))
    steps = sum(c.decode_steps for c in calls)
    row_steps = sum(c.rows * c.decode_steps for c in calls)
    sampled = sum(c.sampled_tokens for c in calls)
    seconds = sum(c.seconds for c in calls)
    return {
        "calls": len(calls),
        "rows_per_call": sum(c.rows for c in calls) / n,
        "decode_steps_per_call": steps / n,
        "sampled_tokens": sampled,
        "generate_seconds": seconds,
        "ms_per_call": 1000 * seconds / n,
        "ms_per_decode_step": 1000 * seconds / max(1, steps),
        "sampled_per_decode_step": sampled / max(1, steps),
        "row_utilisation": sampled / max(1, row_steps),
        "prefix_tokens": sum(c.prefix_tokens for c in calls),
        "prefill_share": sum(c.prefix_tokens for c in calls)
        / max(1, sum(c.prefix_tokens for c in calls) + sampled),
        "padded_prefill_tokens": sum(c.padded_prefix_tokens for c in calls),
        "computed_prefix_tokens": sum(
            c.prefix_tokens if c.computed_prefix_tokens is None else c.computed_prefix_tokens
            for c in calls
        ),
    }


# ----------------------------------------------------------------------------- helpers


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population sd (0, 0 for no values)."""
    if not values:
        return 0.0, 0.0
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def seed_everything(seed: int, policy: LoggedPolicy) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    policy.seed(seed)


def fmt_pm(values: Sequence[float], digits: int = 1) -> str:
    m, s = mean_sd(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}"


# ----------------------------------------------------------------------------- the rows


def tree_row(
    key: str,
    label: str,
    results: Sequence[search.SearchResult],
    wall_s: float,
    calls: Sequence[CallRecord],
) -> dict[str, Any]:
    """Table-3 metrics of one variant's trees."""
    trajs = [t for r in results for t in r.trajectories]
    stats = [r.stats for r in results]
    sampled = sum(s.sampled_tokens for s in stats)
    solved = sum(any(t.correct for t in r.trajectories) for r in results)
    return {
        "key": key,
        "name": label,
        "problems": len(results),
        "solved": solved,
        "solved_pct": 100.0 * solved / max(1, len(results)),
        "solved_any_leaf": sum(r.stats.n_correct > 0 for r in results),
        "mean_reward": mean_sd([t.score for t in trajs])[0],
        "trajectories": len(trajs),
        "depth": mean_sd([float(t.leaf.depth) for t in trajs])[0],
        "entropy": mean_sd([t.entropy for t in trajs])[0],
        "iterations": [s.iterations for s in stats],
        "sampled_tokens": [s.sampled_tokens for s in stats],
        "time_s": [s.time_s for s in stats],
        "fwd_per_sampled": sum(s.forward_tokens for s in stats) / max(1, sampled),
        "fwd_per_sampled_no_reuse": sum(s.forward_tokens_no_reuse for s in stats)
        / max(1, sampled),
        "fwd_per_sampled_backend": (call_summary(calls)["computed_prefix_tokens"] + sampled)
        / max(1, sampled),
        "exhausted": sum(r.exhausted for r in results) / max(1, len(results)),
        "wall_s": wall_s,
        "tokens_per_s": sampled / max(wall_s, 1e-9),
        "calls": call_summary(calls),
    }


def flat_row(
    items: Sequence[Prompted],
    samples: Sequence[Sequence[Segment]],
    verdicts: Sequence[Sequence[bool]],
    k: int,
    step_tokens: int,
    wall_s: float,
    calls: Sequence[CallRecord],
) -> dict[str, Any]:
    """The same metrics for k flat samples per problem (one call)."""
    lens = [[len(s.token_ids) for s in group[:k]] for group in samples]
    flat = [s for group in samples for s in group[:k]]
    scores = [1.0 if ok else -1.0 for group in verdicts for ok in group[:k]]
    solved = sum(any(group[:k]) for group in verdicts)
    sampled = sum(map(sum, lens))
    prompts = sum(len(it.prompt_ids) for it in items)
    return {
        "key": "flat",
        "name": f"(a) flat sampling, k={k}",
        "problems": len(items),
        "solved": solved,
        "solved_pct": 100.0 * solved / max(1, len(items)),
        "solved_any_leaf": solved,
        "mean_reward": mean_sd(scores)[0],
        "trajectories": len(flat),
        "depth": mean_sd([math.ceil(len(s.token_ids) / step_tokens) for s in flat])[0],
        "entropy": mean_sd([-statistics.fmean(s.logprobs) for s in flat if s.logprobs])[0],
        "iterations": [],
        "sampled_tokens": [sum(x) for x in lens],
        "time_s": [wall_s / max(1, len(items))] * len(items),
        "fwd_per_sampled": (prompts + sampled) / max(1, sampled),
        "fwd_per_sampled_no_reuse": (k * prompts + sampled) / max(1, sampled),
        "fwd_per_sampled_backend": (call_summary(calls)["computed_prefix_tokens"] + sampled)
        / max(1, sampled),
        "exhausted": 0.0,
        "wall_s": wall_s,
        "tokens_per_s": sampled / max(wall_s, 1e-9),
        "calls": call_summary(calls),
        "k": k,
    }


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        "| method | solved | reward | depth | entropy | iter/tree | tokens/tree | fwd/tok cached "
        "| fwd/tok shared | fwd/tok re-prefill | time/tree (s) | exh. | flat@B_v |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        iters = fmt_pm(r["iterations"]) if r["iterations"] else "-"
        lines.append(
            f"| {r['name']} | {r['solved']}/{r['problems']} ({r['solved_pct']:.0f}%) "
            f"| {r['mean_reward']:+.2f} | {r['depth']:.1f} | {r['entropy']:.2f} | {iters} "
            f"| {fmt_pm(r['sampled_tokens'], 0)} | {r['fwd_per_sampled_backend']:.2f} "
            f"| {r['fwd_per_sampled']:.2f} "
            f"| {r['fwd_per_sampled_no_reuse']:.2f} | {fmt_pm(r['time_s'], 2)} "
            f"| {100 * r['exhausted']:.0f}% | {r['flat_same_budget']} |"
        )
    return head + "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- throughput


def throughput_note(tree: dict[str, Any], flat: dict[str, Any], ratio: float) -> str:
    """A short, measured explanation of the tree-vs-flat throughput gap (either way)."""
    tc, fc = tree["calls"], flat["calls"]
    gen_share = tc["generate_seconds"] / max(tree["wall_s"], 1e-9)
    iters = tree["iterations"]
    occupancy = mean_sd(iters)[0] / max(1, max(iters, default=1))
    lines = [
        "tokens/s = (sampled tokens per decode step) / (time per decode step), per call log:",
        f"- tree search: {tc['calls']} calls, {tc['rows_per_call']:.0f} rows/call, "
        f"{tc['decode_steps_per_call']:.1f} decode steps/call, {tc['ms_per_call']:.0f} ms/call "
        f"= {tc['ms_per_decode_step']:.1f} ms per decode step (pre-fill included), "
        f"{tc['sampled_per_decode_step']:.0f} sampled tokens per decode step "
        f"(row utilisation {100 * tc['row_utilisation']:.0f}%).",
        f"- flat sampling: {fc['calls']} call(s), {fc['rows_per_call']:.0f} rows/call, "
        f"{fc['decode_steps_per_call']:.1f} decode steps/call "
        f"= {fc['ms_per_decode_step']:.1f} ms per decode step, "
        f"{fc['sampled_per_decode_step']:.0f} sampled tokens per decode step "
        f"(row utilisation {100 * fc['row_utilisation']:.0f}%).",
        "- against the tree search: every 8-token chunk is its own call; the backend's prefix "
        "cache spares re-computing the node's prefix (computed pre-fill "
        f"{tc['computed_prefix_tokens']} of {tc['prefix_tokens']} prefix tokens, "
        f"{100 * tc['prefill_share']:.0f}% of forward tokens without the cache vs "
        f"{100 * fc['prefill_share']:.0f}% for flat), but fewer rows per call "
        f"({tc['rows_per_call']:.0f} vs {fc['rows_per_call']:.0f}) amortise the fixed "
        "per-forward cost less; the lock-step tail (trees take "
        f"{fmt_pm(iters)} iterations, the batch runs {max(iters, default=0)} calls, so a call "
        f"carries {100 * occupancy:.0f}% of the trees on average); driver bookkeeping "
        f"(attach, verify, backup, frontier scan) is {100 * (1 - gen_share):.0f}% of its wall "
        "time.",
        "- pre-fill probe (each call re-issued as logged and with max_new_tokens=1, back to "
        "back, prefix cache off): pre-fill + cache fan-out + one token take "
        f"{100 * tree['probe']['share']:.0f}% of a tree-search call vs "
        f"{100 * flat['probe']['share']:.0f}% of the flat call.",
        "- against flat sampling: one call decodes until its LONGEST row stops, so rows that "
        f"hit EOS early idle (utilisation {100 * fc['row_utilisation']:.0f}% vs "
        f"{100 * tc['row_utilisation']:.0f}% within 8-token chunks), and late decode steps "
        "attend over longer caches for all rows.",
        f"- ratio {ratio:.2f}x: {'meets' if ratio >= 0.8 else 'misses'} the 0.8x goal. CPU "
        "timings on a shared machine are noisy: see the load average above; each side is the "
        "best of --repeats runs with identical tokens.",
    ]
    return "\n".join(lines)


def prefill_probe(policy: LoggedPolicy, calls: Sequence[CallRecord]) -> dict[str, float]:
    """Re-issue each logged call twice, back to back: as logged and with ``max_new_tokens=1``.

    The second costs pre-fill + cache fan-out + one sampled token; ``share`` is its time over
    the first's (both under the same machine load).
    """
    inner = policy.policy
    budget = getattr(inner, "prefix_cache_tokens", 0)
    if budget:  # re-issued calls out of order would hit or miss the cache arbitrarily
        inner.clear_prefix_cache()
        inner.prefix_cache_tokens = 0
    one = full = 0.0
    try:
        for c in calls:
            t0 = time.perf_counter()
            inner.sample(c.requests, n=c.counts, max_new_tokens=c.max_new_tokens)
            t1 = time.perf_counter()
            inner.sample(c.requests, n=c.counts, max_new_tokens=1)
            full, one = full + t1 - t0, one + time.perf_counter() - t1
    finally:
        if budget:
            inner.prefix_cache_tokens = budget
    return {"prefill_seconds": one, "full_seconds": full, "share": one / max(full, 1e-9)}


def unbatched_rate(
    items: Sequence[Prompted], policy: LoggedPolicy, verifier: Any, cfg: SearchConfig, seed: int
) -> dict[str, float]:
    """Sampled tokens/s when each tree is searched alone (one ``search.run`` per problem)."""
    seed_everything(seed, policy)
    policy.take()
    t0 = time.perf_counter()
    sampled = 0
    for item in items:
        (res,) = search.run([item], policy, verifier, cfg)
        sampled += res.stats.sampled_tokens
    wall = time.perf_counter() - t0
    calls = policy.take()
    return {
        "problems": len(items), "sampled_tokens": sampled, "wall_s": wall,
        "tokens_per_s": sampled / max(wall, 1e-9), "calls": len(calls),
    }


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Table 3 in miniature (docs/paper-notes.md#table-3): tree-search variants "
        "vs flat sampling at an equal sampled-token budget, plus throughput."
    )
    ap.add_argument("--problems", type=int, default=32, help="hard problems (trees per variant)")
    ap.add_argument("--level", type=int, default=5, help="countdown level (numbers per problem)")
    ap.add_argument("--split", default="rl", help="problem split: sft | rl | test")
    ap.add_argument("--seed", type=int, default=0, help="seeds torch, random, policy, search")
    ap.add_argument(
        "--budget-per-problem", type=int, default=0,
        help="flat row's sampled-token budget per problem (0: the default search's mean)",
    )
    ap.add_argument(
        "--trajectories", type=int, default=None,
        help="recorded trajectories per tree (default: SearchConfig.tiny(), 4; --quick: 2)",
    )
    ap.add_argument("--unbatched", type=int, default=None,
                    help="also time this many trees searched one at a time (default 4; quick 1)")
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run (4 problems)")
    ap.add_argument("--quick-model", action="store_true",
                    help="use the under-trained quick tiny reasoner (tests), not the default")
    ap.add_argument(
        "--cache-dir", default=None,
        help="tiny-reasoner cache dir (default $DSLIB_CACHE; --quick-model: a temp dir)",
    )
    ap.add_argument("--repeats", type=int, default=None,
                    help="throughput: best of this many timed runs (default 2; quick 1)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    tiny.add_build_option(ap)
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.problems = min(args.problems, 4)
    if args.trajectories is None:
        args.trajectories = 2 if args.quick else SearchConfig.tiny().n_trajectories
    if args.repeats is None:
        args.repeats = 1 if args.quick else 2
    if args.unbatched is None:
        args.unbatched = 1 if args.quick else 4
    return args


def build_label(args: argparse.Namespace) -> str:
    if args.quick_model:
        return "quick"
    return " ".join(args.tiny) if args.tiny else "default"


def load_reasoner(args: argparse.Namespace) -> tiny.TinyReasoner:
    if args.quick_model:
        cache = args.cache_dir or tempfile.mkdtemp(prefix="dslib-bench-")
        return tiny.build(QUICK_MODEL, evaluate=False, progress=False, cache_dir=cache)
    return tiny.build(tiny.config_or_exit(args.tiny), cache_dir=args.cache_dir, progress=False)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    command = "python " + shlex.join(["reproduce/bench_search.py", *sys.argv[1:]])
    if argv is not None:
        command = "python " + shlex.join(["reproduce/bench_search.py", *argv])
    print(f"$ {command}\n", flush=True)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    reasoner = load_reasoner(args)
    tokenizer = reasoner.load_tokenizer()
    policy = LoggedPolicy(reasoner.load_policy(args.seed))
    verifier = TokenVerifier(tokenizer, countdown.verify)
    problems = reasoner.problems(args.level, args.split, args.problems)
    items = prompt_all(tokenizer, problems, countdown.prompt_text)
    base = SearchConfig.tiny(n_trajectories=args.trajectories, seed=args.seed)
    print(
        f"model: {reasoner.path} ({build_label(args)} config, "
        f"{reasoner.config.sft_steps} SFT steps)\n"
        f"problems: {len(items)} x level {args.level} from split {args.split!r}; search: "
        f"step_tokens={base.step_tokens}, max_depth={base.max_depth}, width={base.width}, "
        f"n_trajectories={base.n_trajectories}; threads={args.threads}; seed={args.seed}\n",
        flush=True,
    )
    # warm-up (first-call allocations) so that no row pays it
    policy.sample([items[0].prompt_ids], n=2, max_new_tokens=4)

    # 1. the tree-search variants, each one batched search.run over all problems
    trees: dict[str, dict[str, Any]] = {}
    raw_calls: dict[str, list[CallRecord]] = {}
    configs: dict[str, SearchConfig] = {}
    for key, label, overrides in VARIANTS:
        cfg = dataclasses.replace(base, **overrides)
        configs[key] = cfg
        seed_everything(args.seed, policy)
        policy.take()
        t0 = time.perf_counter()
        results = search.run(items, policy, verifier, cfg)
        wall = time.perf_counter() - t0
        calls = policy.take()
        raw_calls[key] = calls
        trees[key] = tree_row(key, label, results, wall, calls)
        print(f"  {label}: {wall:.1f} s", flush=True)

    # 2. flat sampling at the default search's budget: pilot for the length, then ONE call
    budget = float(args.budget_per_problem or statistics.fmean(trees["global"]["sampled_tokens"]))
    prompts = [it.prompt_ids for it in items]
    seed_everything(args.seed, policy)
    pilot = policy.sample(prompts, n=1, max_new_tokens=FLAT_MAX_NEW_TOKENS)
    pilot_len = statistics.fmean(len(g[0].token_ids) for g in pilot) or 1.0
    k = max(1, round(budget / pilot_len))
    policy.take()
    t0 = time.perf_counter()
    samples = policy.sample(prompts, n=k, max_new_tokens=FLAT_MAX_NEW_TOKENS)
    flat_wall = time.perf_counter() - t0
    flat_calls = policy.take()
    mean_len = statistics.fmean(len(s.token_ids) for g in samples for s in g) or 1.0
    k_rows = {key: max(1, round(statistics.fmean(r["sampled_tokens"]) / mean_len))
              for key, r in trees.items()}
    extra_k = max(k_rows.values()) - k
    if extra_k > 0:  # equal-budget references for rows that spent more than the default
        extra = policy.sample(prompts, n=extra_k, max_new_tokens=FLAT_MAX_NEW_TOKENS)
        samples = [list(a) + list(b) for a, b in zip(samples, extra)]
        policy.take()
    verdicts = [[verifier(it, s.token_ids).correct for s in g] for it, g in zip(items, samples)]
    flat = flat_row(items, samples, verdicts, k, base.step_tokens, flat_wall, flat_calls)
    flat["flat_same_budget"] = f"{flat['solved']} (k={k})"
    for key, r in trees.items():
        kv = k_rows[key]
        r["flat_same_budget_k"] = kv
        r["flat_same_budget_solved"] = sum(any(v[:kv]) for v in verdicts)
        r["flat_same_budget"] = f"{r['flat_same_budget_solved']} (k={kv})"
    rows = [flat] + [trees[key] for key, _, _ in VARIANTS]

    # 3. throughput: the batched default search vs the flat call (best of --repeats, the same
    #    seeds so every repeat samples identical tokens), plus trees searched one at a time
    best_tree = (trees["global"]["wall_s"], trees["global"]["calls"])
    best_flat = (flat_wall, flat["calls"])
    for _ in range(args.repeats - 1):
        seed_everything(args.seed, policy)
        policy.take()
        t0 = time.perf_counter()
        search.run(items, policy, verifier, configs["global"])
        wall = time.perf_counter() - t0
        best_tree = min(best_tree, (wall, call_summary(policy.take())), key=lambda x: x[0])
        seed_everything(args.seed, policy)
        policy.sample(prompts, n=1, max_new_tokens=FLAT_MAX_NEW_TOKENS)  # the pilot, untimed
        policy.take()
        t0 = time.perf_counter()
        policy.sample(prompts, n=k, max_new_tokens=FLAT_MAX_NEW_TOKENS)
        wall = time.perf_counter() - t0
        best_flat = min(best_flat, (wall, call_summary(policy.take())), key=lambda x: x[0])
    tree_tokens = sum(trees["global"]["sampled_tokens"])
    flat_total = sum(flat["sampled_tokens"])
    tree_rate = tree_tokens / max(best_tree[0], 1e-9)
    flat_rate = flat_total / max(best_flat[0], 1e-9)
    ratio = tree_rate / max(flat_rate, 1e-9)
    unbatched = None
    if args.unbatched > 0:
        unbatched = unbatched_rate(
            items[: args.unbatched], policy, verifier, configs["global"], args.seed
        )
    probe = {"tree": prefill_probe(policy, raw_calls["global"]),
             "flat": prefill_probe(policy, flat_calls)}
    load_end = os.getloadavg()[0]

    flat_tokens = statistics.fmean(flat["sampled_tokens"])
    print(
        f"\n## Search strategies at an equal sampled-token budget (Table 3, "
        f"docs/paper-notes.md#table-3)\n\n"
        f"budget B = {budget:.0f} sampled tokens/problem "
        f"({'--budget-per-problem' if args.budget_per_problem else 'mean of row (c)'}); "
        f"pilot mean response length {pilot_len:.1f} tokens -> k = {k}; flat actually spent "
        f"{flat_tokens:.0f} tokens/problem ({100 * (flat_tokens / budget - 1):+.0f}% of B).\n"
    )
    print(markdown_table(rows))
    print(
        "solved = problems with >= 1 correct recorded trajectory (flat: sample); reward = mean "
        "terminal score (+-1); fwd/tok = forward tokens per sampled token (shared: this "
        "backend pre-fills each distinct prefix once per call; re-prefill: the official code's "
        "n copies); flat@B_v = problems solved by the first k_v flat samples, k_v matched to "
        "that row's tokens/tree; time/tree for flat = call wall time / problems.\n"
    )
    print("## Throughput (sampled tokens per second, same backend, model and problems)\n")
    print(
        f"load average (1 min) {load_start:.1f} at start, {load_end:.1f} at end, on "
        f"{os.cpu_count()} CPUs; torch threads {args.threads}; best of {args.repeats}\n"
    )
    print("| run | sampled tokens | wall (s) | tokens/s |\n|---|---|---|---|")
    print(f"| tree search (c), {len(items)} trees in one search.run | "
          f"{tree_tokens} | {best_tree[0]:.2f} | {tree_rate:.0f} |")
    print(f"| flat sampling, one call n={k} x {len(items)} prompts | "
          f"{flat_total} | {best_flat[0]:.2f} | {flat_rate:.0f} |")
    if unbatched is not None:
        print(f"| tree search (c), {unbatched['problems']} tree(s), one search.run each | "
              f"{unbatched['sampled_tokens']} | {unbatched['wall_s']:.2f} | "
              f"{unbatched['tokens_per_s']:.0f} |")
    print(f"\nratio tree/flat = {ratio:.2f}x (goal >= 0.8x)\n")
    note = throughput_note(
        {"calls": best_tree[1], "wall_s": best_tree[0],
         "iterations": trees["global"]["iterations"], "probe": probe["tree"]},
        {"calls": best_flat[1], "wall_s": best_flat[0], "probe": probe["flat"]},
        ratio,
    )
    print(note)
    total = time.perf_counter() - t_start
    print(f"\ntotal {total:.1f} s")

    out: dict[str, Any] = {
        "command": command,
        "args": vars(args),
        "model": {"path": str(reasoner.path), "key": reasoner.config.key(),
                  "quick": bool(args.quick_model), "sft_steps": reasoner.config.sft_steps},
        "search_config": dataclasses.asdict(base),
        "budget": {"tokens_per_problem": budget, "pilot_mean_length": pilot_len, "k": k,
                   "flat_tokens_per_problem": flat_tokens, "mean_response_length": mean_len},
        "rows": rows,
        "throughput": {
            "tree_tokens_per_s": tree_rate, "flat_tokens_per_s": flat_rate, "ratio": ratio,
            "tree_wall_s": best_tree[0], "flat_wall_s": best_flat[0],
            "tree_calls": best_tree[1], "flat_calls": best_flat[1], "repeats": args.repeats,
            "unbatched": unbatched, "prefill_probe": probe,
            "load_average": [load_start, load_end], "note": note,
        },
        "total_s": total,
    }
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
        print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
