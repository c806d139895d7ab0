"""Reading finished runs: summary tables, mean ± std over seeds, comparisons.

What ``dslib compare`` prints, and what ``reproduce/`` scripts and notebook 06 use to report:

| function          | input                                   | output                          |
|-------------------|-----------------------------------------|---------------------------------|
| ``read_history``  | a run directory                         | its ``metrics.jsonl`` rows      |
| ``summary_table`` | run name -> metrics rows                | held-out pass@1 before / after  |
| ``mean_std``      | numbers                                 | ``"0.200 ± 0.021"``             |
| ``group_by_config``| run directories                        | runs that differ only in seed   |
| ``seed_table``    | group -> the histories of its seeds     | mean ± std of before / after    |
| ``sampled_tokens_per_problem`` | a run directory            | mean sampled tokens per problem |
|                   |                                         | (the adaptive strategy's budget)|
| ``paired``        | two methods' histories, one per seed    | per set: changes, their paired  |
|                   |                                         | difference with a 95 % interval,|
|                   |                                         | at equal steps or equal tokens  |
| ``paired_table`` / ``verdict`` | ``paired``'s rows          | markdown table / one sentence   |
| ``sampled_tokens`` / ``train_seconds`` | metrics rows       | what a run spent                |
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dslib.config import TrainConfig
from dslib.rundir import CONFIG, METRICS, read_jsonl
from dslib.viz import before_after


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The metrics rows of a run directory; a directory without ``metrics.jsonl`` is an error
    naming it. A torn last line is dropped with a warning, a bad line before it is a
    :class:`~dslib.rundir.RunDirError` naming file and line (:func:`dslib.rundir.read_jsonl`)."""
    metrics = Path(run_dir) / METRICS
    if not metrics.exists():
        raise FileNotFoundError(f"{run_dir}: no metrics.jsonl (not a run directory?)")
    return read_jsonl(metrics)


def summary_table(runs: dict[str, Sequence[dict[str, Any]]]) -> str:
    """Markdown: held-out pass@1 per set before (first eval) and after (last eval), per run."""
    lines = ["| run | set | pass@1 before | pass@1 after | change | steps | sampled tokens "
             "| train time (s) |", "|---|---|---|---|---|---|---|---|"]
    for name, rows in runs.items():
        evals = [r for r in rows if r.get("kind") == "eval"]
        train = [r for r in rows if r.get("kind") == "train"]
        wall = train_seconds(rows)
        tokens = int(sampled_tokens(rows))
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
            raise FileNotFoundError(f"{d}: no config.json (not a run directory?)")
        cfg = json.loads(cfg_file.read_text())
        cfg.get("run", {}).pop("seed", None)
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


def sampled_tokens_per_problem(run_dir: str | Path) -> float:
    """Mean sampled tokens per problem the strategy made a group for, over a run's training
    steps: sum(``sampled_tokens`` - ``cache_sampled_tokens``) / sum(``run.problems_per_step``
    - ``cache_cached_problems``) (replay-buffer hits left out; the groups of all ranks are in
    each row). Of a DeepSearch run it is the tree's mean, the equal-compute value of
    ``rollout.adaptive.budget_tokens`` (:class:`dslib.config.AdaptiveConfig`)."""
    cfg_file = Path(run_dir) / CONFIG
    if not cfg_file.exists():
        raise FileNotFoundError(f"{run_dir}: no config.json (not a run directory?)")
    per_step = TrainConfig.from_dict(json.loads(cfg_file.read_text())).run.problems_per_step
    tokens = problems = 0.0
    for row in read_history(run_dir):
        if row.get("kind") == "train":
            tokens += row["sampled_tokens"] - row.get("cache_sampled_tokens", 0)
            problems += per_step - row.get("cache_cached_problems", 0)
    if problems <= 0:
        raise ValueError(f"{run_dir}: no training step sampled a problem (every one cached, or "
                         "no step logged yet); train it first")
    return tokens / problems


#: two-sided 95 % quantiles of Student's t by degrees of freedom (n seeds - 1); 2.0 beyond
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
       10: 2.23}


@dataclass(frozen=True)
class Paired:
    """Method A against method B on one held-out set, seed by seed (same seed = same base
    model, same first filter, same evaluation problems, so the differences pair up)."""

    name: str
    """the held-out set (``L4``, ...)"""
    changes_a: tuple[float, ...]
    """pass@1 after - before of A, one per seed"""
    changes_b: tuple[float, ...]
    """the same for B, in the same seed order"""
    tokens_a: float
    """A's sampled tokens, mean over seeds"""
    tokens_b: float
    """B's sampled tokens, mean over seeds"""

    @property
    def diff(self) -> tuple[float, float]:
        """Mean and standard error over seeds of (change of A - change of B)."""
        d = [a - b for a, b in zip(self.changes_a, self.changes_b, strict=True)]
        mean = statistics.mean(d)
        se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
        return mean, se

    @property
    def interval(self) -> tuple[float, float]:
        """95 % interval of the mean difference (Student's t; NaN for one seed)."""
        mean, se = self.diff
        half = T95.get(len(self.changes_a) - 1, 2.0) * se
        return mean - half, mean + half


