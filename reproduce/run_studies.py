"""The paper's studies in miniature on the tiny reasoner; writes reproduce/RESULTS.md.

    python reproduce/run_studies.py                          # all studies, 3 seeds: hours
    python reproduce/run_studies.py --only plateau negatives --seeds 0 1 2
    python reproduce/run_studies.py --quick --out /tmp/st    # minutes: every code path, tiny sizes

Each study writes ``OUT/sections/NN_name.md`` (the command that made it, a table, a figure)
and ``RUNS/name.json`` (every number; ``RUNS`` also holds the training runs, outside the
repository); ``OUT/RESULTS.md`` is the sections in order, so re-running
one study replaces only its section. Nothing here is hard-coded: every number in a section comes
from the runs the command made. ``--quick`` shrinks every run to a few steps; its numbers are
for checking the scripts, not results.

| study | paper | compares |
|---|---|---|
| plateau | Fig. 2 / Table 2 | DeepSearch vs flat GRPO at equal sampled tokens, per difficulty |
| search | Table 3 | vanilla UCT vs global frontier, depth bonus, entropy bonus (bench_search) |
| evolution | Table 4 | vanilla -> new q (coarse, fine) -> std norm -> mean-only -> frontier |
| negatives | Table 5 | which wrong path to back up: most confident / random / least confident |
| caching | Table 6 | rounds with the replay buffer: cached vs unsolved, tokens saved |
| throughput | App. C | tree vs flat tokens/s, forward/sampled tokens, time per step split |
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dslib.report import mean_std

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "reproduce"))
#: where training runs and JSON go (``--runs``); RESULTS.md, sections and figures go to --out
RUNS: dict[str, Any] = {"dir": ROOT / "runs" / "studies", "progress": True, "setup": "first"}

#: ``--setup``: "first" is what RESULTS.md was measured on, the tiny preset as it was until
#: 2026-11-24 (levels 3-5, 150 steps, the first build of the tiny reasoner); "preset" is the
#: tiny preset as it is now
SETUPS = ("first", "preset")
SETUP_NOTE = {
    "first": "Setup `--setup first` (the default): the tiny preset as it was until 2026-11-24, "
             "training on 3-5 numbers for 150 steps, on the first build of the tiny reasoner "
             "(`--tiny 'sft_mix=[0.45,0.35,0.2]'`). Today's preset trains on 4-5 numbers for "
             "300 steps on a build with more hard SFT data (README, Training).",
    "preset": "Setup `--setup preset`: the tiny preset and tiny reasoner as they are now.",
}

#: the tiny reasoner's build these studies were first measured on (``--setup first``): 45 % of
#: the SFT batches on 3-number problems (the default mix now gives the hard levels more)
FIRST_BUILD: tuple[str, ...] = ("sft_mix=[0.45,0.35,0.2]",)


# ----------------------------------------------------------------------------- configs


def base_config(quick: bool) -> Any:
    """The tiny preset, as it was (``--setup first``) or is; ``quick``: 2 steps of 4
    problems, evaluations on 8 problems."""
    from dslib.config import update
    from dslib.presets import preset

    cfg = preset("tiny")
    if RUNS["setup"] == "first":
        cfg = update(cfg, {"task.levels": (3, 4, 5), "run.steps": 150, "eval.every": 75})
        if not quick:  # quick runs check the scripts on the cached default build
            cfg = update(cfg, {"task.tiny_build": FIRST_BUILD})
    if quick:
        cfg = update(cfg, {"run.steps": 2, "run.problems_per_step": 4, "eval.every": 2,
                           "eval.problems": 8, "eval.samples": 2,
                           "rollout.search.n_trajectories": 2})
    return cfg


def with_overrides(cfg: Any, assignments: Sequence[str]) -> Any:
    from dslib.config import override

    return override(cfg, list(assignments))


def changed(cfg: Any, changes: dict[str, Any]) -> Any:
    """``cfg`` with dotted-path fields replaced (``dslib.config.update``)."""
    from dslib.config import update

    return update(cfg, changes)


#: Table 4 rows as config overrides, cumulative as in the paper (docs/paper-notes.md#table-4): the
#: vanilla q backup, outcome (coarse) token scores and no advantage normalisation under the UCT
#: restart; then the constrained q update, fine scores, std then mean-only normalisation, the
#: frontier
EVOLUTION: list[tuple[str, list[str]]] = [
    ("vanilla DeepSearch", ["rollout.search.backup_rule=vanilla", "optim.grpo.reward=coarse",
                            "optim.grpo.baseline=none", "rollout.search.backtrace=uct"]),
    ("+ new q update, coarse scores", ["optim.grpo.reward=coarse", "optim.grpo.baseline=none",
                                       "rollout.search.backtrace=uct"]),
    ("+ fine-grained scores", ["optim.grpo.baseline=none", "rollout.search.backtrace=uct"]),
    ("+ standard normalisation", ["optim.grpo.std_norm=true", "rollout.search.backtrace=uct"]),
    ("+ mean-only normalisation", ["rollout.search.backtrace=uct"]),
    ("+ frontier selection (default)", []),
]

#: Table 5 rows (docs/paper-notes.md#table-5)
NEGATIVES = ["most_confident", "random", "least_confident"]


# ----------------------------------------------------------------------------- helpers


def same_run(cfg: Any, runs: Path) -> Path | None:
    """A run directory under ``runs`` (two levels down) trained with exactly ``cfg``, if any.

    The default rows of Tables 4 and 5 are the plateau study's DeepSearch runs: same config,
    same seed, and training is deterministic on the CPU, so they are trained once.
    """
    from dslib.config import TrainConfig

    def normal(c: Any) -> Any:  # JSON form; fields newer than a run's file take defaults
        return json.loads(json.dumps(c.to_dict()))

    want = normal(cfg)
    for path in sorted(runs.glob("*/*/config.json")):
        try:
            if normal(TrainConfig.from_dict(json.loads(path.read_text()))) == want:
                return path.parent
        except (OSError, ValueError, TypeError):
            continue
    return None


def train(cfg: Any, run_dir: Path) -> list[dict[str, Any]]:
    """One training run (resumed if its directory already holds one; a bar per run).

    A run with the same config elsewhere under the studies folder is continued instead.
    """
    from dslib.rundir import RunDir
    from dslib.trainer import Trainer

    if not (run_dir / "config.json").exists():
        earlier = same_run(cfg, RUNS["dir"])
        if earlier is not None:
            print(f"  {run_dir.parent.name}/{run_dir.name}: same config as "
                  f"{earlier.parent.name}/{earlier.name}, reused", flush=True)
            run_dir = earlier
    print(f"  {run_dir.parent.name}/{run_dir.name}", flush=True)
    progress = RUNS.get("progress", True)
    if RunDir(run_dir).latest_checkpoint() is not None:
        return Trainer.resume(run_dir, progress=progress).train()
    return Trainer(cfg, run_dir, progress=progress).train()


def final_eval(history: Sequence[dict[str, Any]]) -> dict[str, float]:
    evals = [r for r in history if r.get("kind") == "eval"]
    return {k[: -len("/pass@1")]: v for k, v in (evals[-1] if evals else {}).items()
            if k.endswith("/pass@1")}


def first_eval(history: Sequence[dict[str, Any]]) -> dict[str, float]:
    evals = [r for r in history if r.get("kind") == "eval"]
    return {k[: -len("/pass@1")]: v for k, v in (evals[0] if evals else {}).items()
            if k.endswith("/pass@1")}


def tokens(history: Sequence[dict[str, Any]]) -> int:
    train_rows = [r for r in history if r.get("kind") == "train"]
    return int(train_rows[-1]["cumulative_sampled_tokens"]) if train_rows else 0


def eval_curve(history: Sequence[dict[str, Any]], key: str,
               x: str = "tokens") -> list[tuple[float, float]]:
    """(cumulative sampled tokens, or training wall seconds, pass@1) at each evaluation.

    Wall time is the sum of the steps' ``wall_s`` (search + update), evaluations excluded.
    """
    seen: dict[int, float] = {0: 0.0}
    wall = 0.0
    for r in history:
        if r.get("kind") == "train":
            wall += r.get("wall_s", 0.0)
            seen[r["step"]] = r["cumulative_sampled_tokens"] if x == "tokens" else wall
    return [(seen.get(r["step"], 0.0), r[key]) for r in history
            if r.get("kind") == "eval" and key in r]


def section(title: str, command: str, body: list[str]) -> str:
    return "\n".join([f"## {title}", "", "```bash", command, "```", "", *body, ""])


# ----------------------------------------------------------------------------- studies


def plateau(out: Path, seeds: Sequence[int], quick: bool, command: str) -> str:
    """DeepSearch vs flat GRPO at (about) equal sampled tokens: the baseline draws 12 samples
    per problem instead of 4, which matches the tree's ~3x tokens per problem."""
    import matplotlib.pyplot as plt

    base = base_config(quick)
    runs: dict[str, list[list[dict[str, Any]]]] = {"deepsearch": [], "grpo": []}
    for seed in seeds:
        ds = changed(base, {"rollout.strategy": "tree", "run.seed": seed})
        gr = changed(base, {"rollout.strategy": "flat", "run.seed": seed,
                            "rollout.samples_per_problem": 12})
        runs["deepsearch"].append(train(ds, RUNS["dir"] / "plateau" / f"deepsearch-s{seed}"))
        runs["grpo"].append(train(gr, RUNS["dir"] / "plateau" / f"grpo-n12-s{seed}"))
    levels = sorted(first_eval(runs["deepsearch"][0]))
    rows = ["| set | before | DeepSearch after | flat GRPO (n=12) after |", "|---|---|---|---|"]
    for lv in levels:
        rows.append(f"| {lv} | {mean_std([first_eval(h)[lv] for h in runs['deepsearch']])} | "
                    f"{mean_std([final_eval(h)[lv] for h in runs['deepsearch']])} | "
                    f"{mean_std([final_eval(h)[lv] for h in runs['grpo']])} |")
    tok = {m: [tokens(h) for h in hs] for m, hs in runs.items()}
    wall = {m: [sum(r.get("wall_s", 0) for r in h if r.get("kind") == "train") for h in hs]
            for m, hs in runs.items()}
    zero = [statistics.mean(r["zero_signal_share"] for r in h if r.get("kind") == "train")
            for h in runs["grpo"]]
    body = rows + ["", f"Sampled tokens: DeepSearch {statistics.mean(tok['deepsearch']):,.0f}, "
                   f"flat GRPO "
                   f"{statistics.mean(tok['grpo']):,.0f} (mean over {len(seeds)} seeds). "
                   f"Train time (s): {statistics.mean(wall['deepsearch']):.0f} vs "
                   f"{statistics.mean(wall['grpo']):.0f}. Share of zero-signal groups in the "
                   f"baseline: {mean_std(zero)}."]
    fig, axes = plt.subplots(2, len(levels), figsize=(4 * len(levels), 6), squeeze=False)
    for row, (x, label) in enumerate((("tokens", "sampled tokens"),
                                      ("wall", "training seconds"))):
        for ax, lv in zip(axes[row], levels, strict=True):
            for m, style in (("deepsearch", "-"), ("grpo", "--")):
                for h in runs[m]:
                    pts = eval_curve(h, f"{lv}/pass@1", x)
                    ax.plot(*zip(*pts), style, marker="o", ms=3, alpha=0.7,
                            color="C0" if m == "deepsearch" else "C1")
            ax.set(title=f"{lv}: pass@1 vs {label}", xlabel=label)
    fig.tight_layout()
    fig.savefig(out / "plateau.png", dpi=100)
    plt.close(fig)
    body += ["", "![plateau](plateau.png)  (solid: DeepSearch, dashed: flat GRPO; one line per "
             "seed; top: against sampled tokens, bottom: against training seconds, "
             "evaluations excluded)"]
    save(out, "plateau", {"tokens": tok, "wall": wall, "zero_signal": zero,
                          "histories": runs})
    return section("Plateau study (paper Fig. 2 / Table 2)", command, body)


