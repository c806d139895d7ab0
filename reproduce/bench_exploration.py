r"""The exploration benchmark: at an equal sampled-token budget, does a tree find more answers?

DeepSearch's claim, in miniature: a tree search is the better explorer on problems a policy
rarely solves. Measured here as the fraction of problems with at least one correct answer
against the mean sampled tokens spent per problem, on fixed RL-split problems of the tiny
reasoner's hard levels:

| method        | what runs                                                 | budget points |
|---------------|-----------------------------------------------------------|---------------|
| flat          | n independent responses per problem (``policy.sample``)   | k = 1, 2, .., n |
| chunk w4 / w8 | ``search.run``, fixed 8-token nodes, width 4 / 8          | T = 4 .. 64   |
| line w4 / w8  | ``search.run``, a line per node (``step_boundary="\n"``) | trajectories  |

- flat: n samples per problem give, for every k <= n, the unbiased pass@k estimate
  ``1 - C(n-c, k) / C(n, k)`` (c correct of n; Chen et al. 2021, the Codex paper). The
  solved fraction at k is its mean over problems; the tokens at k are k times the mean
  response length.
- trees: one search per configuration runs to the largest T. A tree stopped at T
  trajectories is the same tree read when its T-th trajectory was recorded (``search.run``
  stops a tree right after that backup, so nothing else differs): tokens = the chunks
  generated up to that expansion, solved = a correct leaf among them. A tree whose frontier
  emptied before T counts with everything it did.
- structure of the full trees: the share of sibling chunks identical (token for token) to an
  earlier sibling, by depth; the share of expansions made inside the answer (the node's
  response already holds ``\boxed{``); the share of nodes that end at a line end, at EOS, or
  cut by the token limit.

Each configuration is run for every seed (policy sampling and search seed); the table gives
mean ± std over seeds, the figure one line per method with a band of ± one std. Next to each
tree point the table gives flat sampling at the same tokens (the flat curve of the same seed,
interpolated in k) and the difference.

The verifier is a switch (``--mode box``: the box alone, the old toy; ``--mode steps``: every
line must be a valid step, ``dslib.tasks.countdown.verify_steps``); the build is another
(``--tiny FIELD=VALUE``, e.g. ``--tiny solution_style=pool``), so old and new toy run side by
side. Results go under ``--out`` (``results.json``, ``table.md``, ``exploration.png``).

Commands::

    python reproduce/bench_exploration.py                                    # the full run
    python reproduce/bench_exploration.py --mode steps --out reproduce/results/exploration-steps
    python reproduce/bench_exploration.py --problems 16 --seeds 0            # a small real run
    python reproduce/bench_exploration.py --quick --quick-model --cache-dir /tmp/dslib-bench
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dslib import search, tiny
from dslib.config import SearchConfig
from dslib.progress import progress_bar
from dslib.report import mean_std
from dslib.tasks import countdown
from dslib.tasks.base import Prompted, TokenVerifier

ROOT = Path(__file__).resolve().parents[1]
#: the under-trained reasoner of ``tests/conftest.py::quick_reasoner`` (seconds to build)
QUICK_MODEL = dataclasses.replace(tiny.TinyConfig(), sft_steps=60, problems_per_level=400)
BOX = "\\boxed{"


# ----------------------------------------------------------------------------- estimators


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of P(at least one of k samples is correct), c correct of n drawn:
    ``1 - C(n-c, k) / C(n, k)`` (exact integers, then one division)."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def flat_curve(correct: Sequence[int], lengths: Sequence[float], n: int) -> dict[str, list]:
    """Solved fraction and mean tokens per problem at every k = 1..n (c_i correct of n for
    problem i, mean response length lengths[i])."""
    ks = list(range(1, n + 1))
    mean_len = statistics.fmean(lengths)
    solved = [statistics.fmean(pass_at_k(n, c, k) for c in correct) for k in ks]
    return {"k": ks, "tokens": [k * mean_len for k in ks], "solved": solved}


def at_tokens(curve: dict[str, list], tokens: float) -> float:
    """The flat curve's solved fraction at a token budget (linear between its k points)."""
    xs, ys = curve["tokens"], curve["solved"]
    if tokens <= xs[0]:
        return ys[0] * tokens / xs[0]  # fewer tokens than one response: a share of one
    for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:], strict=False):
        if tokens <= x1:
            return y0 + (y1 - y0) * (tokens - x0) / (x1 - x0)
    return ys[-1]  # beyond n samples: the last point (marked in the table)


