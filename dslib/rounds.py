"""Multi-round training: filter -> train with the replay buffer -> register -> re-filter.

Paper notes: docs/paper-notes.md#rounds and #table-6 (v4 Sec. 4, App. B.3, Table 6). Round i
(1-based, as Table 6 counts):

    D_hard^(1)  = { x in pool       | Pass1@K(x, pi^(0)) <= delta }      filter-1.jsonl
    R^(1)       = {}                                                     ("round 1 begins with an
                                                                           empty replay buffer")
    round i     : train ``steps_per_round`` steps on D_hard^(i) with R^(i)   round-i/
                  (buffered problems skip the search: hybrid groups,
                  docs/paper-notes.md#hybrid-groups)
    D_hard^(i+1)= { x in D_hard^(i) | Pass1@K(x, pi^(i)) <= delta }      filter-{i+1}.jsonl
    R^(i+1)     = R^(i) U register(round i's logged rollouts)             buffer-{i+1}.json

Each round starts from the previous round's final checkpoint (``restart_from_base=True``
starts every round from the base model instead, as the released ``round1.sh`` does: it sets the
base model path again, docs/paper-notes.md#rounds "Inconsistency"). The filter of round i+1 always
uses the trained pi^(i).

Table 6 counts, per round, the problems of D_hard^(i) that are in R^(i) ("cached") and the
rest ("unsolved"); ``cached ratio`` = cached / |D_hard^(i)|. We add what the cache saved: the
searches skipped (cached groups over the round's steps) and an estimate of the sampled tokens
they would have cost (skipped searches x the round's mean sampled tokens per searched tree,
minus the direct rollouts the cached groups still sampled).

Files of a rounds directory (``runs/<name>/``): ``rounds.json`` (config + one row per round,
rewritten after every stage, so a killed run resumes at the stage it was in), ``filter-i.jsonl``,
``buffer-i.json``, ``round-i/`` (an ordinary run directory), ``table6.md``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dslib import build
from dslib.build import Task
from dslib.config import RoundsConfig, TrainConfig, update
from dslib.files import atomic_write
from dslib.filtering import filter_file, read_filter
from dslib.policy.make import make_policy
from dslib.replay import ReplayBuffer
from dslib.rundir import RunDir, read_jsonl
from dslib.trainer import Trainer


def round_seed(seed: int, index: int) -> int:
    """Round ``index``'s training seed: each round draws its own problem order and samples."""
    return seed + 1000 * (index - 1)


def round_config(cfg: TrainConfig, rcfg: RoundsConfig, index: int, model: str,
                 subset: Path | None, buffer: Path | None) -> TrainConfig:
    """The TrainConfig of round ``index``: the base config on D_hard^(i) with R^(i).

    A later round that continues a checkpoint drops ``tiny_build``: the checkpoint carries its
    build's ``build_info.json`` (and so its problem splits).
    """
    task = dataclasses.replace(
        cfg.task, model=model, tiny_build=cfg.task.tiny_build if model == "tiny" else (),
        train_subset=str(subset) if subset is not None else None)
    return update(cfg, {
        "task": task, "run.steps": rcfg.steps_per_round,
        "run.seed": round_seed(cfg.run.seed, index),
        "rollout.replay_buffer": str(buffer) if buffer is not None else None,
        "run.log_rollouts": True,
        "eval.every": cfg.eval.every and rcfg.steps_per_round,
        "eval.at_start": index == 1 or rcfg.restart_from_base,
    })


def round_outcomes(rollouts: Path) -> dict[str, list[tuple[list[int], bool]]]:
    """problem id -> every (response ids, correct) logged in a round's ``rollouts.jsonl``."""
    out: dict[str, list[tuple[list[int], bool]]] = {}
    for row in read_jsonl(rollouts):  # no file: no rows; a torn last line: dropped, warned
        out.setdefault(str(row["problem_id"]), []).append(
            (list(row["response_ids"]), bool(row["correct"])))
    return out


