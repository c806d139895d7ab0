"""The RL loop: DeepSearch (tree search + Tree-GRPO) or a flat GRPO/DAPO baseline.

One training step (reference §4, §6; the released code's ``ray_trainer.fit`` + MCTS rollout):

1. draw ``problems_per_step`` problems (a fixed shuffle per epoch, seeded);
2. ``before_rollout`` hook: the efficiency issue fills it with cached solutions (replay buffer);
3. rollouts: ``search.run`` over all problems at once (mode ``deepsearch``) or ``n`` flat samples
   per problem in one ``policy.sample`` call (mode ``grpo``);
4. training signal: per-token rewards and group advantages from :mod:`dslib.tree_grpo`
   (flat samples: the terminal score on every token, so the loss is DAPO's);
5. old log-probs recomputed by the current model (the code's actor recompute, §4.3);
6. ``ppo_epochs`` passes of ``mini_batches`` optimizer updates (AdamW, warm-up then constant,
   weight decay, grad-norm clip), the clipped loss of :func:`dslib.tree_grpo.policy_loss`;
7. the policy backend sees the new weights (shared model: in place; else ``load_weights``).

State lives in :class:`Trainer` only. Every step reseeds every random source from
``(seed, step)``, so a run resumed from a checkpoint continues exactly as if never stopped
(model, optimizer and scheduler come from the checkpoint; nothing else carries state).

Files of a run directory (``runs/<name>/``):

| file              | content                                                          |
|-------------------|------------------------------------------------------------------|
| ``config.json``   | the full :class:`TrainConfig`                                    |
| ``metrics.jsonl`` | one JSON line per step (and per evaluation, ``"kind": "eval"``)  |
| ``checkpoint/``   | model + tokenizer (HF directory), ``optimizer.pt``, ``state.json`` |
| ``curves.png``    | training curves, redrawn at the end                              |

Shapes inside an update (B sequences of a mini-batch, T = longest prompt + response):

| tensor          | shape      | meaning                                                  |
|-----------------|------------|----------------------------------------------------------|
| ``input_ids``   | [B, T]     | prompt + response, right-padded                          |
| ``resp_mask``   | [B, T - 1] | 1 where position t predicts a response token t + 1       |
| ``adv``         | [B, T - 1] | per-token advantage at the same positions                |
| ``old_logp``    | [B, T - 1] | recomputed before the first update of the step           |
| ``step_ids``    | [B, T - 1] | node index of each response token (step-mean loss), -1 pad |
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dslib import search, tree_grpo
from dslib.config import SearchConfig, parse_assignment
from dslib.evaluate import evaluate
from dslib.tree_grpo import TreeGRPOConfig
from dslib.verify import Verdict

MODES = ("deepsearch", "grpo")


# ----------------------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """Everything one training run needs; presets in :data:`PRESETS`, CLI ``--set a.b=v``."""

    mode: str = "deepsearch"
    """"deepsearch" (tree search + Tree-GRPO) or "grpo" (flat samples, DAPO loss)"""
    model: str = "tiny"
    """"tiny" (the cached tiny reasoner, built if missing) or a checkpoint directory"""
    task: str = "countdown"
    """problem source; "countdown" = the tiny reasoner's splits"""
    train_levels: tuple[int, ...] = (4, 5)
    """countdown levels drawn for training (the hard ones: where flat RL stalls)"""
    train_split: str = "rl"
    eval_levels: tuple[int, ...] = (3, 4, 5)
    eval_split: str = "test"
    steps: int = 30
    problems_per_step: int = 16
    samples_per_problem: int = 4
    """grpo: flat samples per problem (n); deepsearch uses ``search.n_trajectories``"""
    max_new_tokens: int = 64
    """length cap of flat samples (grpo mode and evaluation)"""
    temperature: float = 1.0
    lr: float = 1e-6
    warmup_steps: int = 10
    """linear warm-up of the learning rate over optimizer updates, then constant (§6)"""
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    mini_batches: int = 8
    """optimizer updates per step and epoch (released run: 2048 seqs / 256 = 8, §6)"""
    ppo_epochs: int = 1
    skip_zero_signal_updates: bool = True
    """skip the optimizer step of a mini-batch whose advantages are all zero: its gradient is
    zero, and an AdamW step would still move the weights along stale momentum. The released
    run's mini-batches (256 sequences) never have this; the tiny preset's small ones often do"""
    eval_every: int = 10
    """evaluate every this many steps (and before the first and after the last); 0 = never"""
    eval_problems: int = 100
    eval_samples: int = 4
    checkpoint_every: int = 1
    """write the checkpoint every this many steps (a killed run loses at most that many)"""
    seed: int = 0
    search: SearchConfig = field(default_factory=SearchConfig)
    grpo: TreeGRPOConfig = field(default_factory=TreeGRPOConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"TrainConfig.mode must be one of {MODES}, got {self.mode!r}")
        for name in ("steps", "problems_per_step", "samples_per_problem", "mini_batches",
                     "ppo_epochs", "max_new_tokens"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if isinstance(self.search, dict):
            self.search = SearchConfig(**self.search)
        if isinstance(self.grpo, dict):
            self.grpo = TreeGRPOConfig(**self.grpo)
        self.train_levels = tuple(int(v) for v in self.train_levels)
        self.eval_levels = tuple(int(v) for v in self.eval_levels)
        self.adam_betas = (float(self.adam_betas[0]), float(self.adam_betas[1]))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}")
        return cls(**data)