# ----------------------------------------------------------------------------- trees


def tree_reading(result: search.SearchResult, grid: Sequence[int]) -> list[tuple[int, bool]]:
    """(sampled tokens, solved) of one tree as it stood when its T-th trajectory was recorded,
    for every T of ``grid`` (the whole tree where it has fewer)."""
    nodes = sorted((n for n in result.tree.nodes() if not n.is_root), key=lambda n: n.id)
    upto: dict[int, int] = {}
    total = 0
    for node in nodes:
        total += len(node.token_ids)
        upto[node.id] = total
    correct = [n.id for n in nodes if n.outcome == "correct"]
    first_correct = min(correct) if correct else None
    last = nodes[-1].id if nodes else 0
    out = []
    for t in grid:
        cut = last
        if t <= len(result.tree.recorded):
            leaf = result.tree.recorded[t - 1]
            assert leaf.parent is not None
            siblings = {c.id for c in leaf.parent.children}
            cut = leaf.id
            while cut + 1 in siblings:  # the rest of the expansion that made the leaf
                cut += 1
        out.append((upto.get(cut, 0), first_correct is not None and first_correct <= cut))
    return out


def structure(results: Sequence[search.SearchResult], tokenizer: Any) -> dict[str, Any]:
    """Duplicate siblings by depth, expansions inside the answer, how nodes end."""
    dup: dict[int, list[int]] = {}  # depth -> [duplicates, children]
    expansions = inside = 0
    ends = {"line": 0, "eos": 0, "cut": 0}
    for res in results:
        text = {res.tree.root.id: ""}
        for node in res.tree.nodes():  # pre-order: a parent's text is known before its child
            if not node.is_root:
                assert node.parent is not None
                own = tokenizer.decode(node.token_ids, skip_special_tokens=True)
                text[node.id] = text[node.parent.id] + own
                kind = "eos" if node.finished else "line" if own.endswith("\n") else "cut"
                ends[kind] += 1
            if node.children:
                expansions += 1
                inside += BOX in text[node.id]
                seen: set[tuple[int, ...]] = set()
                row = dup.setdefault(node.depth + 1, [0, 0])
                for child in node.children:
                    key = tuple(child.token_ids)
                    row[0] += key in seen
                    row[1] += 1
                    seen.add(key)
    n_nodes = sum(ends.values()) or 1
    all_dup = sum(d for d, _ in dup.values())
    all_children = sum(c for _, c in dup.values()) or 1
    return {
        "duplicate_siblings": all_dup / all_children,
        "duplicate_siblings_by_depth": {d: dup[d][0] / dup[d][1] for d in sorted(dup)},
        "children_by_depth": {d: dup[d][1] for d in sorted(dup)},
        "inside_answer": inside / max(1, expansions),
        "expansions": expansions,
        "node_ends": {k: v / n_nodes for k, v in ends.items()},
    }


# ----------------------------------------------------------------------------- runs


