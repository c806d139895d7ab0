"""Builds of the tiny reasoner side by side: the variants README's "The tiny reasoner" reports.

    python reproduce/tiny_variants.py --list                       # the variants, no work
    python reproduce/tiny_variants.py --only goal_first_4l --seeds 0 1 2
    python reproduce/tiny_variants.py                              # all of them, seed 0: hours
    python reproduce/tiny_variants.py --quick --out /tmp/tv        # every code path in seconds

Each variant is a list of ``TinyConfig`` assignments, the same as ``python -m dslib.tiny
--set ...``. Builds run ``--jobs`` at a time (default 2, one per core), each with one torch
thread (``--set threads=1``: the thread count changes float rounding and so a build
slightly; one thread per build is what the README's rows were measured with). A build is
cached under ``OUT/cache`` by its config hash, so a stopped sweep continues where it was, and
a second call only prints. The table (``OUT/tiny_variants.md``), the plot of easy-level pass@1
per variant (``OUT/tiny_variants.png``) and every number (``OUT/tiny_variants.json``) come from
the builds' own ``build_info.json``; nothing is typed in.

The SFT seconds column is one thread with another build beside it: it compares variants, it
is not the build time on 2 cores (``/usr/bin/time python -m dslib.tiny --set ...`` measures
that).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from dslib.progress import progress_bar
from dslib.report import mean_std

ROOT = Path(__file__).resolve().parents[1]

_GOAL_FIRST_4L = ["num_hidden_layers=4", "solution_style=backward"]
_H96 = ["hidden_size=96", "intermediate_size=288"]
_SFT80 = 'split_fractions=[["sft",0.8],["rl",0.0],["test",0.2]]'

#: name -> (``--set`` assignments, what it tries)
VARIANTS: dict[str, tuple[list[str], str]] = {
    "default": ([], "the default build: 2 layers, forward solutions"),
    "layers4": (["num_hidden_layers=4"], "depth"),
    "pool": (["solution_style=pool"], "each step followed by the numbers still available"),
    "layers4_pool": (["num_hidden_layers=4", "solution_style=pool"], "depth, pool steps"),
    "layers4_steps1000": (["num_hidden_layers=4", "sft_steps=1000"], "depth, less SFT"),
    "goal_first": (["solution_style=backward"], "goal-first solutions on 2 layers"),
    "goal_first_3l": (["num_hidden_layers=3", "solution_style=backward"], "3 layers"),
    "goal_first_4l": (_GOAL_FIRST_4L, "goal-first solutions on 4 layers"),
    "goal_first_4l_steps1200": (_GOAL_FIRST_4L + ["sft_steps=1200"], "less SFT"),
    "goal_first_4l_steps2000": (_GOAL_FIRST_4L + ["sft_steps=2000"], "more SFT"),
    "goal_first_4l_mix": (_GOAL_FIRST_4L + ["sft_mix=[0.35,0.35,0.3]"], "more easy batches"),
    "goal_first_4l_lr4": (_GOAL_FIRST_4L + ["lr=0.004"], "higher learning rate"),
    "goal_first_4l_chars": (_GOAL_FIRST_4L + ["vocab_size=259"], "character-level tokens"),
    "goal_first_4l_heads8": (_GOAL_FIRST_4L + ["num_attention_heads=8",
                                               "num_key_value_heads=4"], "8 heads of 16"),
    "goal_first_4l_heads16": (_GOAL_FIRST_4L + ["num_attention_heads=16",
                                                "num_key_value_heads=8"], "16 heads of 8"),
    "goal_first_4l_heads8_mlp256": (_GOAL_FIRST_4L + [
        "num_attention_heads=8", "num_key_value_heads=4", "intermediate_size=256"],
        "8 heads, narrower MLP (fewer parameters per layer)"),
    "goal_first_4l_h96": (_GOAL_FIRST_4L + _H96, "4 narrower layers"),
    "goal_first_5l_h96": (["num_hidden_layers=5", "solution_style=backward"] + _H96,
                          "5 narrower layers"),
    "goal_first_6l_h96": (["num_hidden_layers=6", "solution_style=backward"] + _H96,
                          "6 narrower layers"),
    "goal_first_4l_sft80": (_GOAL_FIRST_4L + [_SFT80],
                            "SFT on 80% of the problems (same test split; no RL split)"),
    "default_sft80": ([_SFT80], "the default on 80% of the problems"),
}


def command(name: str, seed: int) -> str:
    """The ``python -m dslib.tiny`` call that makes the same build as one cell of the sweep."""
    sets = ["threads=1", *VARIANTS[name][0], *([f"seed={seed}"] if seed else [])]
    return "python -m dslib.tiny" + "".join(f" --set {shlex.quote(s)}" for s in sets)


def build_one(name: str, seed: int, cache: str, quick: bool) -> dict[str, Any]:
    """Build (or reuse) one variant in this process and return its summary row."""
    from dslib import tiny

    cfg = tiny.override(tiny.TinyConfig(), ["threads=1", *VARIANTS[name][0], f"seed={seed}"])
    if quick:
        cfg = tiny.override(cfg, ["sft_steps=3", "warmup_steps=1"])
    reasoner = tiny.build(cfg, cache_dir=cache, progress=False,
                          eval_problems=4 if quick else 100, eval_samples=4 if quick else 8)
    info = reasoner.info
    table = {row["level"]: row for row in info["difficulty_table"]}
    hard = max(table)
    return {
        "variant": name, "seed": seed, "sets": VARIANTS[name][0], "key": info["key"],
        "command": command(name, seed), "parameters": info["parameters"],
        "sft_seconds": info["build_seconds"], "final_loss": info["final_loss"],
        "pass@1": {str(lv): row["pass@1"] for lv, row in table.items()},
        "pass@4": {str(lv): row["pass@4"] for lv, row in table.items()},
        "hard_share_le_25pct": table[hard]["share_le_25pct"],
        # the line columns (builds made before they existed lack them: None)
        "steps_pass@1": {str(lv): row.get("steps_pass@1") for lv, row in table.items()},
        "lines_valid_if_correct": {str(lv): row.get("lines_valid_if_correct")
                                   for lv, row in table.items()},
        "first_line_valid": {str(lv): row.get("first_line_valid") for lv, row in table.items()},
    }


def _worker(args: tuple[str, int, str, bool]) -> dict[str, Any]:
    os.environ["TQDM_DISABLE"] = "1"  # the workers' bars would interleave; main keeps its own
    return build_one(*args)


def markdown(rows: list[dict[str, Any]]) -> str:
    """One line per build, then the mean over seeds of each variant with more than one."""
    levels = sorted(rows[0]["pass@1"], key=int) if rows else []
    per_level = " / ".join(levels) + " numbers"
    head = ("| variant | `--set` | seed | parameters | SFT s (1 thread) | held-out pass@1 "
            + per_level + " | hard level at <= 25% | steps pass@1 " + per_level
            + " | correct with valid lines | valid first line |\n"
            + "|---|---|---|---|---|---|---|---|---|---|\n")

    def levels_of(r: dict[str, Any], key: str) -> str:
        values = r.get(key) or {}
        return " / ".join("-" if values.get(lv) is None else f"{values[lv]:.2f}"
                          for lv in levels)

    lines = []
    for r in rows:
        sets = " ".join(f"`{s}`" for s in r["sets"]) or "(none)"
        lines.append(f"| {r['variant']} | {sets} | {r['seed']} | {r['parameters']:,} | "
                     f"{r['sft_seconds']:.0f} | {levels_of(r, 'pass@1')} | "
                     f"{r['hard_share_le_25pct']:.2f} | {levels_of(r, 'steps_pass@1')} | "
                     f"{levels_of(r, 'lines_valid_if_correct')} | "
                     f"{levels_of(r, 'first_line_valid')} |\n")
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    means = []
    for name, group in by_variant.items():
        if len(group) > 1:
            p1 = " / ".join(mean_std([g["pass@1"][lv] for g in group], 2) for lv in levels)
            steps = " / ".join(
                mean_std([g["steps_pass@1"][lv] for g in group], 2)
                if all((g.get("steps_pass@1") or {}).get(lv) is not None for g in group)
                else "-" for lv in levels)
            means.append(f"| {name} | mean of seeds {', '.join(str(g['seed']) for g in group)} "
                         f"| | | | {p1} | | {steps} | | |\n")
    return head + "".join(lines) + "".join(means)


def plot(rows: list[dict[str, Any]], path: Path, aim: float = 0.40) -> None:
    """Easy-level held-out pass@1 per variant: a bar at the mean, a dot per seed, the aim."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    easy = min(rows[0]["pass@1"], key=int)
    names = list(dict.fromkeys(r["variant"] for r in rows))
    values = {n: [r["pass@1"][easy] for r in rows if r["variant"] == n] for n in names}
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    ys = range(len(names))
    ax.barh(ys, [sum(v) / len(v) for v in values.values()], color="#9ecae1")
    for y, name in zip(ys, names):
        ax.plot(values[name], [y] * len(values[name]), "o", color="#08519c", ms=4)
    ax.axvline(aim, ls="--", color="#d62728")
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"held-out pass@1, {easy} numbers (bar: mean; dots: seeds)")
    ax.set_title(f"tiny builds: the dashed line is the aim, pass@1 {aim:.2f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, metavar="VARIANT",
                    help="these variants (default: all; see --list)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--jobs", type=int, default=2, help="builds at a time (one thread each)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "tiny_variants"))
    ap.add_argument("--list", action="store_true", help="print the variants and their commands")
    ap.add_argument("--quick", action="store_true",
                    help="3 SFT steps, 4 problems x 4 samples: checks the script, not results")
    args = ap.parse_args(argv)
    names = list(VARIANTS) if args.only is None else args.only
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    if args.jobs < 1:
        raise SystemExit("--jobs must be at least 1")
    if not names or not args.seeds:
        raise SystemExit("nothing to build: give at least one variant and one seed")
    if args.list:
        for n in names:
            print(f"{n}: {VARIANTS[n][1]}\n  {command(n, args.seeds[0])}")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(n, s, str(out / "cache"), args.quick) for n in names for s in args.seeds]
    os.environ["OMP_NUM_THREADS"] = "1"  # the workers' own torch work (builds set threads=1)
    print(f"$ python reproduce/tiny_variants.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"{len(jobs)} builds, {min(args.jobs, len(jobs))} at a time, cached in {out / 'cache'}",
          flush=True)
    rows: list[dict[str, Any]] = []
    bar = progress_bar(total=len(jobs), desc="builds", unit="build")
    with ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs)),
                             mp_context=get_context("spawn")) as pool:
        for row in pool.map(_worker, jobs):
            rows.append(row)
            p1 = " / ".join(f"{v:.2f}" for v in row["pass@1"].values())
            bar.write(f"  {row['variant']} seed {row['seed']}: pass@1 {p1} "
                      f"({row['sft_seconds']:.0f} s SFT)")
            bar.update(1)
    bar.close()
    table = markdown(rows)
    (out / "tiny_variants.json").write_text(json.dumps(
        {"quick": args.quick, "rows": rows}, indent=2))
    (out / "tiny_variants.md").write_text(table)
    plot(rows, out / "tiny_variants.png")
    print(table)


if __name__ == "__main__":
    main()
