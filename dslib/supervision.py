"""Which new terminal gets backed up, docs/paper-notes.md#which-terminal, #entropy (v4 Eq. 1-2).

Paper (v4 Eq. 1-2): split the terminals of an expansion into S_correct and S_incorrect; extract
the correct trajectories if any, else back up the most confident negative

    s*_neg = argmin_{s in S_incorrect} Hbar(t(s)),
    Hbar(t) = (1/|t|) * sum_i H(pi_theta(. | o_i))          (average entropy along the path)

Code (``MCTSAgent.backup_and_selection``), the default here: exactly ONE terminal per expansion.
Partition by SCORE: +1 if any, else -1 if any (incomplete leaves are lumped in when
incomplete_score == -1), else all; then the kept candidate with the lowest trajectory entropy,
where the entropy is the mean sampled-token NLL over the WHOLE root-to-leaf response
(token-level mean over the concatenated chunks, docs/paper-notes.md#entropy).

Switches:

| argument            | values                                            | default (code)   |
|---------------------|---------------------------------------------------|------------------|
| ``negative_choice`` | most_confident / random / least_confident (Tab. 5)| most_confident   |
| ``entropy``         | sampled_nll / shannon (mean of Segment.entropies) | sampled_nll      |
| ``backup_terminals``| one / all_correct (paper: every correct terminal) | one              |

``negative_choice`` only acts on the -1 class; correct (and "other") candidates always take the
lowest entropy. Ties go to the first candidate (creation order), as the code's ``list.index(min)``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from dslib.tree import Node

NEGATIVE_CHOICES = ("most_confident", "random", "least_confident")
ENTROPY_KINDS = ("sampled_nll", "shannon")


def trajectory_entropy(node: Node, kind: str = "sampled_nll") -> float:
    """Hbar(t(s)): token-level mean over every response token root..node (0 for no tokens).

    sampled_nll: mean of -log p(sampled token) (code, docs/paper-notes.md#entropy).
    shannon: mean of the per-token Shannon entropies ``Node.entropies`` (paper's formula, with
    a token-level mean); needs a backend that reports full distributions.
    """
    chunks = node.path()[1:]
    if kind == "sampled_nll":
        values = [-lp for n in chunks for lp in n.logprobs]
    elif kind == "shannon":
        missing = [n.id for n in chunks if n.entropies is None]
        if missing:
            raise ValueError(
                "entropy='shannon' needs per-token entropies (Segment.entropies), but nodes "
                f"{missing} have none: use a backend that reports full distributions, or "
                "entropy='sampled_nll'"
            )
        values = [h for n in chunks for h in (n.entropies or [])]
    else:
        raise ValueError(f"unknown entropy kind {kind!r}; expected one of {ENTROPY_KINDS}")
    return sum(values) / len(values) if values else 0.0


def _argmin(values: Sequence[float]) -> int:
    return min(range(len(values)), key=lambda i: (values[i], i))


def _argmax(values: Sequence[float]) -> int:
    return min(range(len(values)), key=lambda i: (-values[i], i))


def partition(candidates: Sequence[Node]) -> tuple[str, list[Node]]:
    """The kept class, as the code: ("correct", +1) > ("wrong", -1) > ("other", all)."""
    scores = [_score_of(c) for c in candidates]
    if any(s == 1.0 for s in scores):
        return "correct", [c for c, s in zip(candidates, scores, strict=True) if s == 1.0]
    if any(s == -1.0 for s in scores):
        return "wrong", [c for c, s in zip(candidates, scores, strict=True) if s == -1.0]
    return "other", list(candidates)


def _score_of(node: Node) -> float:
    if node.score is None:
        raise ValueError(f"terminal candidate {node!r} has no score; verify it first")
    return node.score


def choose_terminal(
    candidates: Sequence[Node],
    negative_choice: str = "most_confident",
    entropy: str = "sampled_nll",
    rng: random.Random | None = None,
) -> Node:
    """The terminal to back up: best outcome class first, lowest trajectory entropy within.

    In the wrong class, ``negative_choice`` decides: lowest entropy (most_confident, code and
    paper), a uniform pick (random; pass a seeded ``rng``), or highest entropy (least_confident).
    """
    if not candidates:
        raise ValueError("choose_terminal needs at least one terminal candidate")
    if negative_choice not in NEGATIVE_CHOICES:
        raise ValueError(
            f"unknown negative_choice {negative_choice!r}; expected one of {NEGATIVE_CHOICES}"
        )
    kind, kept = partition(candidates)
    if kind == "wrong" and negative_choice == "random":
        rng = rng if rng is not None else random.Random()
        return kept[rng.randrange(len(kept))]
    entropies = [trajectory_entropy(c, entropy) for c in kept]
    if kind == "wrong" and negative_choice == "least_confident":
        return kept[_argmax(entropies)]
    return kept[_argmin(entropies)]


def to_back_up(
    candidates: Sequence[Node],
    backup_terminals: str = "one",
    negative_choice: str = "most_confident",
    entropy: str = "sampled_nll",
    rng: random.Random | None = None,
) -> list[Node]:
    """The terminals of one expansion to back up and record, in recording order.

    one (code): ``[choose_terminal(...)]``.
    all_correct (paper, v4 Eq. 1): every correct terminal, lowest entropy first (so the first is
    the one "one" would pick); when none is correct, falls back to ``[choose_terminal(...)]``.
    """
    if backup_terminals == "one":
        return [choose_terminal(candidates, negative_choice, entropy, rng)]
    if backup_terminals != "all_correct":
        raise ValueError(
            f"unknown backup_terminals {backup_terminals!r}; expected 'one' or 'all_correct'"
        )
    kind, kept = partition(candidates)
    if kind != "correct":
        return [choose_terminal(candidates, negative_choice, entropy, rng)]
    order = sorted(range(len(kept)), key=lambda i: (trajectory_entropy(kept[i], entropy), i))
    return [kept[i] for i in order]
