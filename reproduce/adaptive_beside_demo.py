"""The equal-compute baseline beside a finished full run: adaptive flat GRPO against DeepSearch.

    python reproduce/adaptive_beside_demo.py runs/demo      # after `make demo` (3 seeds)

Notebook 06 compares DeepSearch with flat GRPO at equal *steps*, where DeepSearch samples
about 2.4 times the tokens. The fair rival of a tree spends what the tree spends on a problem:
the ``adaptive`` rollout strategy (``dslib.rollouts.AdaptiveRollout``) samples a problem in
rounds of ``rollout.adaptive.chunk`` until its group holds a correct and a wrong answer (a
non-zero advantage) or it has spent ``rollout.adaptive.budget_tokens``.

For each seed ``S`` of the run folder this trains, into ``seed-S/adaptive``, the flat
baseline's own config (``seed-S/grpo/config.json``: same hard subset, steps, evaluations)
with ``rollout.strategy=adaptive`` and a budget equal to the tree's mean sampled tokens per
problem in ``seed-S/deepsearch`` (``report.sampled_tokens_per_problem``, cached problems left
out, averaged over the rounds). A finished run is reused, a stopped one resumed. Then it writes
``adaptive.md`` in the run folder and prints it: the paired comparisons (``report.paired``) of
DeepSearch and of flat GRPO against the adaptive baseline, at equal steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def seeds_of(run: Path) -> list[int]:
    """The seeds ``S`` with both ``seed-S/deepsearch`` and ``seed-S/grpo`` in ``run``."""
    found = sorted(int(p.name[len("seed-"):]) for p in run.glob("seed-*")
                   if (p / "deepsearch").is_dir() and (p / "grpo" / "config.json").exists())
    if not found:
        raise SystemExit(f"{run}: no seed-S/deepsearch with seed-S/grpo beside it; run "
                         "notebook 06 (make demo) into this folder first")
    return found


def round_dirs(deepsearch: Path) -> list[Path]:
    """``round-1``, ``round-2``, ... of a finished rounds run, in order."""
    dirs = sorted((p.parent for p in deepsearch.glob("round-*/metrics.jsonl")),
                  key=lambda p: int(p.name[len("round-"):]))
    if not dirs:
        raise SystemExit(f"{deepsearch}: no round-i/metrics.jsonl (not a finished rounds run)")
    return dirs


def tree_budget(deepsearch: Path) -> int:
    """The tree's mean sampled tokens per searched problem, over the rounds of a rounds run."""
    from dslib.report import sampled_tokens_per_problem

    return max(1, round(statistics.mean(sampled_tokens_per_problem(d)
                                        for d in round_dirs(deepsearch))))


def train_adaptive(seed_dir: Path, budget: int, progress: bool = True) -> list[dict]:
    """``seed_dir/adaptive``: the flat baseline's config with the adaptive strategy."""
    from dslib.config import TrainConfig, update
    from dslib.rundir import RunDir
    from dslib.trainer import Trainer

    flat = TrainConfig.from_dict(json.loads((seed_dir / "grpo" / "config.json").read_text()))
    cfg = update(flat, {"rollout.strategy": "adaptive",
                        "rollout.adaptive.budget_tokens": budget})
    out = seed_dir / "adaptive"
    if RunDir(out).latest_checkpoint() is not None:
        return Trainer.resume(out, progress=progress).train()
    return Trainer(cfg, out, progress=progress).train()


def main(argv: list[str] | None = None) -> int:
    from dslib import report
    from dslib.rounds import joined_history

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a notebook 06 output folder (make demo: runs/demo)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    seeds = seeds_of(args.run)
    ds, flat, adaptive, budgets = [], [], [], []
    for seed in seeds:
        seed_dir = args.run / f"seed-{seed}"
        budgets.append(tree_budget(seed_dir / "deepsearch"))
        print(f"seed {seed}: adaptive flat GRPO, budget {budgets[-1]} tokens per problem",
              flush=True)
        adaptive.append(train_adaptive(seed_dir, budgets[-1], not args.no_progress))
        ds.append(joined_history(round_dirs(seed_dir / "deepsearch")))
        flat.append(report.read_history(seed_dir / "grpo"))
    lines = [f"# Adaptive flat GRPO beside `{args.run}` (seeds {seeds})", "",
             f"Budget per problem (the tree's mean sampled tokens): {budgets}.", "",
             "## DeepSearch against adaptive flat GRPO, at equal steps", ""]
    rows = report.paired(ds, adaptive)
    lines += [report.paired_table(rows, "DeepSearch", "adaptive"), "",
              "**Verdict.** " + report.verdict(rows, "DeepSearch", "adaptive"), "",
              "## Flat GRPO against adaptive flat GRPO, at equal steps", ""]
    rows = report.paired(flat, adaptive)
    lines += [report.paired_table(rows, "flat", "adaptive"), "",
              "**Verdict.** " + report.verdict(rows, "flat", "adaptive"), ""]
    text = "\n".join(lines)
    (args.run / "adaptive.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