def tiny_preset() -> TrainConfig:
    """The CPU preset: the tiny reasoner on countdown problems of 3-5 numbers, minutes on 2 cores.

    Scaled from the released run (reference §6): responses are capped at max_depth x
    step_tokens = 80 tokens with the DAPO overlong buffer at the same 25% of the cap
    (4,096 of 16,384 there, 20 of 80 here); lr 5e-5 is about 1/60 of the SFT peak (the released
    run: 1e-6 on a model pre-trained at ~1e-4 or more). Flat samples and evaluations get the
    same 80-token cap as the tree.
    """
    return TrainConfig(
        train_levels=(3, 4, 5), steps=150, problems_per_step=16, samples_per_problem=4,
        max_new_tokens=80, lr=5e-5, warmup_steps=5, weight_decay=0.0, mini_batches=2,
        eval_every=75, eval_problems=200, eval_samples=4,
        search=SearchConfig.tiny(),
        grpo=TreeGRPOConfig(overlong_buffer=20, max_response_tokens=80),
    )


#: named presets; the 1.5B issue adds "paper-1.5b"
PRESETS: dict[str, Callable[[], TrainConfig]] = {"tiny": tiny_preset}


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]()


def apply_overrides(cfg: TrainConfig, assignments: Sequence[str]) -> TrainConfig:
    """``["lr=1e-4", "search.width=8", "grpo.baseline=tree"]`` -> a new validated config.

    Values are parsed as JSON (numbers, true/false, null, lists), else taken as strings.
    """
    data = cfg.to_dict()
    for item in assignments:
        key, value = parse_assignment(item)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"--set {item!r}: {part!r} is not a config section")
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"--set {item!r}: unknown field; have {sorted(node)}")
        node[parts[-1]] = value
    return TrainConfig.from_dict(data)


# ----------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """One training sequence: a prompt, a response and its per-token advantages."""

    prompt_ids: list[int]
    response_ids: list[int]
    advantages: list[float]
    step_ids: list[int]
    """node index of each response token (0-based; flat samples: one step of the whole response)"""
    score: float
    correct: bool
    behaviour_logprobs: list[float]
    """log-probs the tokens were sampled with (zeros for cached solutions: unknown)"""
    group: int
    problem_id: str = ""
    cached: bool = False
    """a replayed verified solution (reference §5.3), not sampled this step"""


