"""The learner: the only RL optimizer of the kit (docs/paper-notes.md#policy-loss,
#hyperparameters).

One :meth:`Learner.update` per training step, on the step's samples (any strategy's):

1. old log-probs recomputed by the current model (the code's actor recompute,
   docs/paper-notes.md#policy-loss), in micro-batches, under autocast when ``compute_dtype`` is
   bf16;
2. ``ppo_epochs`` passes of ``mini_batches`` optimizer updates over a seeded shuffle: the
   clipped loss of :func:`dslib.tree_grpo.policy_loss` summed over micro-batches (gradients
   accumulate; each part is divided by the mini-batch's count), gradients summed over ranks,
   clipped, AdamW step, warm-up schedule step;
3. the policy backend sees the new weights (a shared model: in place; else ``load_weights``).

With several processes (:mod:`dslib.distributed`) every rank holds the same global samples; a
rank computes the rows it owns, and the summed gradients equal one process's. With
``shard_optimizer`` AdamW's state is sharded (ZeRO-1); :meth:`gather_state` (a collective)
collects it on rank 0 before a checkpoint.

Shapes inside an update (B sequences, T = longest prompt + response):

| tensor          | shape      | meaning                                                    |
|-----------------|------------|------------------------------------------------------------|
| ``input_ids``   | [B, T]     | prompt + response, right-padded                            |
| ``resp_mask``   | [B, T - 1] | 1 where position t predicts a response token t + 1         |
| ``adv``         | [B, T - 1] | per-token advantage at the same positions                  |
| ``old_logp``    | [B, T - 1] | recomputed before the first update of the step             |
| ``step_ids``    | [B, T - 1] | node index of each response token (step-mean loss), -1 pad |
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Sequence
from typing import Any

import torch

from dslib import distributed, tree_grpo
from dslib.config import OptimConfig
from dslib.rollouts import Sample


class Learner:
    """AdamW (or ZeRO-1 AdamW) with a linear warm-up, on ``model``, pushing to ``policy``."""

    def __init__(self, model: Any, cfg: OptimConfig, policy: Any,
                 dist: distributed.Dist | None = None) -> None:
        self.model, self.cfg, self.policy = model, cfg, policy
        self.dist = dist or distributed.current()
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        #: AdamW's state sharded over the ranks (``shard_optimizer`` with several processes)
        self.sharded = bool(cfg.shard_optimizer and self.dist.active)
        if self.sharded:
            from torch.distributed.optim import ZeroRedundancyOptimizer

            # each rank steps its partition with the full (summed, clipped) gradient, then
            # broadcasts the new values: the same weights as AdamW, 1/world of its state
            self.optimizer: Any = ZeroRedundancyOptimizer(
                model.parameters(), optimizer_class=torch.optim.AdamW, lr=cfg.lr,
                betas=cfg.adam_betas, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                                               betas=cfg.adam_betas, weight_decay=cfg.weight_decay)
        warm = max(1, cfg.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda u: min(1.0, (u + 1) / warm))

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def update(self, samples: Sequence[Sample], seed: int) -> dict[str, float]:
        """Steps 1-3 of the module docstring; ``seed`` orders the mini-batches."""
        samples = [s for s in samples if s.response_ids]
        getattr(self.policy, "sleep", lambda: None)()  # a colocated engine frees the GPU
        if not samples:
            return {"updates": 0}
        d, cfg = self.dist, self.cfg
        rng = random.Random(seed)
        dev = next(self.model.parameters()).device
        batch = {k: v.to(dev) for k, v in collate(samples, int(self.policy.pad_token_id)).items()}
        mine_all = torch.tensor(distributed.owned(range(len(samples)), d), dtype=torch.long)
        old_logp = torch.zeros_like(batch["adv"])
        t_logp = time.perf_counter()
        self.model.eval()
        with torch.no_grad(), self._autocast():
            for part in self.micro_batches(mine_all.tolist(), batch):
                old_logp[part] = token_logprobs(
                    self.model, batch["input_ids"][part], batch["attention_mask"][part])
        if dev.type == "cuda":  # kernels run asynchronously: wait for them before timing
            torch.cuda.synchronize(dev)
        logprob_s = time.perf_counter() - t_logp
        metrics: list[dict[str, float]] = []
        self.model.train()
        for _ in range(cfg.ppo_epochs):
            order = list(range(len(samples)))
            rng.shuffle(order)
            for chunk in _split(order, cfg.mini_batches):
                metrics.append(self._step(chunk, batch, old_logp))
        self.model.eval()
        if getattr(self.policy, "model", None) is not self.model:
            self.policy.load_weights(self.model.state_dict())  # a separate backend (vLLM)
        keys = set().union(*metrics)
        out = {k: _mean([m[k] for m in metrics if k in m]) for k in sorted(keys)}
        out["updates"] = len(metrics)
        out["logprob_s"] = logprob_s
        # behaviour vs recomputed log-probs over sampled tokens (cached ones have none)
        own = batch["resp_mask"][mine_all] * batch["sampled"][mine_all][:, None]
        out["behaviour_vs_recomputed_logp"] = float(
            (old_logp[mine_all] - batch["behaviour_logp"][mine_all]).abs().mul(own).sum()
            / own.sum().clamp(min=1))
        return out

    def _step(self, chunk: list[int], batch: dict[str, torch.Tensor],
              old_logp: torch.Tensor) -> dict[str, float]:
        """One mini-batch: accumulate its micro-batches' gradients, then one optimizer step."""
        d, cfg = self.dist, self.cfg
        whole = torch.tensor(chunk, dtype=torch.long)
        silent = bool((batch["adv"][whole] * batch["resp_mask"][whole]).abs().max() == 0)
        skip = silent and cfg.skip_zero_signal_updates
        # the loss is a sum over the whole mini-batch divided by ITS count, on any rank
        count = tree_grpo.aggregation_count(batch["resp_mask"][whole], cfg.grpo,
                                            batch["step_ids"][whole])
        idx = torch.tensor(distributed.owned(chunk, d), dtype=torch.long)
        self.optimizer.zero_grad(set_to_none=True)
        loss, parts = torch.zeros(()), []
        for part in self.micro_batches(idx.tolist(), batch):  # a silent mini-batch still
            sub = {k: v[part] for k, v in batch.items()}      # reports its metrics
            with self._autocast():
                logp = token_logprobs(self.model, sub["input_ids"], sub["attention_mask"])
            part_loss, part_m = tree_grpo.policy_loss(
                logp, old_logp[part], sub["adv"], sub["resp_mask"], cfg.grpo,
                step_ids=sub["step_ids"], normalizer=count)
            if not skip:
                part_loss.backward()
            loss = loss + part_loss.detach()
            parts.append((part_m, int(sub["resp_mask"].sum())))
        m = _weighted_metrics(parts)
        if skip:
            norm = torch.zeros(())
        else:
            distributed.sum_gradients(self.model.parameters(), d)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()  # the warm-up counts optimizer updates
        row = {k: float(v) for k, v in (m or {}).items()}
        row["loss"] = distributed.sum_scalar(float(loss.detach()), d)
        row["grad_norm"], row["skipped_updates"] = float(norm), float(skip)
        return row

    def _autocast(self) -> Any:
        """bf16 compute over fp32 master weights when ``compute_dtype`` says so."""
        if self.cfg.compute_dtype == "float32":
            return contextlib.nullcontext()
        device = next(self.model.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    def micro_batches(self, rows: list[int], batch: dict[str, torch.Tensor]) -> list[list[int]]:
        """``rows`` in consecutive groups whose padded size (rows x longest) fits the budget."""
        budget = self.cfg.micro_batch_tokens
        if not rows:
            return []
        if budget is None:
            return [rows]
        lengths = batch["attention_mask"].sum(dim=1)
        out: list[list[int]] = [[]]
        longest = 0
        for r in rows:
            n = int(lengths[r])
            if out[-1] and max(longest, n) * (len(out[-1]) + 1) > budget:
                out.append([])
                longest = 0
            out[-1].append(r)
            longest = max(longest, n)
        return out

    # ------------------------------------------------------------------ checkpoints
    def gather_state(self) -> None:
        """Collect a sharded optimizer's state on rank 0 for :meth:`state_dict`.

        A collective: with ``shard_optimizer`` every rank calls it at the same point, before
        rank 0 saves; nothing to do otherwise.
        """
        if self.sharded:
            self.optimizer.consolidate_state_dict(to=0)

    def state_dict(self) -> dict[str, Any]:
        """Optimizer (the full AdamW state, in the layout a plain AdamW loads) and scheduler."""
        state = self.optimizer.state_dict()
        if self.sharded:
            # drop rank 0's gathered copy: frees its memory, and a later save that skipped
            # gather_state raises instead of writing stale moments
            self.optimizer._all_state_dicts = []
        return {"optimizer": state, "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The full AdamW state, saved sharded or not; a sharded optimizer keeps its part."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


# ----------------------------------------------------------------------------- pure helpers


def collate(samples: Sequence[Sample], pad_id: int) -> dict[str, torch.Tensor]:
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


def token_logprobs(model: Any, input_ids: torch.Tensor,
                   attention_mask: torch.Tensor) -> torch.Tensor:
    """log pi(token t+1 | tokens <= t) for every position, shape [B, T-1], from raw logits."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


def _weighted_metrics(parts: Sequence[tuple[dict[str, Any], int]]) -> dict[str, float] | None:
    """Micro-batch metrics combined, each weighted by its response tokens."""
    if not parts:
        return None
    if len(parts) == 1:
        return {k: float(v) for k, v in parts[0][0].items()}
    total = sum(w for _, w in parts) or 1
    keys = parts[0][0].keys()
    return {k: sum(float(m[k]) * w for m, w in parts) / total for k in keys}


def _split(order: list[int], parts: int) -> list[list[int]]:
    parts = max(1, min(parts, len(order)))
    size = math.ceil(len(order) / parts)
    return [order[i : i + size] for i in range(0, len(order), size)]


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0
