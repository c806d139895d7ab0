"""Tree-GRPO: per-token rewards from the search tree, mean-only advantages, clipped policy loss.

Paper notes: docs/paper-notes.md#tree-grpo (v4 Sec. 4.3, Eq. 13-15). Three small pure steps turn the
recorded trajectories of one problem into a loss:

1. **Per-token rewards** (docs/paper-notes.md#token-rewards, v4 Eq. 13). Node j of a trajectory owns
   the tokens ``response_ids[start_j:end_j]``; every one of them gets the node's reward

       r_j = tanh(v_j / eps_q) * q_max + p_over      j = 1..L-1 (intermediate nodes, soft clip)
       r_L = v_L + p_over                             terminal node (+1 / -1 / incomplete, raw)

   where v_j is the node's ACCUMULATED q^(k_max) (not Q = q/N) and p_over the DAPO overlong
   penalty, added to every token (code; docs/paper-notes.md#pvc-overlong). ``reward="coarse"`` puts
   r_L on every token (Tree-GRPO degrades to DAPO), ``reward="fine_raw"`` skips the soft clip
   (Table 4 "fine-grained").

2. **Advantages** (docs/paper-notes.md#advantage, v4 Eq. 15), one group = one problem:

       A_tok = r_tok - mu              (mean-only, default: the scripts set norm_adv_by_std=False)
       A_tok = (r_tok - mu) / (sigma + 1e-6)    (std_norm=True, verl's default, Table 4 "standard")

   code: mu, sigma over the *recorded* trajectories' final rewards r_L (overlong penalty included);
   paper: mu over all terminal nodes of the tree (``baseline="tree"``;
   docs/paper-notes.md#pvc-baseline). A group of one trajectory uses mu = 0, sigma = 1 (code).

3. **Policy loss** (docs/paper-notes.md#policy-loss, v4 Eq. 14 / verl ``compute_policy_loss``), no
   KL, no entropy bonus:

       rho = exp(logp - old_logp)
       L   = max(-A * rho, -A * clip(rho, 1 - clip_low, 1 + clip_high))      (Clip-Higher, DAPO)
       L   = min(L, -A * c)      where A < 0                                  (dual clip, c = 10)

   aggregated as a flat token mean over the batch (code, ``loss_agg="token_mean"``) or as the
   paper's per-step mean 1/|s_j| sum_k, then the mean over steps (``loss_agg="step_mean"``,
   docs/paper-notes.md#pvc-loss-agg).

Shapes:

| name             | shape / type           | meaning                                             |
|------------------|------------------------|-----------------------------------------------------|
| ``node_values``  | list[float], L         | accumulated q per node, last = terminal score       |
| ``node_spans``   | list[(int, int)], L    | token range of each node in ``response_ids``        |
| token rewards    | list[float], T_i       | one reward per response token of trajectory i       |
| ``final_scores`` | list[float], n         | reward at the last token of each trajectory (r_L)   |
| advantages       | list[list[float]], n   | one list of T_i advantages per trajectory           |
| ``logp``         | float tensor (B, T)    | current log-probs of the sampled tokens (grad)      |
| ``old_logp``     | float tensor (B, T)    | behaviour (old policy) log-probs                    |
| ``adv``          | float tensor (B, T)    | per-token advantages (sequence-level: broadcast)    |
| ``mask``         | bool/0-1 tensor (B, T) | 1 on real response tokens, 0 on padding             |
| ``step_ids``     | int tensor (B, T)      | node index of each token, -1 on padding (step_mean) |
| loss             | scalar tensor          | differentiable w.r.t. ``logp``                      |
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch

from dslib.config import TreeGRPOConfig
from dslib.tree import Node, Tree

STD_EPS = 1e-6
"""added to sigma in the std normalisation (verl's ``epsilon``)"""


class TrajectoryLike(Protocol):
    """What the reward functions read of ``dslib.search.Trajectory``."""

    response_ids: list[int]
    node_spans: list[tuple[int, int]]

    @property
    def node_values(self) -> list[float]: ...


# ------------------------------------------------------ rewards (docs/paper-notes.md#token-rewards)


def overlong_penalty(length: int, cfg: TreeGRPOConfig) -> float:
    """DAPO overlong penalty (docs/paper-notes.md#token-rewards; verl ``DAPORewardManager``).

        p_over = min(-(length - (max_len - buffer)) / buffer * factor, 0)

    0 up to ``max_len - buffer`` tokens, then linear, reaching ``-factor`` at ``max_len``.
    Returns 0.0 when the buffer is disabled (``overlong_buffer=None``).
    """
    if cfg.overlong_buffer is None:
        return 0.0
    assert cfg.max_response_tokens is not None  # checked in __post_init__
    expected = cfg.max_response_tokens - cfg.overlong_buffer
    exceed = length - expected
    return min(-exceed / cfg.overlong_buffer * cfg.overlong_factor, 0.0) + 0.0  # + 0.0: no -0.0


def node_rewards(values: Sequence[float], cfg: TreeGRPOConfig) -> list[float]:
    """One reward per node from the accumulated node values (v4 Eq. 13), before p_over.

    | reward     | intermediate node j < L        | terminal node L |
    |------------|--------------------------------|-----------------|
    | "fine"     | tanh(v_j / eps_q) * q_max      | v_L (raw)       |
    | "fine_raw" | v_j                            | v_L             |
    | "coarse"   | v_L                            | v_L             |

    ``values``: L floats, root excluded, last = the terminal's value (= its score).
    """
    if len(values) == 0:
        raise ValueError("node_rewards needs at least one node value")
    terminal = float(values[-1])
    if cfg.reward == "coarse":
        return [terminal] * len(values)
    if cfg.reward == "fine_raw":
        return [float(v) for v in values]
    # the soft clip keeps intermediate rewards in (-q_max, q_max); the terminal stays +-1 (Eq. 4)
    return [math.tanh(v / cfg.eps_q) * cfg.q_max for v in values[:-1]] + [terminal]


def token_rewards(traj: TrajectoryLike, cfg: TreeGRPOConfig) -> list[float]:
    """Per-token rewards of one recorded trajectory (docs/paper-notes.md#token-rewards, v4 Eq. 13).

    Every token of node j gets ``node_rewards(values)[j]``; p_over(len(response)) is added to
    EVERY token (code, docs/paper-notes.md#pvc-overlong). Output: ``len(traj.response_ids)`` floats.
    """
    length = len(traj.response_ids)
    spans = list(traj.node_spans)
    per_node = node_rewards(traj.node_values, cfg)
    if len(spans) != len(per_node):
        raise ValueError(f"{len(spans)} node spans but {len(per_node)} node values")
    expected_start = 0
    for start, end in spans:  # the spans must tile the response: no token without a node
        if start != expected_start or end < start:
            raise ValueError(f"node spans {spans} do not tile a response of {length} tokens")
        expected_start = end
    if expected_start != length:
        raise ValueError(f"node spans {spans} do not tile a response of {length} tokens")
    p_over = overlong_penalty(length, cfg)
    rewards: list[float] = []
    for (start, end), r in zip(spans, per_node):
        rewards.extend([r + p_over] * (end - start))
    return rewards


def outcome_token_rewards(length: int, score: float, cfg: TreeGRPOConfig) -> list[float]:
    """Outcome-only rewards of a flat sample (GRPO mode, cached solutions;
    docs/paper-notes.md#hybrid-groups, #pvc-cached-rewards).

    ``score + p_over(length)`` on every one of the ``length`` tokens (coarse, constant).
    """
    return [float(score) + overlong_penalty(length, cfg)] * length


def step_ids_from_spans(node_spans: Sequence[tuple[int, int]], length: int) -> list[int]:
    """Node index of each of ``length`` token positions (-1 where no node covers it, e.g. padding).

    Feeds ``policy_loss(..., step_ids=...)`` for ``loss_agg="step_mean"``.
    """
    ids = [-1] * length
    for j, (start, end) in enumerate(node_spans):
        if not 0 <= start <= end <= length:
            raise ValueError(f"span {(start, end)} outside a sequence of {length} tokens")
        ids[start:end] = [j] * (end - start)
    return ids


# ------------------------------------------------------- advantages (docs/paper-notes.md#advantage)


def _mean_std(scores: Sequence[float]) -> tuple[float, float]:
    mu = sum(scores) / len(scores)
    sigma = math.sqrt(sum((s - mu) ** 2 for s in scores) / len(scores))  # population sigma
    return mu, sigma


def advantages(
    rewards_per_traj: Sequence[Sequence[float]],
    final_scores: Sequence[float],
    cfg: TreeGRPOConfig,
    tree_terminal_scores: Sequence[float] | None = None,
) -> list[list[float]]:
    """Per-token advantages of ONE group (one problem; docs/paper-notes.md#advantage, v4 Eq. 15).

        A_tok = r_tok - mu                          (std_norm=False, mean-only: the scripts)
        A_tok = (r_tok - mu) / (sigma + 1e-6)       (std_norm=True)

    | baseline   | mu, sigma over                                        | source          |
    |------------|-------------------------------------------------------|-----------------|
    | "recorded" | ``final_scores`` (r_L = terminal value + p_over)      | code            |
    | "tree"     | ``tree_terminal_scores`` (every terminal of the tree) | paper Eq. 15    |
    | "none"     | mu = 0; sigma (std_norm) over ``final_scores``        | no baseline     |

    A group of ONE trajectory uses mu = 0, sigma = 1 whatever the baseline (code: the GRPO
    estimator's single-sample rule). Inputs: n lists of T_i rewards and n final scores; output: n
    lists of T_i advantages.
    """
    n = len(rewards_per_traj)
    if len(final_scores) != n:
        raise ValueError(f"{n} reward lists but {len(final_scores)} final scores")
    if n == 0:
        return []
    if cfg.baseline == "tree" and not tree_terminal_scores:
        raise ValueError(
            'baseline="tree" (paper Eq. 15) needs tree_terminal_scores: the scores of every '
            "terminal node of the problem's tree"
        )
    if n == 1:
        mu, sigma = 0.0, 1.0
    elif cfg.baseline == "tree":
        assert tree_terminal_scores is not None
        mu, sigma = _mean_std(tree_terminal_scores)
    else:
        mu, sigma = _mean_std(final_scores)
        if cfg.baseline == "none":
            mu = 0.0
    scale = 1.0 / (sigma + STD_EPS) if cfg.std_norm else 1.0
    return [[(r - mu) * scale for r in rewards] for rewards in rewards_per_traj]


def tree_terminal_scores(tree: Tree | Node) -> list[float]:
    """Scores of every verified terminal node below ``tree`` (a Tree or its root Node)."""
    root = tree.root if isinstance(tree, Tree) else tree
    scores, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.terminal and node.score is not None:
            scores.append(float(node.score))
        stack.extend(node.children)
    return scores


def group_advantages(
    trajs: Sequence[TrajectoryLike],
    cfg: TreeGRPOConfig,
    tree: Tree | Node | None = None,
) -> list[list[float]]:
    """``advantages`` for the recorded trajectories of one search tree.

    Rewards from ``token_rewards``; final score = reward at the last token. With
    ``baseline="tree"`` the terminal scores come from ``tree`` or, when None, from the root of
    the first trajectory's ``leaf`` (``dslib.search.Trajectory``).
    """
    rewards = [token_rewards(t, cfg) for t in trajs]
    if any(len(r) == 0 for r in rewards):
        raise ValueError("a trajectory with an empty response has no final score")
    finals = [r[-1] for r in rewards]
    terminals = None
    if cfg.baseline == "tree" and trajs:
        if tree is None:
            leaf = getattr(trajs[0], "leaf", None)
            if leaf is None:
                raise ValueError('baseline="tree" needs the tree (or trajectories with a .leaf)')
            tree = leaf.path()[0]
        terminals = tree_terminal_scores(tree)
    return advantages(rewards, finals, cfg, terminals)


# ----------------------------------------------------------- loss (docs/paper-notes.md#policy-loss)


def clipped_surrogate(
    log_ratio: torch.Tensor, adv: torch.Tensor, cfg: TreeGRPOConfig
) -> torch.Tensor:
    """Per-token dual-clip PPO loss, verl ``compute_policy_loss`` (docs/paper-notes.md#policy-loss),
    shape (B, T).

        rho = exp(log_ratio)
        L   = max(-A * rho, -A * clip(rho, 1 - clip_low, 1 + clip_high))
        L   = min(L, -A * c)   for A < 0 (dual clip; skipped when cfg.dual_clip is None)

    The log-ratio is not clamped before exp (as verl at the time of the release).
    """
    ratio = torch.exp(log_ratio)
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    clipped = torch.maximum(pg1, pg2)
    if cfg.dual_clip is None:
        return clipped
    pg3 = -adv * cfg.dual_clip
    return torch.where(adv < 0, torch.minimum(pg3, clipped), clipped)


def aggregation_count(
    mask: torch.Tensor, cfg: TreeGRPOConfig, step_ids: torch.Tensor | None = None
) -> int:
    """What ``policy_loss`` divides by for this batch: #tokens, #(row, step) pairs or #rows.

    Sum it over the micro-batches of a mini-batch and pass it as ``normalizer`` so the
    micro-batch losses add up to the mini-batch loss (gradient accumulation).
    """
    valid = mask.bool()
    if cfg.loss_agg == "token_mean":
        return int(valid.sum())
    if cfg.loss_agg == "seq_mean_token_mean":
        return int(valid.any(dim=1).sum())
    keys, _ = _step_keys(valid, step_ids)
    return int(torch.unique(keys[valid & (keys >= 0)]).numel())


def _step_keys(valid: torch.Tensor, step_ids: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """A flat id row * S + step per token (-1 where invalid), and the number of ids."""
    if step_ids is None:
        raise ValueError('loss_agg="step_mean" needs step_ids (B, T): the node index of each token')
    if step_ids.shape != valid.shape:
        raise ValueError(f"step_ids shape {tuple(step_ids.shape)} != mask {tuple(valid.shape)}")
    step_ids = step_ids.long()
    n_steps = int(step_ids.max().clamp(min=0)) + 1 if step_ids.numel() else 1
    rows = torch.arange(valid.shape[0], device=valid.device).unsqueeze(1)
    keys = rows * n_steps + step_ids
    keys = torch.where(valid & (step_ids >= 0), keys, torch.full_like(keys, -1))
    return keys, valid.shape[0] * n_steps


def _aggregate(
    loss_tok: torch.Tensor,
    valid: torch.Tensor,
    cfg: TreeGRPOConfig,
    step_ids: torch.Tensor | None,
    normalizer: float | None,
) -> torch.Tensor:
    zero = loss_tok.new_zeros(())
    loss_tok = torch.where(valid, loss_tok, zero)
    if cfg.loss_agg == "token_mean":
        # verl agg_loss "token-mean": sum / #tokens (verl adds 1e-8 to the count; TRL's "dapo"
        # clamps it at 1, as here, so an empty batch gives 0 rather than 0/1e-8)
        count = valid.sum().clamp(min=1) if normalizer is None else normalizer
        return loss_tok.sum() / count
    if cfg.loss_agg == "seq_mean_token_mean":
        per_row = loss_tok.sum(dim=1) / valid.sum(dim=1).clamp(min=1)
        has_tokens = valid.any(dim=1)
        count = has_tokens.sum().clamp(min=1) if normalizer is None else normalizer
        return (per_row * has_tokens).sum() / count
    # step_mean (v4 Eq. 14): 1/|s_j| sum over the step's tokens, then the mean over all steps;
    # a node shared by several trajectories counts once per trajectory, as a sample of Eq. 14
    keys, n_keys = _step_keys(valid, step_ids)
    sel = keys >= 0
    sums = loss_tok.new_zeros(n_keys).index_add(0, keys[sel], loss_tok[sel])
    counts = loss_tok.new_zeros(n_keys).index_add(0, keys[sel], torch.ones_like(loss_tok[sel]))
    present = counts > 0
    step_means = sums[present] / counts[present]
    count = present.sum().clamp(min=1) if normalizer is None else normalizer
    return step_means.sum() / count


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    cfg: TreeGRPOConfig,
    step_ids: torch.Tensor | None = None,
    normalizer: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped Tree-GRPO policy loss (docs/paper-notes.md#policy-loss; v4 Eq. 14; verl
    ``compute_policy_loss``).

    ``clipped_surrogate`` per token, then ``cfg.loss_agg``:

    | loss_agg              | loss                                                  | source    |
    |-----------------------|-------------------------------------------------------|-----------|
    | "token_mean"          | sum_tokens L / #tokens                                | code      |
    | "step_mean"           | mean over (row, step) of (1/|s_j|) sum_{k in s_j} L    | v4 Eq. 14 |
    | "seq_mean_token_mean" | mean over rows of (1/|o_i|) sum_{k in o_i} L           | GRPO      |

    ``normalizer`` replaces the count in the denominator (see ``aggregation_count``), e.g. the
    mini-batch count when the mini-batch is split for gradient accumulation. Masked positions
    may hold anything (even nan/inf): they get neither loss nor gradient.

    Inputs (B, T): ``logp`` (requires grad), ``old_logp``, ``adv``, ``mask``; ``step_ids`` (B, T)
    int for "step_mean". Returns the scalar loss and python-float metrics, token-weighted means
    over the mask: ``clip_frac_high`` (A > 0, rho > 1 + clip_high), ``clip_frac_low`` (A < 0,
    rho < 1 - clip_low), ``dual_clip_frac`` (A < 0 and the -A*c cap active, verl
    pg_clipfrac_lower), ``approx_kl`` (k1 estimator mean(old_logp - logp), verl ppo_kl),
    ``ratio_mean``, ``adv_mean``, ``n_tokens``.
    """
    if not (logp.shape == old_logp.shape == adv.shape == mask.shape):
        raise ValueError(
            f"shapes differ: logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)}, "
            f"adv {tuple(adv.shape)}, mask {tuple(mask.shape)}"
        )
    valid = mask.bool()
    zero = logp.new_zeros(())
    # sanitise padding BEFORE exp: a where() after exp would still send nan gradients back
    log_ratio = torch.where(valid, logp - old_logp.to(logp.dtype), zero)
    adv = torch.where(valid, adv.to(logp.dtype), zero)
    loss_tok = clipped_surrogate(log_ratio, adv, cfg)
    loss = _aggregate(loss_tok, valid, cfg, step_ids, normalizer)
    return loss, _metrics(log_ratio.detach(), adv, valid, cfg)


@torch.no_grad()
def _metrics(
    log_ratio: torch.Tensor,
    adv: torch.Tensor,
    valid: torch.Tensor,
    cfg: TreeGRPOConfig,
) -> dict[str, float]:
    n = int(valid.sum())

    def mean(x: torch.Tensor) -> float:
        return float(torch.where(valid, x.to(log_ratio.dtype), 0.0).sum() / max(n, 1))

    ratio = torch.exp(log_ratio)
    if cfg.dual_clip is None:
        dual = torch.zeros_like(valid)
    else:  # verl: gt(max(pg1, pg2), -A * c) & (A < 0)
        pg = torch.maximum(
            -adv * ratio, -adv * torch.clamp(ratio, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
        )
        dual = (pg > -adv * cfg.dual_clip) & (adv < 0)
    return {
        "clip_frac_high": mean((ratio > 1.0 + cfg.clip_high) & (adv > 0)),
        "clip_frac_low": mean((ratio < 1.0 - cfg.clip_low) & (adv < 0)),
        "dual_clip_frac": mean(dual),
        "approx_kl": mean(-log_ratio),
        "ratio_mean": mean(ratio),
        "adv_mean": mean(adv),
        "n_tokens": float(n),
    }