@dataclass
class Task:
    """What the trainer trains and evaluates on: prompted items and a token-level verifier."""

    train_items: list[Any]
    eval_sets: dict[str, list[Any]]
    verifier: Callable[[Any, list[int]], Verdict]
    tokenizer: Any = None


def countdown_task(cfg: TrainConfig, reasoner: Any) -> Task:
    """The tiny reasoner's RL split of the training levels and test split of the eval levels."""
    train = [it for lv in cfg.train_levels for it in reasoner.prompted(lv, cfg.train_split)]
    if not train:
        raise ValueError(f"no {cfg.train_split!r} problems for levels {cfg.train_levels}")
    evals = {
        f"L{lv}": reasoner.prompted(lv, cfg.eval_split, cfg.eval_problems)
        for lv in cfg.eval_levels
    }
    return Task(train, evals, reasoner.verifier(), reasoner.load_tokenizer())


def outcome_group(
    item: Any,
    members: Sequence[tuple[list[int], list[float], bool]],
    verifier: Callable[[Any, list[int]], Verdict],
    grpo_cfg: TreeGRPOConfig,
    incomplete_score: float,
    group: int,
    n_cached: int = 0,
) -> list[Sample]:
    """One problem's group of whole responses with OUTCOME rewards (flat GRPO, cached groups).

    ``members``: (response ids, behaviour log-probs, finished with EOS); the first ``n_cached``
    are replayed solutions (reference §5.3). Each is verified and scored by
    :func:`dslib.search.outcome`, gets its score (+ overlong penalty) on every token
    (``tree_grpo.outcome_token_rewards``) and the group advantage of ``tree_grpo.advantages``:
    with sequence-level rewards the loss is DAPO's (§4.2).
    """
    scores, oks, rewards = [], [], []
    for ids, _, finished in members:
        verdict = verifier(item, ids)
        score, _ = search.outcome(verdict, not finished, incomplete_score)
        scores.append(score)
        oks.append(bool(verdict.correct))
        rewards.append(tree_grpo.outcome_token_rewards(len(ids), score, grpo_cfg))
    finals = [r[-1] if r else sc for r, sc in zip(rewards, scores, strict=True)]
    advs = tree_grpo.advantages(rewards, finals, grpo_cfg, tree_terminal_scores=finals)
    return [
        Sample(prompt_ids=list(item.prompt_ids), response_ids=list(ids), advantages=list(adv),
               step_ids=[0] * len(ids), score=score, correct=ok,
               behaviour_logprobs=list(logps), group=group, problem_id=str(item.id),
               cached=j < n_cached)
        for j, ((ids, logps, _), score, ok, adv) in enumerate(
            zip(members, scores, oks, advs, strict=True)
        )
    ]


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """Owns the model, optimizer, scheduler, policy backend and run directory.

    ``Trainer(cfg, run_dir)`` starts a run (the model from ``cfg.model``);
    ``Trainer.resume(run_dir)`` continues one from its checkpoint. ``model``/``task`` can be
    passed in (tests, notebooks) to skip building the tiny reasoner.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        *,
        model: Any = None,
        task: Task | None = None,
        progress: bool = True,
        before_rollout: Callable[[Trainer, list[Any]], dict[str, list[Sample]]] | None = None,
    ) -> None:
        from dslib.policy.hf import HFPolicy

        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.before_rollout = before_rollout
        self.step = 0
        self.cumulative_sampled = 0
        self.history: list[dict[str, Any]] = []
        #: the samples of the latest step (a round's replay-buffer registration reads them)
        self.last_samples: list[Sample] = []
        if model is None or task is None:
            loaded_model, loaded_task = _load_model_and_task(cfg)
            model = model if model is not None else loaded_model
            task = task if task is not None else loaded_task
        self.model = model
        self.task = task
        torch.manual_seed(cfg.seed)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, betas=cfg.adam_betas,
            weight_decay=cfg.weight_decay,
        )
        warm = max(1, cfg.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda u: min(1.0, (u + 1) / warm)
        )
        eos = self.model.generation_config.eos_token_id
        eos = eos[0] if isinstance(eos, list) else eos
        self.policy = HFPolicy(
            self.model, eos_token_id=eos,
            pad_token_id=self.model.generation_config.pad_token_id, seed=cfg.seed,
        )

    # ------------------------------------------------------------------ run
    @classmethod
    def resume(cls, run_dir: str | Path, **kwargs: Any) -> Trainer:
        """Continue a run from ``run_dir/checkpoint`` (or the previous one, if a swap broke)."""
        run_dir = Path(run_dir)
        ckpt = _latest_checkpoint(run_dir)
        if ckpt is None:
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from")
        cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        from dslib.policy.hf import load_causal_lm

        model = load_causal_lm(ckpt)
        trainer = cls(cfg, run_dir, model=model, **kwargs)
        state = json.loads((ckpt / "state.json").read_text())
        opt = torch.load(ckpt / "optimizer.pt", weights_only=False)
        trainer.optimizer.load_state_dict(opt["optimizer"])
        trainer.scheduler.load_state_dict(opt["scheduler"])
        trainer.step = int(state["step"])
        trainer.cumulative_sampled = int(state["cumulative_sampled"])
        trainer.history = _read_metrics(run_dir / "metrics.jsonl", upto_step=trainer.step)
        _write_metrics(run_dir / "metrics.jsonl", trainer.history)  # drop a lost step's lines
        return trainer

    def train(self, steps: int | None = None) -> list[dict[str, Any]]:
        """Run until ``cfg.steps`` (or ``steps`` more); returns the metrics history."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2))
        last = self.cfg.steps if steps is None else min(self.cfg.steps, self.step + steps)
        if self.step == 0 and self.cfg.eval_every and not self._has_eval(0):
            self._log(self.evaluate())
        bar = _bar(range(self.step, last), f"train {self.cfg.mode}", self.progress)
        for _ in bar:
            row = self.train_step()
            self._log(row)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(reward=f"{row['reward']:+.2f}", acc=f"{row['accuracy']:.2f}")
            ev = self.cfg.eval_every
            if ev and (self.step % ev == 0 or self.step == self.cfg.steps):
                self._log(self.evaluate())
            if self.step % self.cfg.checkpoint_every == 0 or self.step == last:
                self.save_checkpoint()
        self.plot()
        return self.history

    def train_step(self) -> dict[str, Any]:
        """One training step (module docstring); returns its metrics row."""
        t0 = time.perf_counter()
        step = self.step
        self._reseed(step)
        items = self.problems_for(step)
        cached = self.before_rollout(self, items) if self.before_rollout else {}
        fresh = [it for it in items if str(it.id) not in cached]
        t_roll = time.perf_counter()
        if self.cfg.mode == "deepsearch":
            samples, roll = self.search_rollouts(fresh, step)
        else:
            samples, roll = self.flat_rollouts(fresh)
        for pid, group in cached.items():
            base = max((s.group for s in samples), default=-1) + 1
            samples.extend(
                dataclasses.replace(s, group=base, problem_id=str(pid)) for s in group
            )
        hook_stats = dict(getattr(self.before_rollout, "last_stats", None) or {})
        rollout_s = time.perf_counter() - t_roll
        self.last_samples = samples
        t_upd = time.perf_counter()
        upd = self.update(samples, step)
        self.step += 1
        sampled = roll.pop("sampled_tokens") + int(hook_stats.pop("sampled_tokens", 0))
        self.cumulative_sampled += sampled
        own = [s for s in samples if not s.cached]
        groups: dict[int, list[Sample]] = {}
        for s in samples:
            groups.setdefault(s.group, []).append(s)
        all_ok = sum(all(s.correct for s in g) for g in groups.values())
        all_bad = sum(not any(s.correct for s in g) for g in groups.values())
        n_groups = max(1, len(groups))
        return {
            "kind": "train", "step": self.step, "mode": self.cfg.mode,
            "reward": _mean([s.score for s in samples]),
            "accuracy": _mean([float(s.correct) for s in samples]),
            "solved_share": (len(groups) - all_bad) / n_groups,
            "all_correct_share": all_ok / n_groups, "all_wrong_share": all_bad / n_groups,
            "zero_signal_share": (all_ok + all_bad) / n_groups,
            "response_length": _mean([len(s.response_ids) for s in samples]),
            "entropy": _mean([-x for s in own for x in s.behaviour_logprobs]),
            "sequences": len(samples), "cached_groups": len(cached),
            "sampled_tokens": sampled, "cumulative_sampled_tokens": self.cumulative_sampled,
            "lr": self.scheduler.get_last_lr()[0],
            "rollout_s": rollout_s, "update_s": time.perf_counter() - t_upd,
            "wall_s": time.perf_counter() - t0, **roll, **upd,
            **{f"cache_{k}": v for k, v in hook_stats.items()},
        }

    # ------------------------------------------------------------------ data
    def problems_for(self, step: int) -> list[Any]:
        """``problems_per_step`` items: epoch e is a fixed shuffle seeded by (seed, e)."""
        items = self.task.train_items
        k = self.cfg.problems_per_step
        out = []
        for pos in range(step * k, step * k + k):
            epoch, i = divmod(pos, len(items))
            order = list(range(len(items)))
            random.Random(self.cfg.seed * 7919 + epoch).shuffle(order)
            out.append(items[order[i]])
        return out

    # ------------------------------------------------------------------ rollouts
    def search_rollouts(self, items: list[Any], step: int) -> tuple[list[Sample], dict[str, Any]]:
        """DeepSearch: one tree per problem, Tree-GRPO rewards and advantages per tree."""
        if not items:
            return [], {"sampled_tokens": 0}
        scfg = dataclasses.replace(self.cfg.search, seed=self._seed(step, 2))
        results = search.run(items, self.policy, self.task.verifier, scfg)
        samples: list[Sample] = []
        for g, res in enumerate(results):
            if not res.trajectories:
                continue
            advs = tree_grpo.group_advantages(res.trajectories, self.cfg.grpo, tree=res.tree)
            for traj, adv in zip(res.trajectories, advs, strict=True):
                samples.append(Sample(
                    prompt_ids=list(traj.prompt_ids), response_ids=list(traj.response_ids),
                    advantages=list(adv),
                    step_ids=tree_grpo.step_ids_from_spans(
                        traj.node_spans, len(traj.response_ids)
                    ),
                    score=float(traj.score), correct=bool(traj.correct),
                    behaviour_logprobs=list(traj.logprobs), group=g, problem_id=str(res.problem.id),
                ))
        stats = [r.stats for r in results]
        return samples, {
            "sampled_tokens": sum(s.sampled_tokens for s in stats),
            "search_iterations": _mean([s.iterations for s in stats]),
            "search_nodes": _mean([s.nodes for s in stats]),
            "search_exhausted": _mean([float(r.exhausted) for r in results]),
            "search_solved": _mean([float(s.n_correct > 0) for s in stats]),
        }

    def flat_rollouts(self, items: list[Any]) -> tuple[list[Sample], dict[str, Any]]:
        """GRPO/DAPO: n samples per problem in one call, the outcome on every token."""
        if not items:
            return [], {"sampled_tokens": 0}
        n = self.cfg.samples_per_problem
        outs = self.policy.sample(
            [it.prompt_ids for it in items], n=n, max_new_tokens=self.cfg.max_new_tokens,
            temperature=self.cfg.temperature,
        )
        samples: list[Sample] = []
        sampled = 0
        for g, (item, segs) in enumerate(zip(items, outs, strict=True)):
            members = [(list(s.token_ids), list(s.logprobs), bool(s.finished)) for s in segs]
            sampled += sum(len(s.token_ids) for s in segs)
            samples.extend(outcome_group(
                item, members, self.task.verifier, self.cfg.grpo,
                self.cfg.search.incomplete_score, g,
            ))
        return samples, {"sampled_tokens": sampled}

    # ------------------------------------------------------------------ update
    def update(self, samples: list[Sample], step: int) -> dict[str, float]:
        """Recompute old log-probs, then ``ppo_epochs`` x ``mini_batches`` clipped updates."""
        samples = [s for s in samples if s.response_ids]
        if not samples:
            return {"updates": 0}
        pad = int(self.policy.pad_token_id)
        rng = random.Random(self._seed(step, 3))
        batch = _collate(samples, pad)
        self.model.eval()
        with torch.no_grad():
            old_logp = _token_logprobs(self.model, batch["input_ids"], batch["attention_mask"])
        metrics: list[dict[str, float]] = []
        self.model.train()
        for _ in range(self.cfg.ppo_epochs):
            order = list(range(len(samples)))
            rng.shuffle(order)
            for chunk in _split(order, self.cfg.mini_batches):
                idx = torch.tensor(chunk, dtype=torch.long)
                sub = {k: v[idx] for k, v in batch.items()}
                logp = _token_logprobs(self.model, sub["input_ids"], sub["attention_mask"])
                loss, m = tree_grpo.policy_loss(
                    logp, old_logp[idx], sub["adv"], sub["resp_mask"], self.cfg.grpo,
                    step_ids=sub["step_ids"],
                )
                self.optimizer.zero_grad(set_to_none=True)
                silent = bool((sub["adv"] * sub["resp_mask"]).abs().max() == 0)
                if silent and self.cfg.skip_zero_signal_updates:
                    norm = torch.zeros(())
                else:
                    loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(
                        self.model.parameters(), self.cfg.grad_clip
                    )
                    self.optimizer.step()
                    self.scheduler.step()  # the warm-up counts optimizer updates
                m = {k: float(v) for k, v in m.items()}
                m["loss"], m["grad_norm"] = float(loss.detach()), float(norm)
                m["skipped_updates"] = float(silent and self.cfg.skip_zero_signal_updates)
                metrics.append(m)
        self.model.eval()
        self._push_weights()
        out = {k: _mean([m[k] for m in metrics]) for k in metrics[0]}
        out["updates"] = len(metrics)
        # behaviour vs recomputed log-probs over sampled tokens (cached ones have none)
        own = batch["resp_mask"] * batch["sampled"][:, None]
        out["behaviour_vs_recomputed_logp"] = float(
            (old_logp - batch["behaviour_logp"]).abs().mul(own).sum() / own.sum().clamp(min=1)
        )
        return out

    def _push_weights(self) -> None:
        # The tiny/HF path shares the model with the policy: the update is already visible
        # (the policy notices in-place changes and drops its prefix cache). A separate backend
        # (vLLM) gets the new weights here.
        if getattr(self.policy, "model", None) is not self.model:
            self.policy.load_weights(self.model.state_dict())

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, Any]:
        """pass@1 (avg@n over ``eval_samples``) per held-out set, at temperature 1."""
        self._reseed(self.step, salt=4)
        row: dict[str, Any] = {"kind": "eval", "step": self.step}
        t0 = time.perf_counter()
        for name, items in self.task.eval_sets.items():
            res = evaluate(
                self.policy, items, self.task.verifier, n_samples=self.cfg.eval_samples,
                ks=(1,), max_new_tokens=self.cfg.max_new_tokens,
                temperature=self.cfg.temperature, progress=False,
            )
            row[f"{name}/pass@1"] = res.pass_at[1]
            row[f"{name}/solved"] = sum(c > 0 for c in res.correct) / max(1, len(res.correct))
            row[f"{name}/answer_rate"] = res.answer_rate
        row["eval_s"] = time.perf_counter() - t0
        return row

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write ``checkpoint/`` atomically: a new directory swapped in by renames."""
        final = self.run_dir / "checkpoint"
        tmp = self.run_dir / "checkpoint.tmp"
        old = self.run_dir / "checkpoint.old"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one bar per checkpoint would drown the run's bar
        self.model.save_pretrained(tmp)
        if self.task.tokenizer is not None:
            self.task.tokenizer.save_pretrained(tmp)
        torch.save(
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
            tmp / "optimizer.pt",
        )
        (tmp / "state.json").write_text(json.dumps({
            "step": self.step, "cumulative_sampled": self.cumulative_sampled,
            "config": self.cfg.to_dict(),
        }, indent=2))
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        return final

    # ------------------------------------------------------------------ helpers
    def _seed(self, step: int, salt: int) -> int:
        return (self.cfg.seed * 1_000_003 + step * 101 + salt) % (2**31)

    def _reseed(self, step: int, salt: int = 1) -> None:
        seed = self._seed(step, salt)
        random.seed(seed)
        torch.manual_seed(seed)
        self.policy.seed(seed)

    def _has_eval(self, step: int) -> bool:
        return any(r.get("kind") == "eval" and r["step"] == step for r in self.history)

    def _log(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def plot(self) -> Path | None:
        """Training curves to ``curves.png`` (reward, accuracy, zero-signal share, eval)."""
        if not self.history:
            return None
        from dslib.viz import plot_training

        path = self.run_dir / "curves.png"
        fig = plot_training(self.history, title=f"{self.run_dir.name} ({self.cfg.mode})")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        return path


# ----------------------------------------------------------------------------- pure helpers


def _collate(samples: Sequence[Sample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; per-token fields sit at the position that PREDICTS the token."""
    width = max(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    b = len(samples)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    attn = torch.zeros((b, width), dtype=torch.long)
    resp = torch.zeros((b, width - 1), dtype=torch.float32)
    adv = torch.zeros((b, width - 1), dtype=torch.float32)
    beh = torch.zeros((b, width - 1), dtype=torch.float32)
    steps = torch.full((b, width - 1), -1, dtype=torch.long)
    sampled = torch.tensor([0.0 if s.cached else 1.0 for s in samples])
    for i, s in enumerate(samples):
        p, r = len(s.prompt_ids), len(s.response_ids)
        ids[i, : p + r] = torch.tensor(s.prompt_ids + s.response_ids, dtype=torch.long)
        attn[i, : p + r] = 1
        resp[i, p - 1 : p + r - 1] = 1.0
        adv[i, p - 1 : p + r - 1] = torch.tensor(s.advantages, dtype=torch.float32)
        beh[i, p - 1 : p + r - 1] = torch.tensor(s.behaviour_logprobs, dtype=torch.float32)
        steps[i, p - 1 : p + r - 1] = torch.tensor(s.step_ids, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": attn, "resp_mask": resp, "adv": adv,
            "behaviour_logp": beh, "step_ids": steps, "sampled": sampled}


def _token_logprobs(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """log pi(token t+1 | tokens <= t) for every position, shape [B, T-1], from raw logits."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


def _split(order: list[int], parts: int) -> list[list[int]]:
    parts = max(1, min(parts, len(order)))
    size = math.ceil(len(order) / parts)
    return [order[i : i + size] for i in range(0, len(order), size)]


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _bar(it: Any, desc: str, enabled: bool) -> Any:
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, desc=desc)


def _latest_checkpoint(run_dir: Path) -> Path | None:
    for name in ("checkpoint", "checkpoint.old"):
        path = run_dir / name
        if (path / "state.json").exists():
            return path
    return None


def _read_metrics(path: Path, upto_step: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("step", 0) <= upto_step:
                rows.append(row)
    return rows


def _write_metrics(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def _load_model_and_task(cfg: TrainConfig) -> tuple[Any, Task]:
    if cfg.task != "countdown":
        raise ValueError(f"unknown task {cfg.task!r} (this build knows 'countdown')")
    from dslib import tiny

    if cfg.model == "tiny":
        reasoner = tiny.build(progress=True)
    else:
        reasoner = tiny.TinyReasoner.from_dir(cfg.model)
    return reasoner.load_model(), countdown_task(cfg, reasoner)