def variants(out: Path, seeds: Sequence[int], quick: bool, command: str, name: str,
             title: str, rows: list[tuple[str, list[str]]]) -> str:
    """Train each row's config for each seed; table of the final held-out pass@1."""
    base = base_config(quick)
    if RUNS.get("rows"):  # a share of the rows (parallel processes); the table shows them
        bad = [i for i in RUNS["rows"] if not 0 <= i < len(rows)]
        if bad:
            raise SystemExit(f"--rows {bad}: {name} has rows 0..{len(rows) - 1}")
        rows = [rows[i] for i in RUNS["rows"]]
    results: dict[str, list[dict[str, float]]] = {}
    toks: dict[str, list[int]] = {}
    for label, overrides in rows:
        for seed in seeds:
            cfg = with_overrides(changed(base, {"run.seed": seed}), overrides)
            slug = label.replace(" ", "_").replace("+", "").replace("(", "").replace(")", "")
            h = train(cfg, RUNS["dir"] / name / f"{slug}-s{seed}")
            results.setdefault(label, []).append(final_eval(h))
            toks.setdefault(label, []).append(tokens(h))
    levels = sorted(next(iter(results.values()))[0])
    table = ["| variant | overrides | " + " | ".join(levels) + " | sampled tokens |",
             "|---|---|" + "---|" * (len(levels) + 1)]
    for label, overrides in rows:
        cells = [mean_std([r[lv] for r in results[label]]) for lv in levels]
        table.append(f"| {label} | `{' '.join(overrides) or '-'}` | " + " | ".join(cells)
                     + f" | {statistics.mean(toks[label]):,.0f} |")
    save(out, name, {"results": results, "tokens": toks, "rows": rows})
    return section(title, command, table)


