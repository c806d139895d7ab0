"""The RL loop: draw problems -> groups -> gather -> filters -> learner.update -> log, checkpoint.

One training step (docs/paper-notes.md#tree-grpo, #hyperparameters; the released code's
``ray_trainer.fit`` + MCTS rollout):

1. draw ``run.problems_per_step`` problems (a fixed shuffle per epoch, seeded) and keep this
   rank's share (:mod:`dslib.distributed`);
2. one :class:`~dslib.rollouts.Group` per problem: problems in the replay buffer get a cached
   group (cached solutions + direct samples, one batched call), the others go to the
   configured strategy in one call: ``search.run`` over all trees (DeepSearch) or flat samples
   (GRPO); every sample leaves with its per-token advantages (:mod:`dslib.rollouts`);
3. the groups of every rank are gathered, so every rank holds the global batch;
4. the named filters of ``cfg.filters`` drop samples or groups from the update;
5. :meth:`Learner.update <dslib.learner.Learner.update>`: old log-probs recomputed, clipped
   updates, new weights pushed to the sampler;
6. rank 0 logs the metrics row, evaluates every ``eval.every`` steps and writes the checkpoint
   every ``run.checkpoint_every`` steps (:mod:`dslib.rundir`).

State lives in :class:`Trainer` only. Every step reseeds every random source from
``(seed, step)``, so a run resumed from a checkpoint continues exactly as if never stopped
(model, optimizer and scheduler come from the checkpoint; nothing else carries state).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from dslib import build, distributed, hygiene, rollouts, viz
from dslib.config import TrainConfig
from dslib.evaluate import evaluate
from dslib.learner import Learner
from dslib.progress import progress_bar
from dslib.replay import ReplayBuffer
from dslib.rollouts import Group
from dslib.rundir import RunDir, RunDirError, config_diff

#: ``TrainConfig.filters``: name -> (metrics key counting the samples it drops, the filter)
FILTERS: dict[str, tuple[str, Callable[[Sequence[Group], Any], list[Group]]]] = {
    "hygiene": ("hygiene_dropped", hygiene.drop_degenerate),
    "drop_unsolved": ("unsolved_dropped", rollouts.drop_unsolved),
}


class Trainer:
    """Owns the model, the sampler, the learner, the strategies and the run directory.

    ``Trainer(cfg, run_dir)`` starts a run (the model from ``cfg.task.model``);
    ``Trainer.resume(run_dir)`` continues one from its checkpoint. ``model``/``task`` can be
    passed in (tests, notebooks) to skip loading them; ``buffer`` replaces the replay buffer
    of ``cfg.rollout.replay_buffer``.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, *, model: Any = None,
                 task: build.Task | None = None, buffer: ReplayBuffer | None = None,
                 progress: bool = True) -> None:
        self.cfg = cfg
        self.dist = distributed.current()
        self.run_dir = Path(run_dir)
        self.files = RunDir(run_dir, keep_previous=cfg.run.keep_previous_checkpoint)
        if self.dist.main:  # before any model loading or training work
            self.files.check_writable()
        #: the step a resume started from (None: a fresh run, :meth:`RunDir.start_fresh`)
        self.resumed_from: int | None = None
        self._opened = False
        self.progress = progress
        self.step = 0
        self.cumulative_sampled = 0
        self.history: list[dict[str, Any]] = []
        #: the groups of the latest step, before the filters (the rollout log reads them)
        self.last_groups: list[Group] = []
        if model is None or task is None:
            loaded_model, loaded_task = build.model_and_task(cfg)
            model = model if model is not None else loaded_model
            task = task if task is not None else loaded_task
        self.model, self.task = model, task
        if buffer is None and cfg.rollout.replay_buffer:
            buffer = ReplayBuffer.load(cfg.rollout.replay_buffer)
        if buffer is not None:  # a foreign tokenizer's ids would fail deep inside torch
            buffer.check_token_ids(_vocab_size(model, task.tokenizer),
                                   cfg.rollout.replay_buffer or "the replay buffer")
        torch.manual_seed(cfg.run.seed)
        self.policy = build.train_policy(cfg, model, task)
        self.learner = Learner(model, cfg.optim, self.policy, self.dist)
        self.strategy = rollouts.make_strategy(cfg.rollout, cfg.optim.grpo)
        self.cached = None if buffer is None else rollouts.CachedRollout(
            buffer, self.strategy, cfg.optim.grpo, cfg.rollout.search.incomplete_score)

    @classmethod
    def resume(cls, run_dir: str | Path, *, accept_config: bool = False,
               **kwargs: Any) -> Trainer:
        """Continue a run from ``run_dir/checkpoint`` (or the previous one, if that one is
        unreadable or a swap broke: :meth:`RunDir.load_checkpoint`).

        ``config.json`` must match the config saved in the checkpoint; an edited one is a
        :class:`~dslib.rundir.RunDirError` listing the fields, unless ``accept_config`` (CLI
        ``--accept-config``): then the run continues with the edited ``config.json``.
        """
        files = RunDir(run_dir)
        if not files.checkpoints():
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from")
        if distributed.current().main:
            files.check_writable()
        cfg = TrainConfig.from_dict(files.read_config())
        ckpt = files.load_checkpoint(lambda path: build.load_model(path, cfg))
        if "config" in ckpt.state:
            saved = TrainConfig.from_dict(ckpt.state["config"]).to_dict()
            diff = config_diff(json.loads(json.dumps(saved)), json.loads(json.dumps(cfg.to_dict())))
            if diff and not accept_config:
                raise RunDirError(
                    f"{files.path / 'config.json'} differs from the config of {ckpt.path} "
                    f"(checkpoint -> config.json): {'; '.join(diff)}. Start a new folder for "
                    "other settings, restore config.json, or accept the edit: dslib train "
                    f"--resume {run_dir} --accept-config (Trainer.resume(..., "
                    "accept_config=True))")
        trainer = cls(cfg, run_dir, model=ckpt.model, **kwargs)
        trainer.learner.load_state_dict(ckpt.optimizer)
        trainer.step = trainer.resumed_from = int(ckpt.state["step"])
        trainer.cumulative_sampled = int(ckpt.state["cumulative_sampled"])
        trainer.history = files.read_metrics(upto_step=trainer.step)
        if trainer.dist.main:  # rank 0 alone writes the run directory
            files.cut_logs(trainer.step, trainer.history)  # drop a lost step's lines
        return trainer

    # ------------------------------------------------------------------ the loop
    def train(self, steps: int | None = None) -> list[dict[str, Any]]:
        """Run until ``run.steps`` (or ``steps`` more); returns the metrics history."""
        cfg, main = self.cfg, self.dist.main  # rank 0 writes files and evaluates
        if main and not self._opened and self.resumed_from is None:
            self.files.start_fresh()  # an aborted attempt's logs go aside: no step twice
        self._opened = True
        if main:
            self.files.write_config(cfg.to_dict())
        last = cfg.run.steps if steps is None else min(cfg.run.steps, self.step + steps)
        every = cfg.eval.every
        if main and self.step == 0 and every and cfg.eval.at_start and not self._has_eval(0):
            self._log(self.evaluate())
        bar = progress_bar(range(self.step, last), enabled=self.progress and main,
                           desc=f"train {cfg.mode}")
        for _ in bar:
            row = self.train_step()
            save = self.step % cfg.run.checkpoint_every == 0 or self.step == last
            if save:
                self.learner.gather_state()  # every rank: a collective when sharded
            if not main:
                self.history.append(row)
                continue
            self._log(row)
            if cfg.run.log_rollouts:
                self.files.append_rollouts(self.rollout_rows())
            bar.set_postfix(reward=f"{row['reward']:+.2f}", acc=f"{row['accuracy']:.2f}")
            if every and (self.step % every == 0 or self.step == cfg.run.steps):
                self._log(self.evaluate())
            if save:
                self.save_checkpoint()
        if main:
            self.plot()
        return self.history

    def train_step(self) -> dict[str, Any]:
        """One training step (module docstring); returns its metrics row."""
        t0 = time.perf_counter()
        step = self.step
        self._reseed(step)
        items = distributed.shard(self.problems_for(step), self.dist)  # all of them: 1 process
        groups = self.rollouts(items, step)
        if self.dist.active:
            groups = [g for part in distributed.gather(groups, self.dist) for g in part]
        rollout_s = time.perf_counter() - t0
        self.last_groups = groups
        kept, dropped = groups, {}
        for name in self.cfg.filters:
            key, keep = FILTERS[name]
            before = len(rollouts.flatten(kept))
            kept = keep(kept, self.task.tokenizer)
            dropped[key] = before - len(rollouts.flatten(kept))
        t_upd = time.perf_counter()
        upd = self.learner.update(rollouts.flatten(kept), seed=self._seed(step, 3))
        self.step += 1
        cost = rollouts.cost_metrics(groups, with_cache=self.cached is not None)
        self.cumulative_sampled += int(cost["sampled_tokens"])
        return {
            "kind": "train", "step": self.step, "mode": self.cfg.mode,
            **rollouts.group_metrics(groups), **cost,
            "cumulative_sampled_tokens": self.cumulative_sampled, "lr": self.learner.lr,
            "rollout_s": rollout_s, "update_s": time.perf_counter() - t_upd,
            "wall_s": time.perf_counter() - t0, **upd, **dropped,
        }

    def rollouts(self, items: list[Any], step: int) -> list[Group]:
        """One group per item: the buffered ones cached (first: one batched call), the others
        from the configured strategy (one call); strategy groups first, then cached ones."""
        cached = self.cached(items, self.policy, self.task.verifier) if self.cached else []
        fresh = [it for it in items if self.cached is None or it not in self.cached]
        made = (self.strategy(fresh, self.policy, self.task.verifier, self._rank_seed(step, 2))
                if fresh else [])
        return made + cached

    def problems_for(self, step: int) -> list[Any]:
        """``problems_per_step`` items: epoch e is a fixed shuffle seeded by (seed, e)."""
        items = self.task.train_items
        k = self.cfg.run.problems_per_step
        out = []
        for pos in range(step * k, step * k + k):
            epoch, i = divmod(pos, len(items))
            order = list(range(len(items)))
            random.Random(self.cfg.run.seed * 7919 + epoch).shuffle(order)
            out.append(items[order[i]])
        return out

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, Any]:
        """pass@1 (avg@n over ``eval.samples``) per held-out set."""
        self._reseed(self.step, salt=4)
        row: dict[str, Any] = {"kind": "eval", "step": self.step}
        t0 = time.perf_counter()
        for name, items in self.task.eval_sets.items():
            res = evaluate(
                self.policy, items, self.task.verifier, n_samples=self.cfg.eval.samples,
                ks=(1,), max_new_tokens=self.cfg.rollout.max_new_tokens,
                temperature=self.cfg.rollout.temperature, progress=False,
            )
            row[f"{name}/pass@1"] = res.pass_at[1]
            row[f"{name}/solved"] = sum(c > 0 for c in res.correct) / max(1, len(res.correct))
            row[f"{name}/answer_rate"] = res.answer_rate
        row["eval_s"] = time.perf_counter() - t0
        return row

    # ------------------------------------------------------------------ files
    def save_checkpoint(self) -> Path:
        """``checkpoint/`` (:meth:`RunDir.save_checkpoint`). Rank 0 alone calls it; with a
        sharded optimizer every rank first calls ``learner.gather_state()``."""
        state = {"step": self.step, "cumulative_sampled": self.cumulative_sampled,
                 "config": self.cfg.to_dict()}
        return self.files.save_checkpoint(self.model, self.task.tokenizer, self.task.source,
                                          self.learner.state_dict(), state)

    def rollout_rows(self) -> list[dict[str, Any]]:
        """One row per sampled response of the latest step (cached replays: not sampled)."""
        return [{"step": self.step, "problem_id": g.problem_id, "correct": s.correct,
                 "score": s.score, "response_ids": s.response_ids}
                for g in self.last_groups for s in g.samples if not s.cached]

    def plot(self) -> Path | None:
        """Training curves to ``curves.png`` (reward, zero-signal share, evaluations)."""
        if not self.history:
            return None
        import matplotlib.pyplot as plt

        path = self.files.curves_path()
        fig = viz.plot_training(self.history, title=f"{self.run_dir.name} ({self.cfg.mode})")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        return path

    def _log(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        self.files.append_metrics(row)

    def _has_eval(self, step: int) -> bool:
        return any(r.get("kind") == "eval" and r["step"] == step for r in self.history)

    # ------------------------------------------------------------------ seeds
    def _seed(self, step: int, salt: int) -> int:
        return (self.cfg.run.seed * 1_000_003 + step * 101 + salt) % (2**31)

    def _rank_seed(self, step: int, salt: int) -> int:
        """A sampling seed of its own per rank (rank 0: the single-process seed)."""
        return (self._seed(step, salt) + 7919 * self.dist.rank) % (2**31)

    def _reseed(self, step: int, salt: int = 1) -> None:
        seed = self._rank_seed(step, salt) if salt == 1 else self._seed(step, salt)
        random.seed(seed)
        torch.manual_seed(seed)
        self.policy.seed(seed)


def _vocab_size(model: Any, tokenizer: Any) -> int:
    """Token ids the model can embed (its embedding rows, which may exceed the tokenizer's
    length: padded vocabularies), else the tokenizer's length."""
    embeddings = getattr(model, "get_input_embeddings", None)
    return int(embeddings().num_embeddings) if callable(embeddings) else len(tokenizer)
