"""The ``dslib`` command: one command per experiment (CleanRL style).

``dslib train --preset tiny [--mode grpo] [--set key=value ...] [--name NAME] [--resume RUN]``
writes ``runs/<name>/`` (``config.json``, ``metrics.jsonl``, ``checkpoint/``, ``curves.png``).
``--tiny FIELD=VALUE`` (train, filter, rounds) trains another build of the tiny reasoner.

``dslib filter --preset tiny [--k 4] [--delta 0.25] [--strict]`` writes the hard subset as a
versioned JSONL (``--set train_subset=FILE`` trains on it).

``dslib rounds --preset tiny --rounds 3`` runs filter -> train with the replay buffer ->
register -> re-filter, and prints the paper's Table 6 for the run (re-run to resume).

``dslib eval --model tiny --benchmarks all --k 4 --limit 5 --out runs/eval-tiny`` writes avg@k
on the six math benchmarks (``table.md``, ``table.json``, ``results.jsonl``; re-run to resume).

``dslib compare RUN_A RUN_B`` prints the before/after held-out table of two runs and draws
their curves together (``make demo`` runs both modes and calls it). ``--seeds`` groups runs
whose configs differ only in ``seed`` and prints mean ± std over each group.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dslib import tiny
from dslib.benchmarks import MATH_K, MATH_MAX_NEW_TOKENS, MATH_TEMPERATURE, MATH_TOP_P


def _config(args: argparse.Namespace) -> Any:
    """The preset with ``--mode`` and every ``--set`` applied; bad keys are a clear exit."""
    from dslib.trainer import apply_overrides, dry_run_config, preset

    overrides = list(args.set)
    if getattr(args, "mode", None):
        overrides.insert(0, f"mode={args.mode}")
    if getattr(args, "tiny", None):
        overrides.append("tiny_build=" + json.dumps(list(args.tiny)))
    try:
        cfg = apply_overrides(preset(args.preset), overrides)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    return dry_run_config(cfg) if cfg.dry_run else cfg


def _fresh_dir(run_dir: Path, marker: str, overwrite: bool, how_to_resume: str) -> None:
    """Refuse to clobber a previous run unless ``--overwrite``; then clear it."""
    if (run_dir / marker).exists() and not overwrite:
        raise SystemExit(f"{run_dir} already holds a run: {how_to_resume}, --overwrite to "
                         "start again, or --name for a new one")
    if overwrite and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)


def _train(args: argparse.Namespace) -> int:
    from dslib import distributed
    from dslib.trainer import Trainer

    dist = distributed.init_from_env()  # several processes under accelerate launch / torchrun

    if args.resume:
        if args.set or args.mode:
            raise SystemExit("--resume continues a run as configured: drop --set/--mode")
        try:
            trainer = Trainer.resume(args.resume)
        except FileNotFoundError as err:
            raise SystemExit(str(err)) from None
    else:
        cfg = _config(args)
        name = args.name or f"{args.preset}-{cfg.mode}-s{cfg.seed}"
        run_dir = Path(args.runs) / name
        if dist.main:
            _fresh_dir(run_dir, "checkpoint", args.overwrite,
                       f"--resume {run_dir} to continue it")
        try:
            trainer = Trainer(cfg, run_dir)
        except (OSError, ValueError) as err:  # a bad train_subset / replay_buffer file
            raise SystemExit(str(err)) from None
    t0 = time.perf_counter()
    history = trainer.train()
    if dist.main:
        print(f"run: {trainer.run_dir}  ({time.perf_counter() - t0:.0f} s this call"
              + (f", {dist.world} processes)" if dist.active else ")"))
        print(summary_table({trainer.cfg.mode: history}))
    return 0


def _compare(args: argparse.Namespace) -> int:
    histories = {}
    for path in args.runs:
        metrics = Path(path) / "metrics.jsonl"
        if not metrics.exists():
            raise SystemExit(f"{path}: no metrics.jsonl (not a run directory?)")
        histories[path] = [json.loads(x) for x in metrics.read_text().splitlines() if x]
    names = [Path(p).name for p in histories]
    unique = len(set(names)) == len(names)  # else label runs by their path
    runs = {(Path(p).name if unique else p): rows for p, rows in histories.items()}
    if args.seeds:
        groups = group_by_config(args.runs)
        print(seed_table({label: [histories[d] for d in dirs]
                          for label, dirs in groups.items()}))
    else:
        print(summary_table(runs))
    if args.plot:
        from dslib.viz import plot_training

        (first, rows), *rest = runs.items()
        fig = plot_training(rows, title=first, others=dict(rest))
        fig.savefig(args.plot, dpi=100, bbox_inches="tight")
        print(f"wrote {args.plot}")
    return 0


def _filter(args: argparse.Namespace) -> int:
    from dslib.filtering import keep
    from dslib.rounds import filter_pool

    cfg = _config(args)
    out = Path(args.out or Path(args.runs) / f"filter-{args.preset}.jsonl")
    try:
        header, records = filter_pool(
            cfg, out, k=args.k, delta=args.delta, strict=args.strict, pool_size=args.pool,
            config={"preset": args.preset, "set": list(args.set)},
        )
    except (OSError, ValueError) as err:  # a missing model directory, bad data, bad k
        raise SystemExit(str(err)) from None
    hist = [0] * (header.k + 1)
    for r in records:
        hist[r.successes] += 1
    kept = sum(keep(r, header.delta, header.strict) for r in records)
    print("| successes of k | " + " | ".join(f"{s}/{header.k}" for s in range(header.k + 1))
          + " |\n|---|" + "---|" * (header.k + 1) + "\n| problems | "
          + " | ".join(str(h) for h in hist) + " |")
    print(f"kept {kept} of {len(records)} problems (rate {'<' if header.strict else '<='} "
          f"{header.delta}); wrote {out}")
    print(f"train on them: dslib train --preset {args.preset} --set train_subset={out}")
    return 0


def _rounds(args: argparse.Namespace) -> int:
    import os

    from dslib.rounds import Rounds, rounds_preset, table6

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SystemExit("dslib rounds runs in one process (its filter and buffer files are "
                         "written by one writer); launch `dslib train` with --set "
                         "train_subset=... --set replay_buffer=... per round instead")

    cfg = _config(args)
    try:
        base = rounds_preset(args.preset)
        given = {"rounds": args.rounds, "steps_per_round": args.steps_per_round,
                 "pool_size": args.pool}
        rcfg = dataclasses.replace(
            base, k=args.k, delta=args.delta, strict=args.strict,
            register_rule=args.register_rule, restart_from_base=args.restart_from_base,
            **{k: v for k, v in given.items() if v is not None},
        )
    except ValueError as err:
        raise SystemExit(str(err)) from None
    name = args.name or f"{args.preset}-rounds-{cfg.mode}-s{cfg.seed}"
    out = Path(args.runs) / name
    if args.overwrite:
        _fresh_dir(out, "rounds.json", True, "")
    t0 = time.perf_counter()
    try:
        rows = Rounds(cfg, rcfg, out).run()
    except (OSError, ValueError) as err:  # other settings in OUT, a missing model or file
        raise SystemExit(str(err)) from None
    print(f"rounds: {out}  ({time.perf_counter() - t0:.0f} s this call)")
    print(table6(rows))
    return 0


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


def _eval(args: argparse.Namespace) -> int:
    """``dslib eval``: :func:`dslib.benchmarks.run_eval`, then the Markdown table."""
    from dslib.benchmarks import RESULTS_FILE, TABLE_JSON, TABLE_MD, run_eval, table_markdown

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


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``"0.200 ± 0.021"`` (sample std), the value alone for one run, ``"-"`` for none."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def group_by_config(run_dirs: Sequence[str | Path]) -> dict[str, list[str | Path]]:
    """Runs whose ``config.json`` differ only in ``seed``, grouped; labelled by the first run's
    name without a trailing ``-s<N>`` (made unique when two groups would share a label).
    Order follows ``run_dirs``."""
    by_config: dict[str, list[str | Path]] = {}
    for d in run_dirs:
        cfg_file = Path(d) / "config.json"
        if not cfg_file.exists():
            raise SystemExit(f"{d}: no config.json (not a run directory?)")
        cfg = json.loads(cfg_file.read_text())
        cfg.pop("seed", None)
        by_config.setdefault(json.dumps(cfg, sort_keys=True), []).append(d)
    groups: dict[str, list[str | Path]] = {}
    for dirs in by_config.values():
        label = base = re.sub(r"-s\d+$", "", Path(dirs[0]).name)
        n = 1
        while label in groups:
            n += 1
            label = f"{base} ({n})"
        groups[label] = dirs
    return groups


def seed_table(groups: dict[str, Sequence[Sequence[dict[str, Any]]]]) -> str:
    """Markdown: per group of seeds and held-out set, pass@1 before, after and the change
    (mean ± std over the seeds; each seed's change is taken within its own run)."""
    from dslib.viz import before_after

    lines = ["| runs | seeds | set | pass@1 before | pass@1 after | change |",
             "|---|---|---|---|---|---|"]
    for label, histories in groups.items():
        pairs: dict[str, list[tuple[float, float]]] = {}
        for rows in histories:
            for name, ab in before_after(rows).items():
                pairs.setdefault(name, []).append(ab)
        if not pairs:
            lines.append(f"| {label} | {len(histories)} | - | - | - | - |")
        for name, ab in pairs.items():
            lines.append(
                f"| {label} | {len(ab)} | {name} | {mean_std([a for a, _ in ab])} | "
                f"{mean_std([b for _, b in ab])} | {_signed(mean_std([b - a for a, b in ab]))} |")
    return "\n".join(lines)


def _signed(text: str) -> str:
    return text if text.startswith(("-", "+")) else "+" + text


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dslib", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train with DeepSearch or the flat GRPO baseline")
    tr.add_argument("--preset", default="tiny")
    tr.add_argument("--mode", choices=["deepsearch", "grpo"], default=None)
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, dotted for sections: search.width=8")
    tiny.add_build_option(tr)
    tr.add_argument("--name", default=None, help="run name (default: preset-mode-seed)")
    tr.add_argument("--runs", default="runs", help="directory holding run directories")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR")
    tr.add_argument("--overwrite", action="store_true")
    tr.set_defaults(func=_train)
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--preset", default="tiny")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a training config field (dotted: search.width=8)")
        tiny.add_build_option(p)
        p.add_argument("--k", type=int, default=4, help="direct rollouts per problem (Pass1@K)")
        p.add_argument("--delta", type=float, default=0.25, help="keep problems with rate <= it")
        p.add_argument("--strict", action="store_true", help="the paper's rate < delta")
        p.add_argument("--pool", type=int, default=None,
                       help="filter a seeded sample of this many training problems "
                            "(rounds default: the preset's, tiny: 400)")
        p.add_argument("--runs", default="runs")

    flt = sub.add_parser("filter", help="Pass1@K of the model: the hard subset as a JSONL file")
    common(flt)
    flt.add_argument("--out", default=None, help="default: RUNS/filter-PRESET.jsonl")
    flt.set_defaults(func=_filter)
    rnd = sub.add_parser("rounds", help="multi-round training with filtering and a replay buffer")
    common(rnd)
    rnd.add_argument("--mode", choices=["deepsearch", "grpo"], default=None)
    rnd.add_argument("--rounds", type=int, default=None, help="default: the preset's (tiny: 3)")
    rnd.add_argument("--steps-per-round", type=int, default=None,
                     help="default: the preset's (tiny: 50)")
    rnd.add_argument("--register-rule", choices=["code", "paper"], default="code")
    rnd.add_argument("--restart-from-base", action="store_true",
                     help="every round starts from the base model (the released round1.sh)")
    rnd.add_argument("--name", default=None, help="default: PRESET-rounds-MODE-sSEED")
    rnd.add_argument("--overwrite", action="store_true",
                     help="start again (the same command without it resumes)")
    rnd.set_defaults(func=_rounds)
    ev = sub.add_parser("eval", help="avg@k on the six math benchmarks (reference §7)")
    add_eval_arguments(ev)
    ev.set_defaults(func=_eval)
    cmp_ = sub.add_parser("compare", help="held-out table (and curves) of finished runs")
    cmp_.add_argument("runs", nargs="+")
    cmp_.add_argument("--plot", default=None, help="write the overlaid curves to this PNG")
    cmp_.add_argument("--seeds", action="store_true",
                      help="group runs whose configs differ only in seed: mean ± std")
    cmp_.set_defaults(func=_compare)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