def evolution(out: Path, seeds: Sequence[int], quick: bool, command: str) -> str:
    return variants(out, seeds, quick, command, "evolution",
                    "Algorithm evolution (paper Table 4)", EVOLUTION)


def negatives(out: Path, seeds: Sequence[int], quick: bool, command: str) -> str:
    rows = [(n.replace("_", " "), [f"rollout.search.negative_choice={n}"]) for n in NEGATIVES]
    return variants(out, seeds, quick, command, "negatives",
                    "Which wrong path to supervise (paper Table 5)", rows)


def caching(out: Path, seeds: Sequence[int], quick: bool, command: str) -> str:
    from dslib.presets import smoke, tiny_rounds
    from dslib.rounds import Rounds, table6

    tables, per_seed = [], []
    for seed in seeds:
        cfg, rcfg = changed(base_config(quick), {"run.seed": seed}), tiny_rounds()
        if quick:
            cfg, rcfg = smoke(cfg, rcfg)
        rows = Rounds(cfg, rcfg, RUNS["dir"] / "caching" / f"s{seed}",
                      progress=RUNS["progress"]).run()
        per_seed.append(rows)
        tables.append(f"Seed {seed}:\n\n" + table6(rows) + "\n")
    summary = ["| round | cached ratio | # cached | # unsolved | saved tokens (est.) |",
               "|---|---|---|---|---|"]
    for i in range(min(len(rows) for rows in per_seed)):
        rs = [rows[i] for rows in per_seed]
        ratio = [100 * r["cached_ratio"] for r in rs]
        saved = [100 * r.get("savings", {}).get("saved_share", 0.0) for r in rs]
        summary.append(
            f"| {rs[0]['round']} | {mean_std(ratio, 1)} % | "
            f"{mean_std([r['cached'] for r in rs], 1)} | "
            f"{mean_std([r['unsolved'] for r in rs], 1)} | {mean_std(saved, 1)} % |")
    save(out, "caching", {"seeds": list(seeds), "rows": per_seed})
    return section("Caching over rounds (paper Table 6)", command, [
        f"Mean ± std over {len(seeds)} seeds (3 rounds x 50 steps of the tiny preset, "
        "a pool of 400 problems, replay threshold 0.25):", "", *summary, "", *tables])


