"""Global frontier selection, docs/paper-notes.md#frontier (v4 Eq. 6-7; v1 Eq. 9-10).

After a backup the search does not walk down from the root again: it jumps to the most promising
unexpanded node anywhere in the tree.

    F = { s in T : xi(s) = 0, s not in S_end, d(s) < d_T }                            (v4 Eq. 6)

    F(s) = lambda1 * tanh(Q(parent(s)))       quality potential                       (v4 Eq. 7)
         + lambda4 * tanh(Q(s))               own quality (code only, when lambda4 > 0)
         + lambda2 * H(s)                     uncertainty (with entropy_bonus; code: off)
         + lambda3 * D(d(s))                  depth bonus, D in {sqrt(d/d_T), log(d+1), d}

    s* = argmax_{s in F} F(s), ties -> the first node in depth-first pre-order (strict >)

H(s) is what the code computes (``select_global_best_node``): the mean negative log-prob of the
sampled tokens of the node's OWN chunk, not the paper's full-distribution entropy.

Candidates as the code (``global_select`` with ``force_to_frontier=True``): every non-root,
non-terminal node with fewer children than the expansion width at its depth; for a fixed width
that is exactly "unexpanded" (nodes at d_T are terminal already, so d(s) < d_T holds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dslib.config import SearchConfig
from dslib.tree import Node, Tree


def expansion_width(depth: int, cfg: SearchConfig) -> int:
    """Children generated when a node at ``depth`` is expanded.

    Code: ``MCTSAgent.get_expansion_width_at_depth``.

    Fixed ``cfg.width`` unless ``cfg.dynamic_width = (min_width, decay_factor)``
    (docs/paper-notes.md#expansion):

        width(d) = max(min_width, W - floor(d / floor(d_T / W)) * decay_factor)

    ``floor(d_T / W)`` is clamped to >= 1 (the code divides by zero when d_T < W).
    """
    if cfg.dynamic_width is None:
        return cfg.width
    min_width, decay = cfg.dynamic_width
    step_size = max(1, cfg.max_depth // cfg.width)
    return max(min_width, cfg.width - (depth // step_size) * decay)


def candidates(tree: Tree, cfg: SearchConfig | None = None) -> list[Node]:
    """The frontier F in depth-first pre-order: non-root, non-terminal, not fully expanded.

    Without ``cfg``, "not fully expanded" means no children at all (fixed width).
    """
    out = []
    for node in tree.nodes():
        if node.is_root or node.terminal:
            continue
        width = 1 if cfg is None else expansion_width(node.depth, cfg)
        if len(node.children) < width:
            out.append(node)
    return out


@dataclass(frozen=True)
class PriorityTerms:
    """The terms of F(s), kept apart so that a notebook can show why a node won."""

    quality: float
    """lambda1 * tanh(Q(parent))"""
    own: float
    """lambda4 * tanh(Q(s)) (0 unless lambda4 > 0)"""
    uncertainty: float
    """lambda2 * H(chunk) (0 unless the entropy bonus is on)"""
    depth: float
    """lambda3 * D(d)"""

    @property
    def total(self) -> float:
        # summed in the code's order, so that ties break exactly as there
        return ((self.quality + self.own) + self.uncertainty) + self.depth


def depth_bonus(depth: int, kind: str, max_depth: int) -> float:
    """D(d): "sqrt" sqrt(d/d_T) (default), "log" ln(d+1), "linear" d (code: "constant")."""
    if kind == "sqrt":
        return math.sqrt(depth / max_depth)
    if kind == "log":
        return math.log(depth + 1)
    if kind == "linear":
        return float(depth)
    raise ValueError(f"unknown depth bonus {kind!r}; expected 'sqrt', 'log' or 'linear'")


def chunk_nll(node: Node) -> float:
    """H(s) as the code: mean -log p of the node's own sampled tokens (0 for an empty chunk)."""
    if not node.logprobs:
        return 0.0
    return -sum(node.logprobs) / len(node.logprobs)


def priority(node: Node, cfg: SearchConfig) -> PriorityTerms:
    """F(s) of v4 Eq. 7 with the code's extras, term by term (see the module docstring)."""
    if node.parent is None:
        raise ValueError("the root is never a frontier candidate")
    quality = cfg.lambda1 * math.tanh(node.parent.q)
    own = cfg.lambda4 * math.tanh(node.q) if cfg.lambda4 > 0 else 0.0  # code: `if lambda4 > 0`
    uncertainty = cfg.lambda2 * chunk_nll(node) if cfg.entropy_bonus else 0.0
    depth = cfg.lambda3 * depth_bonus(node.depth, cfg.depth_bonus, cfg.max_depth)
    return PriorityTerms(quality=quality, own=own, uncertainty=uncertainty, depth=depth)


def ranked(tree: Tree, cfg: SearchConfig) -> list[tuple[Node, PriorityTerms]]:
    """Every candidate with its terms, in DFS pre-order (not sorted: the order breaks ties)."""
    return [(node, priority(node, cfg)) for node in candidates(tree, cfg)]


def select(tree: Tree, cfg: SearchConfig) -> Node | None:
    """s* = argmax_{s in F} F(s), first in DFS pre-order on ties; None when F is empty."""
    best: Node | None = None
    best_total = -math.inf
    for node, terms in ranked(tree, cfg):
        if best is None or terms.total > best_total:
            best, best_total = node, terms.total
    return best
