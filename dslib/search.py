"""The search driver: many trees at once, ONE batched policy call per iteration
(docs/paper-notes.md#search-loop).

One iteration (code: ``DeepSearchSGLangRollout._run_mcts_for_prompt`` + ``MCTSAgent``):

1. every live tree contributes one request: the full prefix of its current node and
   ``width(d) - #children`` samples;
2. ONE ``policy.sample(prefixes, n=counts, max_new_tokens=step_tokens, ...)`` call; with
   ``step_boundary`` set (``"\n"``), a sample also stops at the end of its line, so a node is
   one reasoning step rather than a fixed-length chunk (the released code's node,
   docs/paper-notes.md#node);
3. per tree, the "settle" step (``backup_and_selection``):
   - attach every sampled chunk as a child; a child is terminal if its chunk ended with EOS or it
     sits at ``max_depth`` (docs/paper-notes.md#expansion); terminals are verified (+1 / -1 /
     incomplete_score, docs/paper-notes.md#terminal-score);
   - each new non-terminal child gets one visit with value 0 (the code's ``update(0.0)``,
     docs/paper-notes.md#backup);
   - if there are new terminals: ``supervision.to_back_up`` picks the one (or, paper switch, all
     correct ones) to back up (docs/paper-notes.md#which-terminal), ``backup.backup`` updates the
     path (v4 Eq. 3-5) and the leaf is recorded as a trajectory; then the next node comes from the
     global frontier (v4 Eq. 6-7) or, with ``backtrace="uct"``, from one UCT step below the root
     (docs/paper-notes.md#frontier);
   - otherwise the search descends by UCT into a non-terminal child (docs/paper-notes.md#uct), or,
     when every child is terminal, jumps to the frontier (forced global selection);
4. a tree stops with ``n_trajectories`` recorded, or - flagged ``exhausted`` - when the frontier
   is empty (the code would fail an assertion, docs/paper-notes.md#termination) or the iteration cap
   is hit.

Code detail kept (matters only for ``backtrace="uct"``): when the selected node is already fully
expanded, the code re-runs the settle step on its children without generating
(``get_prompts_to_be_expanded``): its non-terminal children get one more visit, a terminal child
that was never backed up gets a second chance to be backed up and recorded, and otherwise UCT
descends one more level, all within the same iteration. With the default global backtrace the
selected node is never fully expanded, so this path does not run.

Values are read at the END (docs/paper-notes.md#backup "values should be extracted after the
construction of the entire MCTS tree"): ``Trajectory.node_values`` reads the nodes when accessed,
after ``run`` returned.

Cost accounting per tree (``SearchStats``):

| field                      | meaning                                                          |
|----------------------------|------------------------------------------------------------------|
| ``sampled_tokens``         | sum of the chunk lengths of every generated node                 |
| ``forward_tokens``         | per request: prefix once + sampled tokens (shared-prefix backend; |
|                            | a backend that also caches across calls, as ``HFPolicy`` does,   |
|                            | computes fewer: its ``counters`` say how many)                   |
| ``forward_tokens_no_reuse``| per request: n x prefix + sampled (official code: every copy is   |
|                            | re-prefilled, prefix cache flushed after each call,               |
|                            | docs/paper-notes.md#termination)                                  |
| ``time_s``                 | share of each batched call's wall time, split in proportion to the|
|                            | tree's ``forward_tokens`` in that call, plus the tree's own       |
|                            | bookkeeping time (verify, settle)                                 |
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from dslib import backup as backup_rules
from dslib import frontier, uct
from dslib.config import SearchConfig
from dslib.policy.base import Policy, Segment
from dslib.progress import progress_bar
from dslib.supervision import to_back_up, trajectory_entropy
from dslib.tree import Node, Tree
from dslib.verify import Verdict

Verifier = Callable[[Any, list[int]], Verdict]


@dataclass
class SearchStats:
    """Counters of one tree (see the table in the module docstring)."""

    iterations: int = 0
    """expansions of this tree (= batched calls it took part in)"""
    nodes: int = 0
    """generated nodes (the root excluded)"""
    sampled_tokens: int = 0
    forward_tokens: int = 0
    forward_tokens_no_reuse: int = 0
    max_depth: int = 0
    """deepest node reached"""
    n_correct: int = 0
    """terminals created with a correct verdict (backed up or not)"""
    n_wrong: int = 0
    n_incomplete: int = 0
    """depth-limit leaves without EOS and without an answer (docs/paper-notes.md#terminal-score)"""
    n_trajectories: int = 0
    """recorded (backed-up) trajectories"""
    time_s: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(eq=False)
class Trajectory:
    """One recorded root-to-terminal path: the training sample (docs/paper-notes.md#token-rewards).

    ``node_spans[j] = (start, end)``: the tokens of node j+1 (depth j+1) are
    ``response_ids[start:end]``. ``node_values`` / ``node_visits`` are read from the tree when
    accessed, so after ``run`` they are the final q^(k_max) values the rewards use.
    """

    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    node_spans: list[tuple[int, int]]
    score: float
    entropy: float
    correct: bool
    leaf: Node

    @classmethod
    def from_leaf(cls, leaf: Node, entropy: str = "sampled_nll") -> Trajectory:
        path = leaf.path()
        spans, start = [], 0
        for node in path[1:]:
            spans.append((start, start + len(node.token_ids)))
            start += len(node.token_ids)
        return cls(
            prompt_ids=list(path[0].token_ids),
            response_ids=leaf.response_ids(),
            logprobs=leaf.response_logprobs(),
            node_spans=spans,
            score=float(leaf.score if leaf.score is not None else 0.0),
            entropy=trajectory_entropy(leaf, entropy),
            correct=leaf.outcome == "correct",
            leaf=leaf,
        )

    @property
    def nodes(self) -> list[Node]:
        """The path's nodes below the root (depth 1 .. leaf)."""
        return self.leaf.path()[1:]

    @property
    def node_values(self) -> list[float]:
        """Accumulated q per node (not Q = q/N); the last one is the terminal's (= score)."""
        return [node.value for node in self.nodes]

    @property
    def node_visits(self) -> list[int]:
        return [node.visits for node in self.nodes]

    @property
    def outcome(self) -> str | None:
        """The leaf's outcome: "correct", "wrong" or "incomplete"."""
        return self.leaf.outcome

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable, the leaf given by its node id."""
        return {
            "prompt_ids": list(self.prompt_ids),
            "response_ids": list(self.response_ids),
            "logprobs": list(self.logprobs),
            "node_spans": [list(span) for span in self.node_spans],
            "node_values": self.node_values,
            "node_visits": self.node_visits,
            "score": self.score,
            "entropy": self.entropy,
            "correct": self.correct,
            "outcome": self.outcome,
            "leaf": self.leaf.id,
        }


@dataclass(eq=False)
class SearchResult:
    """The outcome of one tree: ``exhausted`` when it stopped before ``n_trajectories``."""

    problem: Any
    tree: Tree
    trajectories: list[Trajectory]
    stats: SearchStats
    exhausted: bool

    @property
    def hit_max_iterations(self) -> bool:
        return self.tree.hit_max_iterations


def aggregate_stats(results: Sequence[SearchResult]) -> dict[str, float]:
    """Means of every ``SearchStats`` field over trees, plus ``exhausted`` (a fraction)."""
    n = len(results)
    out: dict[str, float] = {"n_trees": float(n)}
    for f in fields(SearchStats):
        out[f.name] = sum(getattr(r.stats, f.name) for r in results) / n if n else 0.0
    out["exhausted"] = sum(r.exhausted for r in results) / n if n else 0.0
    return out


def outcome(
    verdict: Verdict, cut_off: bool, incomplete_score: float = -1.0
) -> tuple[float, str]:
    """Score of a finished response (v4 Eq. 4, docs/paper-notes.md#terminal-score): (score,
    outcome).

    ``cut_off``: the response hit its length limit without EOS (a depth-limit leaf of a tree,
    or a flat sample at ``max_new_tokens``). Such a response with no answer at all scores
    ``incomplete_score``; otherwise +1 if correct, else -1. Trees and flat samples both use it.
    """
    if cut_off and not verdict.has_answer:
        return float(incomplete_score), "incomplete"
    if verdict.correct:
        return 1.0, "correct"
    return -1.0, "wrong"


def terminal_score(verdict: Verdict, node: Node, cfg: SearchConfig) -> tuple[float, str]:
    """q(s_end) of v4 Eq. 4 as the code (docs/paper-notes.md#terminal-score): :func:`outcome` of a
    leaf, cut off when it sits at max_depth without EOS."""
    cut_off = node.depth >= cfg.max_depth and not node.finished
    return outcome(verdict, cut_off, cfg.incomplete_score)


def _prompt_ids(problem: Any) -> list[int]:
    ids = getattr(problem, "prompt_ids", None)
    if ids is None:
        raise TypeError(f"a search problem needs a .prompt_ids attribute, got {problem!r}")
    return list(ids)


def _attach(
    tree: Tree,
    parent: Node,
    seg: Segment,
    problem: Any,
    verifier: Verifier,
    cfg: SearchConfig,
    stats: SearchStats,
) -> Node:
    """Add one sampled chunk as a child; mark and verify it when terminal
    (docs/paper-notes.md#expansion, #terminal-score)."""
    child = tree.add_child(
        parent, seg.token_ids, seg.logprobs, finished=seg.finished, entropies=seg.entropies
    )
    child.terminal = seg.finished or child.depth >= cfg.max_depth
    stats.nodes += 1
    stats.max_depth = max(stats.max_depth, child.depth)
    if child.terminal:
        child.score, child.outcome = terminal_score(
            verifier(problem, child.response_ids()), child, cfg
        )
        if child.outcome == "correct":
            stats.n_correct += 1
        elif child.outcome == "incomplete":
            stats.n_incomplete += 1
        else:
            stats.n_wrong += 1
    return child


def _backtrace(tree: Tree, cfg: SearchConfig, rng: random.Random) -> Node | None:
    """Where to go after a backup (docs/paper-notes.md#frontier): the frontier, or one UCT step
    below the root."""
    if cfg.backtrace == "uct":
        node = uct.select(tree.root, cfg.uct_c, cfg.uct_deterministic, rng)
        if node is not None:
            return node
        # every root child is terminal: the code fails an assertion here; we try the frontier
    return frontier.select(tree, cfg)


def _current(tree: Tree) -> Node:
    assert tree.current is not None, "a live tree always has a node to expand"
    return tree.current


def _stop(tree: Tree, *, done: bool) -> None:
    tree.current = None
    if done:
        tree.done = True
    else:
        tree.exhausted = True


def _settle(tree: Tree, candidates: list[Node], cfg: SearchConfig, rng: random.Random) -> None:
    """After an expansion of ``tree.current``: visits, backup, recording, next node.

    Leaves ``tree.current`` on a node with fewer children than its width, or stops the tree.
    """
    # each pass records a trajectory, descends one level, or returns: this bound is never hit
    for _ in range((cfg.n_trajectories + 1) * (cfg.max_depth + 2)):
        for child in candidates:
            if not child.terminal:
                child.visits += 1  # code: update(0.0) on every intermediate candidate
        terminals = [c for c in candidates if c.terminal and not c.backed_up]
        if terminals:
            remaining = cfg.n_trajectories - len(tree.recorded)
            chosen = to_back_up(
                terminals, cfg.backup_terminals, cfg.negative_choice, cfg.entropy, rng
            )[:remaining]
            for leaf in chosen:
                assert leaf.score is not None
                backup_rules.backup(leaf, leaf.score, cfg.gamma_min, cfg.gamma, cfg.backup_rule)
                leaf.backed_up = True
                tree.recorded.append(leaf)
            if len(tree.recorded) >= cfg.n_trajectories:
                _stop(tree, done=True)
                return
            nxt = _backtrace(tree, cfg, rng)
        else:
            nxt = uct.select(_current(tree), cfg.uct_c, cfg.uct_deterministic, rng)
            if nxt is None:  # every child is terminal: forced global selection
                nxt = frontier.select(tree, cfg)
        if nxt is None:
            # empty frontier before n_trajectories (docs/paper-notes.md#termination)
            _stop(tree, done=False)
            return
        tree.current = nxt
        if len(nxt.children) < frontier.expansion_width(nxt.depth, cfg):
            return
        # fully expanded (backtrace="uct" only): re-settle on its children, as the code does
        candidates = [c for c in nxt.children if not c.backed_up]
    _stop(tree, done=False)


def run(
    problems: Iterable[Any],
    policy: Policy,
    verifier: Verifier,
    cfg: SearchConfig,
    *,
    progress: bool = False,
) -> list[SearchResult]:
    """Search one tree per problem, all trees in lock-step, one ``policy.sample`` per iteration.

    | argument   | type                                   | meaning                              |
    |------------|----------------------------------------|--------------------------------------|
    | problems   | objects with ``.prompt_ids`` (``.id``) | one tree each; root = the prompt ids  |
    | policy     | ``Policy``                             | batched sampler with behaviour lps    |
    | verifier   | ``(problem, response_ids) -> Verdict`` | checks a terminal's full response     |
    | cfg        | ``SearchConfig``                       | every switch of the search            |
    | return     | ``list[SearchResult]`` (one / problem) | tree, trajectories, stats, exhausted  |

    Each result has exactly ``cfg.n_trajectories`` trajectories unless ``exhausted``.
    Randomness (softmax UCT, random negative choice) comes from ``random.Random(cfg.seed)``.
    """
    problems = list(problems)
    rng = random.Random(cfg.seed)
    # a backend's cross-call prefix cache (HFPolicy) holds this search's nodes only
    clear_cache = getattr(policy, "clear_prefix_cache", None)
    if callable(clear_cache):
        clear_cache()
    trees = [Tree(_prompt_ids(p)) for p in problems]
    stats = [SearchStats() for _ in problems]
    bar = progress_bar(
        enabled=progress, total=len(problems) * cfg.n_trajectories, desc="search", unit="traj"
    )
    calls = 0
    while True:
        live = [i for i, tree in enumerate(trees) if tree.current is not None]
        if not live:
            break
        if calls >= cfg.max_iterations:
            for i in live:
                trees[i].hit_max_iterations = True
                _stop(trees[i], done=False)
            break
        calls += 1
        nodes = [_current(trees[i]) for i in live]
        prefixes = [node.prefix_ids() for node in nodes]
        # width(d) - #children: always >= 1, _settle only stops on a node with room left
        counts = [frontier.expansion_width(n.depth, cfg) - len(n.children) for n in nodes]
        t0 = time.perf_counter()
        # a node ends at step_tokens, or earlier at the step boundary (a line end)
        stop = {} if cfg.step_boundary is None else {"stop": cfg.step_boundary}
        outputs = policy.sample(
            prefixes,
            n=counts,
            max_new_tokens=cfg.step_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            **stop,
        )
        call_s = time.perf_counter() - t0
        if len(outputs) != len(prefixes) or [len(o) for o in outputs] != counts:
            raise RuntimeError(
                f"policy.sample returned {[len(o) for o in outputs]} samples, asked for {counts}"
            )
        sampled = [sum(len(seg.token_ids) for seg in segs) for segs in outputs]
        forward = [len(p) + s for p, s in zip(prefixes, sampled, strict=True)]
        total_forward = sum(forward) or 1
        recorded_before = sum(len(t.recorded) for t in trees)
        for j, i in enumerate(live):
            t1 = time.perf_counter()
            tree, st, parent = trees[i], stats[i], nodes[j]
            tree.iterations += 1
            st.iterations += 1
            st.sampled_tokens += sampled[j]
            st.forward_tokens += forward[j]
            st.forward_tokens_no_reuse += counts[j] * len(prefixes[j]) + sampled[j]
            children = [
                _attach(tree, parent, seg, problems[i], verifier, cfg, st) for seg in outputs[j]
            ]
            _settle(tree, children, cfg, rng)
            st.time_s += call_s * forward[j] / total_forward + (time.perf_counter() - t1)
        bar.update(sum(len(t.recorded) for t in trees) - recorded_before)
    bar.close()
    if callable(clear_cache):
        clear_cache()

    results = []
    for problem, tree, st in zip(problems, trees, stats, strict=True):
        trajectories = [Trajectory.from_leaf(leaf, cfg.entropy) for leaf in tree.recorded]
        st.n_trajectories = len(trajectories)
        results.append(SearchResult(problem, tree, trajectories, st, tree.exhausted))
    return results