def search_strategies(out: Path, seeds: Sequence[int], quick: bool, command: str) -> str:
    import bench_search

    argv = ["--quick"] if quick else ["--repeats", "3"]
    if RUNS["setup"] == "first" and not quick:
        argv += [a for item in FIRST_BUILD for a in ("--tiny", item)]
    res = bench_search.main(argv)
    save(out, "search", res)
    thr = res["throughput"]
    return section("Search strategy (paper Table 3) and throughput", command, [
        f"`reproduce/bench_search.py {' '.join(argv)}`: {res['args']['problems']} level-"
        f"{res['args']['level']} problems, equal sampled-token budget per problem.", "",
        bench_search.markdown_table(res["rows"]), "",
        f"Tree/flat sampled-token throughput on the same backend: {thr['ratio']:.2f}x "
        f"({thr['tree_tokens_per_s']:,.0f} vs {thr['flat_tokens_per_s']:,.0f} tokens/s)."])


def throughput(out: Path, seeds: Sequence[int], quick: bool, command: str) -> str:
    """Time per training step split into search / old log-prob recomputation / update, from
    short runs of each mode made for this study (run it alone: it times the machine), plus
    the tree-vs-flat sampling comparison of the search study when it has run."""
    base = base_config(quick)
    steps = base.run.steps if quick else 10
    modes = {"deepsearch": {"rollout.strategy": "tree"},
             "grpo (n=12)": {"rollout.strategy": "flat", "rollout.samples_per_problem": 12}}
    rows = ["| mode | search / sampling s | log-prob recompute s | update s | sampled tokens "
            "| sampled tokens/s (rollout) | forward / sampled tokens (prefix once per call; "
            "every copy re-prefilled) |",
            "|---|---|---|---|---|---|---|"]
    data = {}
    for label, change in modes.items():
        cfg = changed(base, {"run.seed": seeds[0], "run.steps": steps, "eval.every": 0,
                             **change})
        slug = label.split()[0]
        h = [r for r in train(cfg, RUNS["dir"] / "throughput" / f"{slug}-s{seeds[0]}")
             if r.get("kind") == "train"]
        data[label] = h
        roll = statistics.mean(r["rollout_s"] for r in h)
        logp = statistics.mean(r.get("logprob_s", 0.0) for r in h)
        upd = statistics.mean(r["update_s"] for r in h) - logp
        sampled = sum(r["sampled_tokens"] for r in h)
        fwd = sum(r.get("forward_tokens", 0) for r in h)
        fwd_no = sum(r.get("forward_tokens_no_reuse", 0) for r in h)
        ratio = f"{fwd / sampled:.2f}, {fwd_no / sampled:.2f}" if fwd else "-"
        rows.append(f"| {label} | {roll:.2f} | {logp:.2f} | {upd:.2f} | "
                    f"{sampled / len(h):,.0f} | {sampled / sum(r['rollout_s'] for r in h):,.0f}"
                    f" | {ratio} |")
    body = [f"Means per step over {steps} steps of 16 problems, seed {seeds[0]}, one thread. "
            "The update column excludes the recomputation. Forward tokens are counted as in "
            "`search.SearchStats`: the transformers backend's cross-call KV cache cuts them "
            "further (the search study's `fwd/tok cached` column).", "", *rows]
    search_json = RUNS["dir"] / "search.json"
    if search_json.exists():
        thr = json.loads(search_json.read_text())["throughput"]
        body += ["", "Same backend and batch, no training (the search study, "
                 "`reproduce/bench_search.py`): tree search "
                 f"{thr['tree_tokens_per_s']:,.0f} vs flat sampling "
                 f"{thr['flat_tokens_per_s']:,.0f} sampled tokens/s ({thr['ratio']:.2f}x)."]
    save(out, "throughput", {"histories": data})
    return section("Throughput: time per training step", command, body)


