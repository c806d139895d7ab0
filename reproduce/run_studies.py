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
import dataclasses
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "reproduce"))
#: where training runs and JSON go (``--runs``); RESULTS.md, sections and figures go to --out
RUNS: dict[str, Any] = {"dir": ROOT / "runs" / "studies", "progress": True}

# ----------------------------------------------------------------------------- configs


def base_config(quick: bool) -> Any:
    """The tiny preset; ``quick``: 2 steps of 4 problems, evaluations on 8 problems."""
    from dslib.trainer import preset

    cfg = preset("tiny")
    if quick:
        cfg = dataclasses.replace(cfg, steps=2, problems_per_step=4, eval_every=2,
                                  eval_problems=8, eval_samples=2,
                                  search=dataclasses.replace(cfg.search, n_trajectories=2))
    return cfg


def with_overrides(cfg: Any, assignments: Sequence[str]) -> Any:
    from dslib.trainer import apply_overrides

    return apply_overrides(cfg, list(assignments))


#: Table 4 rows as config overrides, cumulative as in the paper (reference §9.4): the vanilla
#: q backup, outcome (coarse) token scores and no advantage normalisation under the UCT restart;
#: then the constrained q update, fine scores, std then mean-only normalisation, the frontier
EVOLUTION: list[tuple[str, list[str]]] = [
    ("vanilla DeepSearch", ["search.backup_rule=vanilla", "grpo.reward=coarse",
                            "grpo.baseline=none", "search.backtrace=uct"]),
    ("+ new q update, coarse scores", ["grpo.reward=coarse", "grpo.baseline=none",
                                       "search.backtrace=uct"]),
    ("+ fine-grained scores", ["grpo.baseline=none", "search.backtrace=uct"]),
    ("+ standard normalisation", ["grpo.std_norm=true", "search.backtrace=uct"]),
    ("+ mean-only normalisation", ["search.backtrace=uct"]),
    ("+ frontier selection (default)", []),
]

#: Table 5 rows (reference §9.5)
NEGATIVES = ["most_confident", "random", "least_confident"]


# ----------------------------------------------------------------------------- helpers


def train(cfg: Any, run_dir: Path) -> list[dict[str, Any]]:
    """One training run (resumed if its directory already holds one; a bar per run)."""
    from dslib.trainer import Trainer

    print(f"  {run_dir.parent.name}/{run_dir.name}", flush=True)
    progress = RUNS.get("progress", True)
    if (run_dir / "checkpoint" / "state.json").exists():
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


def mean_std(values: Sequence[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def eval_curve(history: Sequence[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(cumulative sampled tokens, pass@1) at each evaluation of one run."""
    seen = {0: 0}
    for r in history:
        if r.get("kind") == "train":
            seen[r["step"]] = r["cumulative_sampled_tokens"]
    return [(seen.get(r["step"], 0), r[key]) for r in history
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
        ds = dataclasses.replace(base, mode="deepsearch", seed=seed)
        gr = dataclasses.replace(base, mode="grpo", seed=seed, samples_per_problem=12)
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
    fig, axes = plt.subplots(1, len(levels), figsize=(4 * len(levels), 3), squeeze=False)
    for ax, lv in zip(axes[0], levels, strict=True):
        for m, style in (("deepsearch", "-"), ("grpo", "--")):
            for h in runs[m]:
                pts = eval_curve(h, f"{lv}/pass@1")
                ax.plot(*zip(*pts), style, marker="o", ms=3, alpha=0.7,
                        color="C0" if m == "deepsearch" else "C1")
        ax.set(title=f"{lv}: pass@1 vs sampled tokens", xlabel="sampled tokens")
    fig.tight_layout()
    fig.savefig(out / "plateau.png", dpi=100)
    plt.close(fig)
    body += ["", "![plateau](plateau.png)  (solid: DeepSearch, dashed: flat GRPO; one line per "
             "seed)"]
    save(out, "plateau", {"tokens": tok, "wall": wall, "zero_signal": zero,
                          "histories": runs})
    return section("Plateau study (paper Fig. 2 / Table 2)", command, body)


def variants(out: Path, seeds: Sequence[int], quick: bool, command: str, name: str,
             title: str, rows: list[tuple[str, list[str]]]) -> str:
    """Train each row's config for each seed; table of the final held-out pass@1."""
    base = base_config(quick)
    results: dict[str, list[dict[str, float]]] = {}
    toks: dict[str, list[int]] = {}
    for label, overrides in rows:
        for seed in seeds:
            cfg = with_overrides(dataclasses.replace(base, seed=seed), overrides)
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
    rows = [(n.replace("_", " "), [f"search.negative_choice={n}"]) for n in NEGATIVES]
    return variants(out, seeds, quick, command, "negatives",
                    "Which wrong path to supervise (paper Table 5)", rows)


def caching(out: Path, seeds: Sequence[int], quick: bool, command: str) -> str:
    from dslib.rounds import Rounds, smoke, table6, tiny_rounds

    tables = []
    for seed in seeds:
        cfg, rcfg = dataclasses.replace(base_config(False), seed=seed), tiny_rounds()
        if quick:
            cfg, rcfg = smoke(cfg, rcfg)
        rows = Rounds(cfg, rcfg, RUNS["dir"] / "caching" / f"s{seed}",
                      progress=RUNS["progress"]).run()
        tables.append(f"Seed {seed}:\n\n" + table6(rows))
    save(out, "caching", {"seeds": list(seeds)})
    return section("Caching over rounds (paper Table 6)", command, tables)


def search_strategies(out: Path, seeds: Sequence[int], quick: bool, command: str) -> str:
    import bench_search

    argv = ["--quick"] if quick else ["--repeats", "3"]
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
    """Time per training step split into rollout and update (the update includes the old
    log-prob recomputation), from the plateau runs' metrics."""
    path = RUNS["dir"] / "plateau.json"
    if not path.exists():
        plateau(out, seeds[:1], quick, command)
    data = json.loads(path.read_text())
    rows = ["| mode | rollout s/step | update s/step | sampled tokens/s (rollout) |",
            "|---|---|---|---|"]
    for mode, hs in data["histories"].items():
        train_rows = [r for h in hs for r in h if r.get("kind") == "train"]
        roll = statistics.mean(r["rollout_s"] for r in train_rows)
        upd = statistics.mean(r["update_s"] for r in train_rows)
        tps = sum(r["sampled_tokens"] for r in train_rows) / sum(r["rollout_s"]
                                                                for r in train_rows)
        rows.append(f"| {mode} | {roll:.2f} | {upd:.2f} | {tps:,.0f} |")
    return section("Throughput: time per training step", command, rows)


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
             *(["--quick"] if quick else [])])
        t0 = time.perf_counter()
        text = fn(out, seeds, quick, command)
        text += f"\n({time.perf_counter() - t0:.0f} s on this machine.)\n"
        (out / "sections" / f"{number}_{name}.md").write_text(text)
        print(f"{name}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    head = ["# Results on the tiny reasoner", "",
            "Every section was written by the command above it (reproduce/run_studies.py)."
            + (" **Quick mode: script checks, not results.**" if quick else ""), ""]
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
    args = ap.parse_args(argv)
    default_runs = Path(args.out) / "runs" if args.quick else ROOT / "runs" / "studies"
    RUNS["dir"] = Path(args.runs) if args.runs else default_runs
    RUNS["progress"] = not args.quick
    path = run(Path(args.out), args.only, args.seeds, args.quick)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
