"""The ``dslib`` command: one command per experiment (CleanRL style).

``dslib train --preset tiny [--mode grpo] [--set key=value ...] [--name NAME] [--resume RUN]``
writes ``runs/<name>/`` (``config.json``, ``metrics.jsonl``, ``checkpoint/``, ``curves.png``).

``dslib compare RUN_A RUN_B`` prints the before/after held-out table of two runs and draws
their curves together (``make demo`` runs both modes and calls it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _train(args: argparse.Namespace) -> int:
    from dslib.trainer import Trainer, apply_overrides, preset

    if args.resume:
        if args.set or args.mode:
            raise SystemExit("--resume continues a run as configured: drop --set/--mode")
        try:
            trainer = Trainer.resume(args.resume)
        except FileNotFoundError as err:
            raise SystemExit(str(err)) from None
    else:
        overrides = list(args.set)
        if args.mode:
            overrides.insert(0, f"mode={args.mode}")
        try:
            cfg = apply_overrides(preset(args.preset), overrides)
        except ValueError as err:
            raise SystemExit(str(err)) from None
        name = args.name or f"{args.preset}-{cfg.mode}-s{cfg.seed}"
        run_dir = Path(args.runs) / name
        if (run_dir / "checkpoint").exists() and not args.overwrite:
            raise SystemExit(
                f"{run_dir} already holds a run: --resume {run_dir} to continue it, "
                "--overwrite to start again, or --name for a new one"
            )
        if args.overwrite and run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        trainer = Trainer(cfg, run_dir)
    t0 = time.perf_counter()
    history = trainer.train()
    print(f"run: {trainer.run_dir}  ({time.perf_counter() - t0:.0f} s this call)")
    print(summary_table({trainer.cfg.mode: history}))
    return 0


def _compare(args: argparse.Namespace) -> int:
    runs = {}
    for path in args.runs:
        metrics = Path(path) / "metrics.jsonl"
        if not metrics.exists():
            raise SystemExit(f"{path}: no metrics.jsonl (not a run directory?)")
        runs[Path(path).name] = [json.loads(x) for x in metrics.read_text().splitlines() if x]
    print(summary_table(runs))
    if args.plot:
        from dslib.viz import plot_training

        (first, rows), *rest = runs.items()
        fig = plot_training(rows, title=first, others=dict(rest))
        fig.savefig(args.plot, dpi=100, bbox_inches="tight")
        print(f"wrote {args.plot}")
    return 0


def summary_table(runs: dict[str, Sequence[dict[str, Any]]]) -> str:
    """Markdown: held-out pass@1 per set before (first eval) and after (last eval), per run."""
    lines = ["| run | set | pass@1 before | pass@1 after | change | steps | sampled tokens "
             "| train time (s) |", "|---|---|---|---|---|---|---|---|"]
    for name, rows in runs.items():
        evals = [r for r in rows if r.get("kind") == "eval"]
        train = [r for r in rows if r.get("kind") == "train"]
        wall = sum(r.get("wall_s", 0.0) for r in train)
        tokens = train[-1].get("cumulative_sampled_tokens", 0) if train else 0
        if not evals:
            lines.append(f"| {name} | - | - | - | - | {len(train)} | {tokens} | {wall:.0f} |")
            continue
        first, last = evals[0], evals[-1]
        for key in sorted(k for k in first if k.endswith("/pass@1")):
            a, b = first[key], last.get(key, float("nan"))
            lines.append(
                f"| {name} | {key[: -len('/pass@1')]} | {a:.3f} (step {first['step']}) | "
                f"{b:.3f} (step {last['step']}) | {b - a:+.3f} | {len(train)} | {tokens} "
                f"| {wall:.0f} |"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dslib", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train with DeepSearch or the flat GRPO baseline")
    tr.add_argument("--preset", default="tiny")
    tr.add_argument("--mode", choices=["deepsearch", "grpo"], default=None)
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, dotted for sections: search.width=8")
    tr.add_argument("--name", default=None, help="run name (default: preset-mode-seed)")
    tr.add_argument("--runs", default="runs", help="directory holding run directories")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR")
    tr.add_argument("--overwrite", action="store_true")
    tr.set_defaults(func=_train)
    cmp_ = sub.add_parser("compare", help="held-out table (and curves) of finished runs")
    cmp_.add_argument("runs", nargs="+")
    cmp_.add_argument("--plot", default=None, help="write the overlaid curves to this PNG")
    cmp_.set_defaults(func=_compare)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