def cache_savings(rows: Sequence[dict[str, Any]], problems_per_step: int) -> dict[str, float]:
    """What the round's cached groups saved, from its metrics rows (module docstring).

    | key                     | meaning                                                   |
    |-------------------------|-----------------------------------------------------------|
    | ``searches_skipped``    | cached groups summed over steps                           |
    | ``searched``            | problems that went through the search                     |
    | ``tokens_per_search``   | mean sampled tokens per searched problem                  |
    | ``direct_tokens``       | tokens the cached groups' direct rollouts still sampled   |
    | ``saved_tokens``        | skipped x tokens_per_search - direct_tokens (>= 0)        |
    | ``sampled_tokens``      | everything the round sampled                              |
    | ``saved_share``         | saved / (sampled + saved)                                 |
    """
    train = [r for r in rows if r.get("kind") == "train"]
    skipped = sum(int(r.get("cached_groups", 0)) for r in train)
    direct = sum(int(r.get("cache_sampled_tokens", 0)) for r in train)
    sampled = sum(int(r.get("sampled_tokens", 0)) for r in train)
    searched = problems_per_step * len(train) - skipped
    per_search = (sampled - direct) / searched if searched > 0 else 0.0
    saved = max(0.0, skipped * per_search - direct)
    total = sampled + saved
    return {"searches_skipped": skipped, "searched": searched, "tokens_per_search": per_search,
            "direct_tokens": direct, "saved_tokens": saved, "sampled_tokens": sampled,
            "saved_share": saved / total if total else 0.0}


