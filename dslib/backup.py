"""Heuristic score backup along a root-to-terminal path, (v4 Eq. 3-5; v1 Eq. 4-7)
docs/paper-notes.md#backup.

A verified terminal s_end with score r = q(s_end) in {+1, -1, incomplete_score} (v4 Eq. 4) is
pushed up the path s_0 (root) .. s_L (leaf). Every node on the path, root and leaf included:

    N(s_i) <- N(s_i) + 1
    q(s_i) <- rule(q(s_i), gamma(i, L), r)

Depth-decay weight (v4 Eq. 3, inline):

    code  (default):  gamma(i, L) = max((i + 1) / (L + 1), gamma_min)    # MCTSNode.update
    paper          :  gamma(i, L) = max(i / L, gamma_min)

Constrained rule (v4 Eq. 5), the one actually used:

    q + g*r      if q * r >= 0           signs agree (or one is 0): accumulate
    g*r          elif r > 0              negative node now on a correct path: overwrite
    q            elif q > 0              positive node: ignore the negative signal

so a node that was ever on a correct path keeps q >= 0 (v4 App. B.2).

The code's ``if value != 0`` guard around the update changes nothing: with r = 0 the first case
adds 0. The "vanilla" rule of Table 4 (docs/paper-notes.md#advantage) is a switch:

    q + g*r if q * r >= 0 else max(q + g*r, 0)
"""

from __future__ import annotations

from dslib.tree import Node


def gamma(depth: int, leaf_depth: int, gamma_min: float = 0.1, mode: str = "code") -> float:
    """Credit weight of the node at ``depth`` for a terminal at ``leaf_depth`` (v4 Eq. 3).

    code: max((d+1)/(L+1), gamma_min); paper: max(d/L, gamma_min). The leaf gets 1 in both.
    """
    if mode == "code":
        raw = (depth + 1) / (leaf_depth + 1)
    elif mode == "paper":
        raw = depth / leaf_depth if leaf_depth > 0 else 1.0
    else:
        raise ValueError(f"unknown gamma mode {mode!r}; expected 'code' or 'paper'")
    return max(raw, gamma_min)


def update_value(q_old: float, g: float, r: float) -> float:
    """The constrained sign rule of v4 Eq. 5: one node's new q from its old q, gamma and score."""
    if q_old * r >= 0:
        return q_old + g * r
    if r > 0:  # q_old < 0 here: a negative node on a correct path is overwritten
        return g * r
    return q_old  # q_old > 0 and r < 0: a positive node ignores the negative signal


def update_value_vanilla(q_old: float, g: float, r: float) -> float:
    """Table 4's "vanilla" update (docs/paper-notes.md#advantage): q + g*r if same sign else
    max(q + g*r, 0)."""
    if q_old * r >= 0:
        return q_old + g * r
    return max(q_old + g * r, 0.0)


_RULES = {"constrained": update_value, "vanilla": update_value_vanilla}


def backup(
    leaf: Node,
    score: float,
    gamma_min: float = 0.1,
    mode: str = "code",
    rule: str = "constrained",
) -> list[Node]:
    """Back ``score`` up from ``leaf`` through the root; returns the updated nodes root..leaf.

    Each node on the path gets ``visits += 1`` and ``value = rule(value, gamma(d, L), score)``.
    The root is updated too (code): its value is never a training reward, but Q(root) enters
    the frontier score of depth-1 nodes.
    """
    if rule not in _RULES:
        raise ValueError(f"unknown backup rule {rule!r}; expected one of {sorted(_RULES)}")
    update = _RULES[rule]
    path = leaf.path()
    for node in path:
        g = gamma(node.depth, leaf.depth, gamma_min, mode)
        node.visits += 1
        node.value = update(node.value, g, score)
    return path
