"""The ``dslib`` command: one command per experiment (CleanRL style); argument parsing only.

``dslib train --preset tiny [--mode grpo] [--set SECTION.FIELD=VALUE ...] [--name NAME]
[--resume RUN]`` writes ``runs/<name>/`` (``config.json``, ``metrics.jsonl``, ``checkpoint/``,
``curves.png``). ``--tiny FIELD=VALUE`` (train, filter, rounds) trains another build of the
tiny reasoner. Every ``--set`` path is dotted: ``optim.lr=1e-4``, ``rollout.search.width=8``
(the fields: :mod:`dslib.config`).

``dslib filter --preset tiny [--k 4] [--delta 0.25] [--strict]`` writes the hard subset as a
versioned JSONL (``--set task.train_subset=FILE`` trains on it).

``dslib rounds --preset tiny --rounds 3`` runs filter -> train with the replay buffer ->
register -> re-filter, and prints the paper's Table 6 for the run (re-run to resume).

``dslib eval --model tiny --benchmarks all --k 4 --limit 5 --out runs/eval-tiny`` writes avg@k
on the six math benchmarks (``table.md``, ``table.json``, ``results.jsonl``; re-run to resume).

``dslib compare RUN_A RUN_B`` prints the before/after held-out table of two runs and draws
their curves together. ``--seeds`` groups runs whose configs differ only in the seed and
prints mean ± std over each group.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from dslib import presets, report, tiny
from dslib.benchmarks import MATH_K, MATH_MAX_NEW_TOKENS, MATH_TEMPERATURE, MATH_TOP_P
from dslib.config import MODES, RoundsConfig, TrainConfig, update
from dslib.rundir import RunDir, RunDirError


def _config(args: argparse.Namespace) -> TrainConfig:
    """The preset with ``--mode``, every ``--set`` and ``--tiny`` applied; bad input exits
    with the field, the value and what is allowed."""
    try:
        return presets.configure(args.preset, args.set, getattr(args, "mode", None),
                                 getattr(args, "tiny", ()))
    except ValueError as err:
        raise SystemExit(f"bad config: {err}") from None


def _fresh_dir(run_dir: Path, marker: str, overwrite: bool, how_to_resume: str) -> None:
    """Refuse to clobber a previous run unless ``--overwrite``; then clear it. A ``marker``
    of "checkpoint" also counts a kept ``checkpoint.old/`` (:meth:`RunDir.latest_checkpoint`)."""
    held = (run_dir / marker).exists() or (
        marker == "checkpoint" and RunDir(run_dir).latest_checkpoint() is not None)
    if held and not overwrite:
        raise SystemExit(f"{run_dir} already holds a run: {how_to_resume}, --overwrite to "
                         "start again, or --name for a new one")
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)


def _train(args: argparse.Namespace) -> int:
    from dslib import distributed
    from dslib.trainer import Trainer

    dist = distributed.init_from_env()  # several processes under accelerate launch / torchrun
    if args.resume:
        if args.set or args.mode or args.tiny:
            raise SystemExit("--resume continues a run as configured: drop --set/--mode/--tiny "
                             "(or edit RUN_DIR/config.json and add --accept-config)")
        try:
            trainer = Trainer.resume(args.resume, accept_config=args.accept_config)
        except (FileNotFoundError, RunDirError, ValueError) as err:
            raise SystemExit(str(err)) from None
    else:
        if args.accept_config:
            raise SystemExit("--accept-config goes with --resume RUN_DIR")
        cfg = _config(args)
        run_dir = Path(args.runs) / (args.name or f"{args.preset}-{cfg.mode}-s{cfg.run.seed}")
        if dist.main:
            _fresh_dir(run_dir, "checkpoint", args.overwrite, f"--resume {run_dir} to continue")
        try:
            trainer = Trainer(cfg, run_dir)
        except (OSError, ValueError, RunDirError) as err:  # a bad subset / buffer / folder
            raise SystemExit(str(err)) from None
    t0 = time.perf_counter()
    try:
        history = trainer.train()
    except RunDirError as err:  # a full disk, an aborted attempt's checkpoint: file + what to do
        raise SystemExit(str(err)) from None
    if dist.main:
        print(f"run: {trainer.run_dir}  ({time.perf_counter() - t0:.0f} s this call"
              + (f", {dist.world} processes)" if dist.active else ")"))
        print(report.summary_table({trainer.cfg.mode: history}))
    return 0


def _compare(args: argparse.Namespace) -> int:
    try:
        histories = {path: report.read_history(path) for path in args.runs}
        groups = report.group_by_config(args.runs) if args.seeds else {}
    except (FileNotFoundError, RunDirError) as err:
        raise SystemExit(str(err)) from None
    names = [Path(p).name for p in histories]
    unique = len(set(names)) == len(names)  # else label runs by their path
    runs = {(Path(p).name if unique else p): rows for p, rows in histories.items()}
    if args.seeds:
        print(report.seed_table({label: [histories[d] for d in dirs]
                                 for label, dirs in groups.items()}))
    else:
        print(report.summary_table(runs))
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

    cfg, rcfg = _config(args), _rounds_config(args)
    out = Path(args.out or Path(args.runs) / f"filter-{args.preset}.jsonl")
    try:
        header, records = filter_pool(
            cfg, out, k=rcfg.k, delta=rcfg.delta, strict=rcfg.strict, pool_size=args.pool,
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
    print(f"train on them: dslib train --preset {args.preset} --set task.train_subset={out}")
    return 0


def _rounds_config(args: argparse.Namespace) -> RoundsConfig:
    given = {"rounds": getattr(args, "rounds", None), "pool_size": args.pool, "k": args.k,
             "steps_per_round": getattr(args, "steps_per_round", None), "delta": args.delta,
             "strict": args.strict, "register_rule": getattr(args, "register_rule", None),
             "restart_from_base": getattr(args, "restart_from_base", None)}
    try:
        return update(presets.rounds_preset(args.preset),
                      {k: v for k, v in given.items() if v is not None})
    except ValueError as err:
        raise SystemExit(f"--rounds/--steps-per-round/--k/--delta/--pool: {err}") from None


def _rounds(args: argparse.Namespace) -> int:
    from dslib.rounds import Rounds, table6

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SystemExit("dslib rounds runs in one process (its filter and buffer files are "
                         "written by one writer); launch `dslib train` with --set "
                         "task.train_subset=... --set rollout.replay_buffer=... per round instead")
    cfg, rcfg = _config(args), _rounds_config(args)
    out = Path(args.runs) / (args.name or f"{args.preset}-rounds-{cfg.mode}-s{cfg.run.seed}")
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
    """The ``dslib eval`` options (defaults = the paper's protocol,
    docs/paper-notes.md#evaluation)."""
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


def _training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="tiny", help=f"one of {sorted(presets.PRESETS)}")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a config field, e.g. optim.lr=1e-4 or rollout.search.width=8 "
                        "(value parsed as JSON, else a string)")
    tiny.add_build_option(p)
    p.add_argument("--runs", default="runs", help="directory holding run directories")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dslib", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train with DeepSearch or the flat GRPO baseline")
    _training_options(tr)
    tr.add_argument("--mode", choices=list(MODES), default=None,
                    help="rollout.strategy: tree (deepsearch), flat (grpo) or adaptive "
                         "(adaptive-grpo)")
    tr.add_argument("--name", default=None, help="run name (default: preset-mode-seed)")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR")
    tr.add_argument("--accept-config", action="store_true",
                    help="with --resume: continue with an edited RUN_DIR/config.json (the "
                         "fields that differ from the checkpoint's config are listed)")
    tr.add_argument("--overwrite", action="store_true")
    tr.set_defaults(func=_train)

    def filtering(p: argparse.ArgumentParser) -> None:
        _training_options(p)
        p.add_argument("--k", type=int, default=None,
                       help="direct rollouts per problem (Pass1@K; default: the preset's, 4)")
        p.add_argument("--delta", type=float, default=None,
                       help="keep problems with rate <= it (default: the preset's, 0.25)")
        p.add_argument("--strict", action="store_true", default=None,
                       help="the paper's rate < delta")
        p.add_argument("--pool", type=int, default=None,
                       help="filter a seeded sample of this many training problems "
                            "(filter default: all; rounds default: the preset's, tiny: 400)")

    flt = sub.add_parser("filter", help="Pass1@K of the model: the hard subset as a JSONL file")
    filtering(flt)
    flt.add_argument("--out", default=None, help="default: RUNS/filter-PRESET.jsonl")
    flt.set_defaults(func=_filter)
    rnd = sub.add_parser("rounds", help="multi-round training with filtering and a replay buffer")
    filtering(rnd)
    rnd.add_argument("--mode", choices=list(MODES), default=None)
    rnd.add_argument("--rounds", type=int, default=None, help="default: the preset's (tiny: 3)")
    rnd.add_argument("--steps-per-round", type=int, default=None,
                     help="default: the preset's (tiny: 50)")
    rnd.add_argument("--register-rule", choices=["code", "paper"], default=None,
                     help="replay-buffer registration rule (default: code)")
    rnd.add_argument("--restart-from-base", action="store_true", default=None,
                     help="every round starts from the base model (the released round1.sh)")
    rnd.add_argument("--name", default=None, help="default: PRESET-rounds-MODE-sSEED")
    rnd.add_argument("--overwrite", action="store_true",
                     help="start again (the same command without it resumes)")
    rnd.set_defaults(func=_rounds)
    ev = sub.add_parser("eval", help="avg@k on the six math benchmarks "
                        "(docs/paper-notes.md#evaluation)")
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