STUDIES: dict[str, tuple[str, Callable[..., str]]] = {
    "plateau": ("01", plateau),
    "search": ("02", search_strategies),
    "evolution": ("03", evolution),
    "negatives": ("04", negatives),
    "caching": ("05", caching),
    "throughput": ("06", throughput),
}


def save(out: Path, name: str, data: Any) -> None:
    """Every number of a study, as JSON, next to its training runs (not in the repository)."""
    RUNS["dir"].mkdir(parents=True, exist_ok=True)
    (RUNS["dir"] / f"{name}.json").write_text(json.dumps(data, default=str))


def run(out: Path, only: Sequence[str], seeds: Sequence[int], quick: bool) -> Path:
    import torch

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sections").mkdir(exist_ok=True)
    for name in only or list(STUDIES):
        number, fn = STUDIES[name]
        command = "python " + shlex.join(
            ["reproduce/run_studies.py", "--only", name, "--seeds", *map(str, seeds),
             *(["--quick"] if quick else []),
             *(["--setup", RUNS["setup"]] if RUNS["setup"] != "first" else [])])
        t0 = time.perf_counter()
        text = fn(out, seeds, quick, command)
        text += (f"\n({time.perf_counter() - t0:.0f} s for this invocation; runs already "
                 "finished under the runs folder are reused, not retrained.)\n")
        (out / "sections" / f"{number}_{name}.md").write_text(text)
        print(f"{name}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    head = ["# Results on the tiny reasoner", "",
            "Every section was written by the command above it (reproduce/run_studies.py)."
            + (" **Quick mode: script checks, not results.**" if quick else ""), "",
            SETUP_NOTE[RUNS["setup"]], ""]
    # a hand-written reading of a study (reproduce/readings/NN_name.md) follows its section
    # in a full run; it quotes only numbers of that section
    readings = ROOT / "reproduce" / "readings"
    parts = []
    for sec in sorted((out / "sections").glob("*.md")):
        parts.append(sec.read_text())
        if not quick and (readings / sec.name).exists():
            parts.append((readings / sec.name).read_text() + "\n")
    results = out / "RESULTS.md"
    results.write_text("\n".join(head + parts))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "reproduce"),
                    help="folder of RESULTS.md, sections/ and figures")
    ap.add_argument("--runs", default=None,
                    help="folder of the training runs and JSON (default: runs/studies, or "
                         "OUT/runs with --quick)")
    ap.add_argument("--only", nargs="*", default=[], choices=list(STUDIES))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--quick", action="store_true", help="a few steps of each run")
    ap.add_argument("--rows", nargs="*", type=int, default=[],
                    help="evolution/negatives: train only these rows (0-based), e.g. to "
                         "split a study over processes; a later run without --rows reuses "
                         "the finished runs and writes the whole table")
    ap.add_argument("--setup", choices=SETUPS, default="first",
                    help="first: the tiny preset and build RESULTS.md was measured on (until "
                         "2026-11-24: levels 3-5, 150 steps, sft_mix 0.45/0.35/0.2); preset: "
                         "the tiny preset as it is now (another runs folder: runs/studies-preset)")
    args = ap.parse_args(argv)
    RUNS["setup"] = args.setup
    suffix = "" if args.setup == "first" else f"-{args.setup}"
    default_runs = Path(args.out) / "runs" if args.quick else ROOT / "runs" / f"studies{suffix}"
    RUNS["dir"] = Path(args.runs) if args.runs else default_runs
    RUNS["progress"] = not args.quick
    RUNS["rows"] = args.rows
    path = run(Path(args.out), args.only, args.seeds, args.quick)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