def table6(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown in the shape of the paper's Table 6, plus compute and held-out columns."""
    levels = sorted({k for r in rows for k in r.get("eval_after", {})})
    head = ("| round | # cached | # unsolved | cached ratio | searches skipped | sampled tokens "
            "| saved tokens (est.) | " + " | ".join(f"{lv} after" for lv in levels) + " |")
    lines = [head, "|" + "---|" * (7 + len(levels))]
    for r in rows:
        sav = r.get("savings", {})
        ev = r.get("eval_after", {})
        lines.append(
            f"| {r['round']} | {r['cached']} | {r['unsolved']} | {r['cached_ratio']:.1%} | "
            f"{sav.get('searches_skipped', 0)} | {sav.get('sampled_tokens', 0):,} | "
            f"{sav.get('saved_tokens', 0):,.0f} ({sav.get('saved_share', 0):.1%}) | "
            + " | ".join(f"{ev.get(lv, float('nan')):.3f}" for lv in levels) + " |"
        )
    return "\n".join(lines)


class Rounds:
    """Drives the round loop in ``out_dir``; re-running it resumes where it stopped.

    Finished rounds are kept; an interrupted round resumes its training run from its last
    checkpoint and redoes the (deterministic) filter and registration. ``rounds`` may grow
    between calls (3 rounds, then 5); every other setting must match the saved one.
    """

    def __init__(self, cfg: TrainConfig, rcfg: RoundsConfig, out_dir: str | Path,
                 progress: bool = True) -> None:
        self.cfg, self.rcfg, self.out = cfg, rcfg, Path(out_dir)
        self.progress = progress
        self.state_path = self.out / "rounds.json"
        if self.state_path.exists():
            state = json.loads(self.state_path.read_text())
            mine = _as_json(dataclasses.asdict(rcfg) | {"rounds": None})
            theirs = dict(state["rounds_config"]) | {"rounds": None}
            saved = _as_json(TrainConfig.from_dict(state["train_config"]).to_dict())
            if saved != _as_json(cfg.to_dict()) or mine != theirs:
                raise ValueError(f"{self.out} holds rounds with another configuration: "
                                 "resume with the same settings (only --rounds may grow), "
                                 "or pick a new name")
            self.rows: list[dict[str, Any]] = state["rows"]
        else:
            self.rows = []

    # ------------------------------------------------------------------ files
    def filter_path(self, i: int) -> Path:
        return self.out / f"filter-{i}.jsonl"

    def buffer_path(self, i: int) -> Path:
        return self.out / f"buffer-{i}.json"

    def run_dir(self, i: int) -> Path:
        return self.out / f"round-{i}"

    def _save(self) -> None:
        atomic_write(self.state_path, json.dumps({
            "train_config": self.cfg.to_dict(), "rounds_config": dataclasses.asdict(self.rcfg),
            "rows": self.rows}, indent=2))
        atomic_write(self.out / "table6.md", table6(self.rows) + "\n")

    # ------------------------------------------------------------------ loop
    def run(self) -> list[dict[str, Any]]:
        """All rounds; returns one row per round (also in ``rounds.json`` / ``table6.md``)."""
        self.out.mkdir(parents=True, exist_ok=True)
        for i in range(len(self.rows) + 1, self.rcfg.rounds + 1):
            self.rows.append(self.run_round(i))
            self._save()
        return self.rows

    def base_model(self) -> str:
        return self.cfg.task.model

    def model_for(self, i: int) -> str:
        if i == 1 or self.rcfg.restart_from_base:
            return self.base_model()
        return str(self.run_dir(i - 1) / "checkpoint")

    def run_round(self, i: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        subset = self.filter_path(i) if i > 1 or self.rcfg.filter_first else None
        if i == 1 and subset is not None:  # later ones come at round end
            self.first_filter()  # an existing filter-1.jsonl is reused if it still fits
        if i == 1 and not self.buffer_path(1).exists():
            ReplayBuffer().save(self.buffer_path(1))
        buffer = ReplayBuffer.load(self.buffer_path(i))
        rcfg = round_config(self.cfg, self.rcfg, i, self.model_for(i), subset,
                            self.buffer_path(i) if len(buffer) else None)
        trainer = self.trainer_for(i, rcfg)
        hard = [str(it.id) for it in trainer.task.train_items]  # D_hard^(i)
        cached = sum(pid in buffer for pid in hard)
        history = trainer.train()
        # D_hard^(i+1) with the trained pi^(i), over D_hard^(i) only
        self.write_filter(i + 1, trainer.policy, trainer.model, trainer.task,
                          list(trainer.task.train_items))
        nxt = ReplayBuffer.load(self.buffer_path(i))
        outcomes = round_outcomes(self.run_dir(i) / "rollouts.jsonl")
        rates = None
        if self.rcfg.register_rule == "paper":
            _, recs = read_filter(self.filter_path(i + 1))
            rates = {r.id: r.rate for r in recs}
            outcomes = {k: v for k, v in outcomes.items() if k in rates}
        registered = nxt.register_round(outcomes, self.rcfg.register_threshold,
                                        self.rcfg.register_rule, round=i, fresh_rates=rates)
        nxt.save(self.buffer_path(i + 1))
        evals = [r for r in history if r.get("kind") == "eval"]
        last = evals[-1] if evals else {}
        return {
            "round": i, "hard": len(hard), "cached": cached, "unsolved": len(hard) - cached,
            "cached_ratio": cached / len(hard) if hard else 0.0,
            "buffer_problems": len(buffer), "registered": len(registered),
            "savings": cache_savings(history, rcfg.run.problems_per_step),
            "eval_after": {k[: -len("/pass@1")]: v for k, v in last.items()
                           if k.endswith("/pass@1")},
            "model": rcfg.task.model, "wall_s": time.perf_counter() - t0,
        }

    def trainer_for(self, i: int, rcfg: TrainConfig) -> Trainer:
        run_dir = self.run_dir(i)
        if RunDir(run_dir).latest_checkpoint() is not None:
            return Trainer.resume(run_dir, progress=self.progress)
        return Trainer(rcfg, run_dir, progress=self.progress)

    def history(self) -> list[dict[str, Any]]:
        """Every finished round's metrics rows as one run (:func:`joined_history`).

        What ``viz.plot_training`` and ``dslib compare`` read; a round's start-of-round
        evaluation (``restart_from_base``) keeps its own step, so the curves show the restart.
        """
        return joined_history([self.run_dir(i) for i in range(1, len(self.rows) + 1)])

    # ------------------------------------------------------------------ filtering
    def first_filter(self) -> None:
        """filter-1.jsonl: Pass1@K of the base model on the pool (a seeded sample if capped).
        A file left by an interrupted call is reused only if its model fingerprint, settings
        and problems match (``filtering.filter_file(reuse=True)``); else filtered again."""
        filter_pool(self.cfg, self.filter_path(1), k=self.rcfg.k, delta=self.rcfg.delta,
                    strict=self.rcfg.strict, pool_size=self.rcfg.pool_size,
                    progress=self.progress, reuse=True)

    def write_filter(self, i: int, policy: Any, model: Any, task: Task, items: list[Any]) -> None:
        """filter-i.jsonl: Pass1@K of ``policy`` on ``items``, seeded by the round."""
        write_round_filter(self.cfg, i, self.filter_path(i), policy, model, task, items,
                           self.rcfg.k, self.rcfg.delta, self.rcfg.strict, self.progress)


def joined_history(round_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """The metrics rows of consecutive round runs (``round-1``, ``round-2``, ... in order) as
    one run: each row gets its ``round`` (1, 2, ...), and steps and
    ``cumulative_sampled_tokens`` continue from the round before."""
    out: list[dict[str, Any]] = []
    step0, tokens0 = 0, 0
    for i, run in enumerate(round_dirs, start=1):
        for r in read_jsonl(Path(run) / "metrics.jsonl"):
            r = dict(r, step=r["step"] + step0, round=i)
            if "cumulative_sampled_tokens" in r:
                r["cumulative_sampled_tokens"] += tokens0
            out.append(r)
        train = [r for r in out if r.get("kind") == "train"]
        step0 = train[-1]["step"] if train else step0
        tokens0 = train[-1]["cumulative_sampled_tokens"] if train else tokens0
    return out


def filter_pool(cfg: TrainConfig, path: str | Path, k: int = 4, delta: float = 0.25,
                strict: bool = False, pool_size: int | None = None,
                config: dict[str, Any] | None = None, progress: bool = True,
                reuse: bool = False) -> tuple[Any, list[Any]]:
    """Pass1@K of ``cfg.task.model`` on its training pool (a seeded sample of ``pool_size``).

    What ``dslib filter`` writes, and the first filter of :class:`Rounds` with the same
    settings (same pool, same seed: the same file). ``reuse``: keep a matching file at
    ``path`` (``filtering.filter_file``).
    """
    model, task = build.model_and_task(update(cfg, {"task.train_subset": None}))
    pool = list(task.train_items)
    if pool_size is not None and pool_size < len(pool):
        pool = random.Random(cfg.run.seed).sample(pool, pool_size)
    return write_round_filter(cfg, 1, Path(path), make_policy(model, seed=cfg.run.seed), model,
                              task, pool, k, delta, strict, progress, config, reuse)


def write_round_filter(cfg: TrainConfig, i: int, path: Path, policy: Any, model: Any,
                       task: Task, items: list[Any], k: int, delta: float, strict: bool,
                       progress: bool, config: dict[str, Any] | None = None,
                       reuse: bool = False) -> tuple[Any, list[Any]]:
    """The filter before round ``i``: Pass1@K of ``policy`` on ``items``, seeded by (seed, i)."""
    policy.seed(cfg.run.seed * 1_000_003 + 7919 * i)
    return filter_file(
        policy, model, items, task.verifier, path, k=k, delta=delta, strict=strict,
        max_new_tokens=cfg.rollout.max_new_tokens, temperature=cfg.rollout.temperature,
        config={"round": i, "model": cfg.task.model, "train_levels": list(cfg.task.levels),
                "split": cfg.task.split, "seed": cfg.run.seed, **(config or {})},
        progress=progress, reuse=reuse,
    )


def _as_json(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(data))