def paired(a: Sequence[Sequence[dict[str, Any]]], b: Sequence[Sequence[dict[str, Any]]],
           equal_tokens: bool = False) -> list[Paired]:
    """Per held-out set, the changes of two methods trained with the same seeds (histories in
    the same seed order) and what each spent; a set missing from a run is left out.

    ``equal_tokens``: A's "after" is its last evaluation made before A had sampled more tokens
    than B's whole run (the first evaluation if none), so both are compared at (at most) B's
    compute; ``tokens_a`` is then what A had spent at that evaluation.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"paired needs the same seeds for both methods, got {len(a)} and "
                         f"{len(b)} histories")
    if equal_tokens:
        a = [_until(h, sampled_tokens(hb)) for h, hb in zip(a, b, strict=True)]
    ba_a, ba_b = [before_after(h) for h in a], [before_after(h) for h in b]
    names = [n for n in ba_a[0] if all(n in t for t in ba_a + ba_b)]
    return [Paired(n, tuple(t[n][1] - t[n][0] for t in ba_a),
                   tuple(t[n][1] - t[n][0] for t in ba_b),
                   statistics.mean(sampled_tokens(h) for h in a),
                   statistics.mean(sampled_tokens(h) for h in b))
            for n in names]


def _until(history: Sequence[dict[str, Any]], budget: float) -> list[dict[str, Any]]:
    """The rows of a run up to its last evaluation at or below ``budget`` sampled tokens."""
    spent, keep, end = 0.0, [], 0
    for row in history:
        if row.get("kind") == "train":
            spent = row.get("cumulative_sampled_tokens", spent)
        if spent > budget:
            break
        keep.append(row)
        if row.get("kind") == "eval":
            end = len(keep)
    return keep[:end] if end else keep


def sampled_tokens(history: Sequence[dict[str, Any]]) -> float:
    """The tokens a run had sampled by its last training step (0 before any step)."""
    train = [r for r in history if r.get("kind") == "train"]
    return float(train[-1].get("cumulative_sampled_tokens", 0)) if train else 0.0


def train_seconds(history: Sequence[dict[str, Any]]) -> float:
    """Wall time of a run's training steps (``wall_s`` summed; a resumed run keeps its own)."""
    return float(sum(r.get("wall_s", 0.0) for r in history if r.get("kind") == "train"))


def paired_table(rows: Sequence[Paired], a: str = "A", b: str = "B") -> str:
    """Markdown: per set, each method's change (mean ± std over seeds), the paired difference
    (mean ± standard error) with its 95 % interval, and the sampled-token ratio."""
    n = len(rows[0].changes_a) if rows else 0
    lines = [f"| set | change {a} | change {b} | {a} - {b} (± s.e.) | 95 % interval | "
             f"tokens {a} / {b} |", "|---|---|---|---|---|---|"]
    for r in rows:
        mean, se = r.diff
        lo, hi = r.interval
        ratio = r.tokens_a / r.tokens_b if r.tokens_b else float("nan")
        lines.append(f"| {r.name} | {_signed(mean_std(r.changes_a))} | "
                     f"{_signed(mean_std(r.changes_b))} | {mean:+.3f} ± {se:.3f} | "
                     f"[{lo:+.3f}, {hi:+.3f}] | {ratio:.2f} |")
    return "\n".join(lines) + f"\n\nChanges: mean ± std over {n} seed(s)."


def verdict(rows: Sequence[Paired], a: str = "A", b: str = "B") -> str:
    """One sentence per set: who is ahead, by how much, or that the difference is within the
    noise (its 95 % interval holds 0); with one seed there is no noise estimate to judge by."""
    out = []
    for r in rows:
        mean, se = r.diff
        lo, hi = r.interval
        n = len(r.changes_a)
        if n < 2:
            out.append(f"{r.name}: {a} {mean:+.3f} against {b} on one seed; one seed cannot "
                       "tell a difference from noise.")
        elif lo > 0 or hi < 0:
            win, lose = (a, b) if mean > 0 else (b, a)
            out.append(f"{r.name}: {win} ahead of {lose} by {abs(mean):.3f} ± {se:.3f} "
                       f"(95 % interval [{lo:+.3f}, {hi:+.3f}], {n} seeds).")
        else:
            out.append(f"{r.name}: neither ahead; {a} - {b} = {mean:+.3f} ± {se:.3f}, "
                       f"95 % interval [{lo:+.3f}, {hi:+.3f}] holds 0 ({n} seeds).")
    return " ".join(out)
