"""The search tree: one node = one step = one chunk of sampled tokens (a fixed length, or a line).

Paper notes: docs/paper-notes.md#notation, #node. The root holds the tokenised prompt x (depth 0); a
child holds only its own chunk s_i (depth 1 for the first step). The state before a step is the
concatenation of the chunks root..node, o_i = x (+) s_1 (+) ... (+) s_{i-1}; a trajectory is a
root-to-terminal path.

Per node (notation of docs/paper-notes.md#notation):

| field       | symbol | meaning                                                            |
|-------------|--------|--------------------------------------------------------------------|
| ``depth``   | d(s)   | 0 for the root                                                     |
| ``value``   | q(s)   | accumulated q-value (v4 Eq. 3-5), 0 until a backup reaches it      |
| ``visits``  | N(s)   | visit count; a fresh non-terminal child starts at 1 (code,         |
|             |        | docs/paper-notes.md#backup)                                        |
| ``q``       | Q(s)   | q(s) / N(s), 0 when N(s) = 0; used by UCT and the frontier          |
| ``score``   | q(s_end) | terminal score +1 / -1 / incomplete_score once verified (Eq. 4)  |
| children    | xi(s)  | ``len(children)``                                                  |

Only the search driver mutates nodes; ``backup`` changes ``value``/``visits``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False, repr=False)
class Node:
    """One step of the search: its own chunk of tokens plus the statistics of the tree search."""

    token_ids: list[int]
    """this node's chunk (the root holds the prompt ids)"""
    logprobs: list[float] = field(default_factory=list)
    """behaviour log-probs of ``token_ids`` (empty for the root)"""
    parent: Node | None = None
    depth: int = 0
    entropies: list[float] | None = None
    """Shannon entropy per token, when the backend reports full distributions"""
    finished: bool = False
    """the chunk ended with EOS"""
    terminal: bool = False
    """finished, or at max depth: never expanded (docs/paper-notes.md#expansion)"""
    score: float | None = None
    """terminal score once verified: +1, -1 or incomplete_score"""
    outcome: str | None = None
    """verdict class once verified: "correct", "wrong" or "incomplete" (kept apart from score)"""
    value: float = 0.0
    visits: int = 0
    backed_up: bool = False
    """this terminal was backed up and recorded as a trajectory (the code's ``final_backup``)"""
    id: int = 0
    """creation index within its tree (the root is 0)"""
    children: list[Node] = field(default_factory=list)

    @property
    def q(self) -> float:
        """Q(s) = q(s) / N(s); 0 when N(s) = 0 (code: ``MCTSNode.q_value``)."""
        return self.value / self.visits if self.visits else 0.0

    @property
    def is_root(self) -> bool:
        return self.parent is None

    def path(self) -> list[Node]:
        """Nodes root..self (both included)."""
        nodes: list[Node] = []
        node: Node | None = self
        while node is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    def prefix_ids(self) -> list[int]:
        """The full policy input o: prompt ids followed by every chunk down to (and with) self."""
        return [t for node in self.path() for t in node.token_ids]

    def response_ids(self) -> list[int]:
        """The chunks below the root, concatenated (empty for the root)."""
        return [t for node in self.path()[1:] for t in node.token_ids]

    def response_logprobs(self) -> list[float]:
        """Behaviour log-probs aligned with ``response_ids()``."""
        return [lp for node in self.path()[1:] for lp in node.logprobs]

    def __repr__(self) -> str:
        return (
            f"Node(id={self.id}, depth={self.depth}, n_tokens={len(self.token_ids)}, "
            f"value={self.value:.4g}, visits={self.visits}, terminal={self.terminal}, "
            f"score={self.score}, children={len(self.children)})"
        )


class Tree:
    """One search tree per problem, plus the driver's bookkeeping for it.

    Bookkeeping: ``current`` (node to expand next, None once stopped), ``recorded`` (backed-up
    terminals in recording order: one trajectory each), ``iterations`` (expansions of this tree),
    ``done`` (enough trajectories), ``exhausted`` (stopped early: empty frontier or the
    iteration cap), ``hit_max_iterations``.
    """

    def __init__(self, prompt_ids: Sequence[int]) -> None:
        self.root = Node(token_ids=list(prompt_ids), id=0)
        self._next_id = 1
        self.current: Node | None = self.root
        self.recorded: list[Node] = []
        self.iterations = 0
        self.done = False
        self.exhausted = False
        self.hit_max_iterations = False

    def add_child(
        self,
        parent: Node,
        token_ids: Sequence[int],
        logprobs: Sequence[float] | None = None,
        *,
        finished: bool = False,
        terminal: bool = False,
        entropies: Sequence[float] | None = None,
    ) -> Node:
        """Attach a chunk below ``parent``; ``logprobs`` default to zeros (hand-built trees)."""
        ids = list(token_ids)
        lps = [0.0] * len(ids) if logprobs is None else list(logprobs)
        if len(lps) != len(ids):
            raise ValueError(f"{len(ids)} tokens but {len(lps)} log-probs")
        child = Node(
            token_ids=ids,
            logprobs=lps,
            parent=parent,
            depth=parent.depth + 1,
            entropies=None if entropies is None else list(entropies),
            finished=finished,
            terminal=terminal,
            id=self._next_id,
        )
        self._next_id += 1
        parent.children.append(child)
        return child

    @property
    def n_nodes(self) -> int:
        """Number of nodes, the root included."""
        return self._next_id

    def nodes(self) -> Iterator[Node]:
        """All nodes in depth-first pre-order, children in creation order (iterative)."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def to_dict(
        self,
        decode: Callable[[list[int]], str] | None = None,
        *,
        include_tokens: bool = False,
    ) -> dict[str, Any]:
        """A JSON-serialisable snapshot (for drawings, logs, determinism checks).

        ``decode`` (e.g. ``tokenizer.decode``) adds each node's chunk as ``text``.
        """
        nodes = []
        for node in self.nodes():
            entry: dict[str, Any] = {
                "id": node.id,
                "parent": None if node.parent is None else node.parent.id,
                "depth": node.depth,
                "n_tokens": len(node.token_ids),
                "q": node.q,
                "value": node.value,
                "visits": node.visits,
                "terminal": node.terminal,
                "finished": node.finished,
                "score": node.score,
                "outcome": node.outcome,
                "backed_up": node.backed_up,
            }
            if include_tokens:
                entry["token_ids"] = list(node.token_ids)
            if decode is not None:
                entry["text"] = decode(list(node.token_ids))
            nodes.append(entry)
        return {
            "nodes": nodes,
            "current": None if self.current is None else self.current.id,
            "recorded": [leaf.id for leaf in self.recorded],
            "iterations": self.iterations,
            "done": self.done,
            "exhausted": self.exhausted,
            "hit_max_iterations": self.hit_max_iterations,
        }