def run_flat(
    items: Sequence[Prompted], policy: Any, verifier: Any, n: int, max_tokens: int,
    rows: int, seed: int, desc: str,
) -> dict[str, Any]:
    """n samples per problem, in calls of about ``rows`` samples; correct counts, lengths."""
    policy.seed(seed)
    per_call = max(1, rows // n)
    correct, lengths = [], []
    for start in progress_bar(range(0, len(items), per_call), desc=desc, leave=False):
        batch = items[start : start + per_call]
        out = policy.sample([it.prompt_ids for it in batch], n=n, max_new_tokens=max_tokens)
        for item, segs in zip(batch, out, strict=True):
            correct.append(sum(verifier(item, s.token_ids).correct for s in segs))
            lengths.append(statistics.fmean(len(s.token_ids) for s in segs))
    return {"correct": correct, "lengths": lengths, **flat_curve(correct, lengths, n)}


def run_trees(
    items: Sequence[Prompted], policy: Any, verifier: Any, cfg: SearchConfig,
    grid: Sequence[int], tokenizer: Any,
) -> dict[str, Any]:
    """One search to max(grid) trajectories, read at every T of the grid."""
    policy.seed(cfg.seed)
    results = search.run(items, policy, verifier, cfg, progress=True)
    readings = [tree_reading(r, grid) for r in results]
    return {
        "T": list(grid),
        "tokens": [statistics.fmean(r[j][0] for r in readings) for j in range(len(grid))],
        "solved": [statistics.fmean(r[j][1] for r in readings) for j in range(len(grid))],
        "exhausted": sum(r.exhausted for r in results) / len(results),
        **structure(results, tokenizer),
    }


def methods(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """(name, SearchConfig.tiny overrides) of every tree configuration."""
    out = []
    for node in args.nodes:
        for width in args.widths:
            if node == "chunk":
                over: dict[str, Any] = {"step_tokens": args.chunk_tokens}
                name = f"chunk{args.chunk_tokens} w{width}"
            else:
                over = {"step_tokens": args.line_tokens, "step_boundary": "\n"}
                name = f"line w{width}"
            out.append((name, {**over, "width": width, "max_depth": args.max_depth}))
    return out


# ----------------------------------------------------------------------------- report


def markdown(level_results: dict[str, Any], seeds: Sequence[int]) -> str:
    """Per level: flat at its k points, each tree at its T points, with flat at equal tokens."""
    parts = []
    for level, res in level_results.items():
        flat = res["flat"]
        n = len(flat[0]["k"])
        parts.append(f"### Level {level}: {res['problems']} problems, seeds {list(seeds)}\n")
        parts.append("| method | budget | tokens / problem | solved | flat at equal tokens "
                     "| tree - flat |\n|---|---|---|---|---|---|")
        for k in sorted({2**i for i in range(n.bit_length())} | {n}):
            tok = [f["tokens"][k - 1] for f in flat]
            sol = [f["solved"][k - 1] for f in flat]
            parts.append(f"| flat | k={k} | {mean_std(tok, 0)} | {mean_std(sol)} | | |")
        for name, runs in res["trees"].items():
            for j, t in enumerate(runs[0]["T"]):
                tok = [r["tokens"][j] for r in runs]
                sol = [r["solved"][j] for r in runs]
                ref = [at_tokens(f, x) for f, x in zip(flat, tok, strict=True)]
                beyond = " (> k=n)" if max(tok) > max(f["tokens"][-1] for f in flat) else ""
                gap = [a - b for a, b in zip(sol, ref, strict=True)]
                parts.append(f"| {name} | T={t} | {mean_std(tok, 0)} | {mean_std(sol)} "
                             f"| {mean_std(ref)}{beyond} | {mean_std(gap)} |")
        parts.append("\nStructure of the full trees (T = the largest; mean ± std over seeds):\n")
        parts.append("| method | duplicate siblings | by depth 1 / 2 / 3 / 4 / 6 / 8 "
                     "| expansions inside the answer | nodes ending at a line end / EOS / cut "
                     "| exhausted |\n|---|---|---|---|---|---|")
        for name, runs in res["trees"].items():
            depths = " / ".join(
                mean_std([r["duplicate_siblings_by_depth"][d] for r in runs
                          if d in r["duplicate_siblings_by_depth"]], 2)
                for d in (1, 2, 3, 4, 6, 8)
            )
            node_ends = " / ".join(
                mean_std([r["node_ends"][kind] for r in runs], 2) for kind in ("line", "eos", "cut")
            )
            parts.append(
                f"| {name} | {mean_std([r['duplicate_siblings'] for r in runs], 2)} | {depths} "
                f"| {mean_std([r['inside_answer'] for r in runs], 2)} | {node_ends} "
                f"| {mean_std([r['exhausted'] for r in runs], 2)} |"
            )
        parts.append("")
    return "\n".join(parts) + "\n"


def figure(level_results: dict[str, Any], path: Path, title: str) -> None:
    """Solved fraction vs tokens per problem (log x), one panel per level, ± 1 std bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = list(level_results)
    fig, axes = plt.subplots(1, len(levels), figsize=(6 * len(levels), 4.5), squeeze=False)
    for ax, level in zip(axes[0], levels, strict=True):
        res = level_results[level]
        curves = {"flat": res["flat"], **res["trees"]}
        for name, runs in curves.items():
            x = [statistics.fmean(v) for v in zip(*(r["tokens"] for r in runs), strict=True)]
            ys = list(zip(*(r["solved"] for r in runs), strict=True))
            y = [statistics.fmean(v) for v in ys]
            sd = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in ys]
            style = {"color": "black", "lw": 2} if name == "flat" else {"marker": "o", "ms": 3}
            (line,) = ax.plot(x, y, label=name, **style)
            ax.fill_between(x, [a - b for a, b in zip(y, sd, strict=True)],
                            [a + b for a, b in zip(y, sd, strict=True)],
                            color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("sampled tokens per problem (mean)")
        ax.set_ylabel("problems with a correct answer")
        ax.set_title(f"level {level} ({res['problems']} problems)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[4, 5], help="countdown levels")
    ap.add_argument("--problems", type=int, default=64, help="RL-split problems per level")
    ap.add_argument("--split", default="rl", help="problem split: sft | rl | test")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--mode", choices=countdown.VERIFY_MODES, default="box",
                    help="what counts as correct, in the search and in the count: the box "
                    "alone, or every step line (dslib.tasks.countdown.verifier)")
    ap.add_argument("--flat-samples", type=int, default=256, help="n flat samples per problem")
    ap.add_argument("--flat-max-tokens", type=int, default=None,
                    help="flat response length limit (default: max_depth x chunk tokens, the "
                    "longest response a chunk tree writes)")
    ap.add_argument("--flat-rows", type=int, default=2048, help="flat samples per policy call")
    ap.add_argument("--nodes", nargs="+", choices=("chunk", "line"), default=["chunk", "line"])
    ap.add_argument("--widths", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--trajectories", type=int, nargs="+", default=[4, 8, 16, 32, 64],
                    help="T: the tree is read when it has recorded this many")
    ap.add_argument("--chunk-tokens", type=int, default=8, help="tokens per chunk node")
    ap.add_argument("--line-tokens", type=int, default=24,
                    help="most tokens a line node may hold (the longest reference line has 18)")
    ap.add_argument("--max-depth", type=int, default=SearchConfig.tiny().max_depth)
    ap.add_argument("--quick", action="store_true",
                    help="seconds: 4 problems, one seed, 8 flat samples, T = 2, 4, width 2")
    ap.add_argument("--quick-model", action="store_true",
                    help="use the under-trained quick tiny reasoner (tests), not the default")
    ap.add_argument("--cache-dir", default=None,
                    help="tiny-reasoner cache dir (default $DSLIB_CACHE; --quick-model: temp)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--out", default=str(ROOT / "reproduce" / "results" / "exploration"),
                    help="folder for results.json, table.md and exploration.png")
    tiny.add_build_option(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.problems, args.seeds, args.flat_samples = min(args.problems, 4), args.seeds[:1], 8
        args.trajectories, args.widths = [2, 4], [2]
    if args.flat_max_tokens is None:
        args.flat_max_tokens = args.max_depth * args.chunk_tokens
    if min(args.trajectories) < 1 or args.flat_samples < 1 or args.problems < 1:
        raise SystemExit("--trajectories, --flat-samples and --problems must be >= 1")
    args.trajectories = sorted(set(args.trajectories))
    return args


def load_reasoner(args: argparse.Namespace) -> tiny.TinyReasoner:
    if args.quick_model:
        cache = args.cache_dir or tempfile.mkdtemp(prefix="dslib-bench-")
        return tiny.build(QUICK_MODEL, evaluate=False, progress=False, cache_dir=cache)
    return tiny.build(tiny.config_or_exit(args.tiny), cache_dir=args.cache_dir, progress=False)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    shown = sys.argv[1:] if argv is None else list(argv)
    command = "python " + shlex.join(["reproduce/bench_exploration.py", *shown])
    print(f"$ {command}\n", flush=True)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    reasoner = load_reasoner(args)
    tokenizer = reasoner.load_tokenizer()
    policy = reasoner.load_policy(seed=0)
    verifier = TokenVerifier(tokenizer, countdown.verifier(args.mode))
    build = "quick" if args.quick_model else (" ".join(args.tiny) or "default")
    print(f"model: {reasoner.path} ({build} build, solution style "
          f"{reasoner.config.solution_style!r}); mode {args.mode!r}; levels {args.levels} x "
          f"{args.problems} {args.split!r} problems; seeds {args.seeds}\n", flush=True)

    configs = methods(args)
    levels: dict[str, Any] = {}
    timings: list[dict[str, Any]] = []
    for level in args.levels:
        items = reasoner.prompted(level, args.split, args.problems)
        res: dict[str, Any] = {"problems": len(items), "flat": [], "trees": {}}
        for seed in args.seeds:
            t0 = time.perf_counter()
            res["flat"].append(run_flat(
                items, policy, verifier, args.flat_samples, args.flat_max_tokens,
                args.flat_rows, seed, desc=f"level {level} flat s{seed}",
            ))
            timings.append({"level": level, "method": "flat", "seed": seed,
                            "seconds": time.perf_counter() - t0})
            for name, over in configs:
                cfg = SearchConfig.tiny(n_trajectories=max(args.trajectories), seed=seed, **over)
                t0 = time.perf_counter()
                print(f"level {level} {name} seed {seed}", flush=True)
                run = run_trees(items, policy, verifier, cfg, args.trajectories, tokenizer)
                res["trees"].setdefault(name, []).append(run)
                timings.append({"level": level, "method": name, "seed": seed,
                                "seconds": time.perf_counter() - t0})
        levels[str(level)] = res

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(levels, args.seeds)
    title = f"{command}\n(model {reasoner.path.name}, {build} build, mode {args.mode})"
    figure(levels, out / "exploration.png", title)
    seconds: dict[str, list[float]] = {}
    for row in timings:
        seconds.setdefault(row["method"], []).append(row["seconds"])
    timing_lines = "\n".join(
        f"- {name}: {statistics.fmean(s):.1f} s per level and seed ({len(s)} runs)"
        for name, s in seconds.items()
    )
    total = time.perf_counter() - t_start
    report = (f"$ {command}\n\nmodel {reasoner.path} ({build} build, solution style "
              f"{reasoner.config.solution_style!r}), mode {args.mode!r}\n\n{table}\n"
              f"Time per configuration:\n{timing_lines}\n\ntotal {total:.0f} s\n")
    print(report)
    (out / "table.md").write_text(report)
    result = {
        "command": command, "args": vars(args),
        "model": {"path": str(reasoner.path), "key": reasoner.config.key(), "build": build,
                  "solution_style": reasoner.config.solution_style},
        "methods": dict(configs), "levels": levels, "timings": timings, "total_s": total,
    }
    (out / "results.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'exploration.png'}")
    return result


if __name__ == "__main__":
    main()
