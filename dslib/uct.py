"""Local (sibling) selection by UCT, docs/paper-notes.md#uct (v4 Sec. 3.3, inline; v1 Eq. 8).

    UCT(s) = Q(s) + c * sqrt( ln N(parent(s)) / N(s) ),     Q(s) = q(s) / N(s),   c = 2.0

As the released code (``MCTSNode.puct``, ``MCTSAgent.select_child``):

- the exploration term is 0 (not +inf) when N(s) = 0 or N(parent) = 0;
- terminal children score -inf, so they are never picked;
- the pick is a deterministic argmax with the FIRST maximum winning ties, or (switch) a sample
  from softmax(UCT) over the children.

Why the tie rule matters: fresh siblings all have Q = 0, N = 1, hence identical UCT values, so the
code always continues with the first generated child (docs/paper-notes.md#uct [Derived]).
"""

from __future__ import annotations

import math
import random

from dslib.tree import Node


def score(node: Node, c: float = 2.0) -> float:
    """UCT(s) = Q(s) + c * sqrt(ln N_parent / N(s)); u = 0 if N or N_parent is 0; terminal: -inf."""
    if node.terminal:
        return -math.inf
    n_parent = node.parent.visits if node.parent is not None else 0
    if node.visits == 0 or n_parent == 0:
        u = 0.0
    else:
        u = c * math.sqrt(math.log(n_parent) / node.visits)
    return node.q + u


def softmax(values: list[float]) -> list[float]:
    """Numerically stable softmax of finite values."""
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def select(
    parent: Node,
    c: float = 2.0,
    deterministic: bool = True,
    rng: random.Random | None = None,
) -> Node | None:
    """Pick the child to descend into; None when ``parent`` has no non-terminal child.

    deterministic: argmax of ``score``, first child on ties (strict ``>``, as torch.argmax).
    otherwise: sample a child with probability softmax(UCT) over the non-terminal children
    (terminal children have -inf, i.e. probability 0). Pass a seeded ``rng`` to reproduce.
    """
    options = [child for child in parent.children if not child.terminal]
    if not options:
        return None
    values = [score(child, c) for child in options]
    if deterministic:
        best = 0
        for i, v in enumerate(values):
            if v > values[best]:
                best = i
        return options[best]
    rng = rng if rng is not None else random.Random()
    probs = softmax(values)
    draw = rng.random()
    cumulative = 0.0
    for child, p in zip(options, probs, strict=True):
        cumulative += p
        if draw < cumulative:
            return child
    return options[-1]  # floating-point round-off: the cumulative sum fell just short of 1
