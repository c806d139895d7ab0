"""Rollout strategies: how each problem drawn in a step gets its group of training samples.

A strategy takes problems (anything with ``prompt_ids`` and ``id``), the policy, the verifier
and a seed, and returns one :class:`Group` per problem. Every group ends the same way: each
sample holds per-token advantages, so the learner never needs to know where it came from.

| strategy (``name``) | group of one problem                          | rewards -> advantages      |
|---------------------|-----------------------------------------------|----------------------------|
| ``tree``            | ``search.run``: the recorded trajectories of  | Tree-GRPO per-node rewards |
|                     | one search tree (DeepSearch,                  | (v4 Eq. 13, 15)            |
|                     | docs/paper-notes.md#search)                   |                            |
| ``flat``            | n independent samples, one batched call       | outcome on every token:    |
|                     | (the GRPO/DAPO baseline)                      | DAPO's loss (v4 Eq. 15)    |
| ``adaptive``        | flat samples in rounds of ``chunk`` (one call | as ``flat``, over every    |
|                     | per round for all open problems) until a      | sample drawn               |
|                     | correct and a wrong one, or the token budget  |                            |
| ``cached``          | a replay-buffer hit: k = min(#cached, n)      | outcome on every token,    |
|                     | verified solutions + n - k direct samples     | cached ones re-verified    |
|                     | (v4 Eq. 11-12, docs/paper-notes.md#hybrid-groups) |                        |

A new strategy is a class with these four members and a name in ``config.STRATEGIES``:
``__call__(items, policy, verifier, seed) -> list[Group]``, ``group_size``,
``max_new_tokens`` and ``temperature`` (the last three size the direct samples of a cached
group that stands in for it).

Shapes (T = the response's tokens):

| ``Sample`` field       | type        | meaning                                                  |
|------------------------|-------------|----------------------------------------------------------|
| ``prompt_ids``         | list[int]   | the problem's prompt                                     |
| ``response_ids``       | list[int] T | sampled (or cached) response, EOS included if finished   |
| ``advantages``         | list[float] T | per-token advantage                                    |
| ``step_ids``           | list[int] T | node index of each token (flat and cached: all 0)        |
| ``behaviour_logprobs`` | list[float] T | log-probs the tokens were sampled with (cached: zeros; |
|                        |             | the learner recomputes old log-probs anyway)             |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dslib import search, tree_grpo
from dslib.config import AdaptiveConfig, RolloutConfig, SearchConfig, TreeGRPOConfig
from dslib.policy.base import Policy, Segment
from dslib.replay import ReplayBuffer
from dslib.verify import Verdict

Verifier = Callable[[Any, list[int]], Verdict]


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
    cached: bool = False
    """a replayed verified solution (docs/paper-notes.md#hybrid-groups), not sampled this step"""


@dataclass
class Group:
    """One problem's samples (advantages are relative to each other) and what they cost."""

    problem_id: str
    samples: list[Sample]
    strategy: str
    """the strategy that made it ("tree", "flat", "cached", ...)"""
    sampled_tokens: int = 0
    """tokens sampled for it this step (cached solutions are not sampled)"""
    forward_tokens: int = 0
    """tokens the sampler ran through the model: prompts once (shared prefill) + sampled"""
    forward_tokens_no_reuse: int = 0
    """the same without prefix reuse: every sample pays its whole prefix"""
    stats: dict[str, float] = field(default_factory=dict)
    """the strategy's own numbers (tree: ``search_*``; cached: members and saved tokens)"""


# ----------------------------------------------------------------------------- outcome groups


def outcome_group(
    item: Any,
    members: Sequence[tuple[list[int], list[float], bool]],
    verifier: Verifier,
    grpo_cfg: TreeGRPOConfig,
    incomplete_score: float,
    n_cached: int = 0,
) -> list[Sample]:
    """One problem's whole responses with OUTCOME rewards (flat and cached groups).

    ``members``: (response ids, behaviour log-probs, finished with EOS); the first ``n_cached``
    are replayed solutions (docs/paper-notes.md#hybrid-groups). Each is verified and scored by
    :func:`dslib.search.outcome`, gets its score (+ overlong penalty) on every token
    (``tree_grpo.outcome_token_rewards``) and the group advantage of ``tree_grpo.advantages``:
    with sequence-level rewards the loss is DAPO's (docs/paper-notes.md#advantage).
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
               behaviour_logprobs=list(logps), cached=j < n_cached)
        for j, ((ids, logps, _), score, ok, adv) in enumerate(
            zip(members, scores, oks, advs, strict=True))
    ]


def hybrid_group(
    item: Any,
    cached: Sequence[Sequence[int]],
    fresh: Sequence[Segment],
    verifier: Verifier,
    grpo_cfg: TreeGRPOConfig,
    incomplete_score: float = -1.0,
    *,
    n: int | None = None,
    eos_token_id: int | None = None,
) -> list[Sample]:
    """The group of one cached problem: k = min(#cached, n) cached members first, then fresh.

    ``n`` (default ``len(fresh)``, the code's path: n rollouts sampled, the first k
    overwritten) is the group size; only the LAST n - k segments of ``fresh`` are used, so
    passing exactly n - k segments (what :class:`CachedRollout` samples) gives the same group.
    Cached solutions beyond n are not used (the code keeps the first n). Every member is
    verified, cached ones too (:func:`outcome_group`). A cached member counts as finished iff
    it ends with ``eos_token_id``, which only matters for one that no longer verifies and has
    no answer (incomplete_score).
    """
    n = len(fresh) if n is None else int(n)
    if n < 1:
        raise ValueError(f"a group needs n >= 1 members, got n={n}")
    k = min(len(cached), n)
    need = n - k
    if len(fresh) < need:
        raise ValueError(f"{k} cached solutions and {len(fresh)} fresh samples cannot fill a "
                         f"group of {n}: need {need} fresh samples")
    members: list[tuple[list[int], list[float], bool]] = []
    for ids in cached[:k]:
        ids = [int(t) for t in ids]
        if not ids:
            raise ValueError("an empty cached solution")
        finished = eos_token_id is not None and ids[-1] == eos_token_id
        members.append((ids, [0.0] * len(ids), finished))  # log-probs unknown: recomputed
    for seg in fresh[len(fresh) - need :] if need else []:
        members.append((list(seg.token_ids), list(seg.logprobs), bool(seg.finished)))
    return outcome_group(item, members, verifier, grpo_cfg, incomplete_score, n_cached=k)


# ----------------------------------------------------------------------------- strategies


@dataclass
class TreeRollout:
    """DeepSearch: one search tree per problem, all trees in one ``search.run``; Tree-GRPO
    advantages per tree (``tree_grpo.group_advantages``)."""

    search: SearchConfig
    grpo: TreeGRPOConfig
    name: str = "tree"

    @property
    def group_size(self) -> int:
        return self.search.n_trajectories

    @property
    def max_new_tokens(self) -> int:
        """A whole trajectory's cap: the code gives direct rollouts the full response length."""
        return self.search.step_tokens * self.search.max_depth

    @property
    def temperature(self) -> float:
        return self.search.temperature

    def __call__(self, items: Sequence[Any], policy: Policy, verifier: Verifier,
                 seed: int) -> list[Group]:
        cfg = dataclasses.replace(self.search, seed=seed)
        groups = []
        for res in search.run(list(items), policy, verifier, cfg):
            advs = (tree_grpo.group_advantages(res.trajectories, self.grpo, tree=res.tree)
                    if res.trajectories else [])
            samples = [
                Sample(prompt_ids=list(t.prompt_ids), response_ids=list(t.response_ids),
                       advantages=list(adv),
                       step_ids=tree_grpo.step_ids_from_spans(t.node_spans, len(t.response_ids)),
                       score=float(t.score), correct=bool(t.correct),
                       behaviour_logprobs=list(t.logprobs))
                for t, adv in zip(res.trajectories, advs, strict=True)]
            st = res.stats
            groups.append(Group(
                str(res.problem.id), samples, self.name, st.sampled_tokens, st.forward_tokens,
                st.forward_tokens_no_reuse,
                {"search_iterations": st.iterations, "search_nodes": st.nodes,
                 "search_exhausted": float(res.exhausted),
                 "search_solved": float(st.n_correct > 0)}))
        return groups


@dataclass
class FlatRollout:
    """GRPO/DAPO: ``group_size`` samples per problem in one batched call, outcome rewards."""

    group_size: int
    max_new_tokens: int
    temperature: float
    grpo: TreeGRPOConfig
    incomplete_score: float = -1.0
    """score of a sample that hit the length cap without an answer (as the search's)"""
    name: str = "flat"

    def __call__(self, items: Sequence[Any], policy: Policy, verifier: Verifier,
                 seed: int) -> list[Group]:
        n = self.group_size
        outs = policy.sample([it.prompt_ids for it in items], n=n,
                             max_new_tokens=self.max_new_tokens, temperature=self.temperature)
        groups = []
        for item, segs in zip(items, outs, strict=True):
            members = [(list(s.token_ids), list(s.logprobs), bool(s.finished)) for s in segs]
            sampled = sum(len(s.token_ids) for s in segs)
            prompt = len(item.prompt_ids)
            samples = outcome_group(item, members, verifier, self.grpo, self.incomplete_score)
            # forward tokens as search.SearchStats counts them: the prompt once (the shared
            # prefill), or once per sample (no prefix reuse)
            groups.append(Group(str(item.id), samples, self.name, sampled, prompt + sampled,
                                n * prompt + sampled))
        return groups


@dataclass
class AdaptiveRollout:
    """Adaptive flat GRPO: sample each problem in rounds until its group carries a signal.

    An outcome group whose samples are all correct or all wrong has zero advantage everywhere
    (docs/paper-notes.md#advantage); flat GRPO spends its n samples whether or not that
    happens. Here every problem starts with ``chunk`` samples and gets ``chunk`` more per
    round while it is OPEN; a problem closes when its samples hold at least one correct AND
    one wrong answer, or their tokens reach ``budget_tokens`` (checked between rounds: the
    last round may overshoot), or it has ``max_samples`` (the last round is cut to fit).
    Issue 21 compares it with the tree at equal sampled tokens: ``budget_tokens`` = the tree's
    mean per problem (:class:`dslib.config.AdaptiveConfig`).

    | per round                   | what happens                                             |
    |-----------------------------|----------------------------------------------------------|
    | policy calls                | ONE ``policy.sample`` over the open problems' prompts,    |
    |                             | ``min(chunk, max_samples - drawn)`` samples each          |
    | group to the learner        | every sample drawn, advantages by :func:`outcome_group`   |
    |                             | (the same code path as ``flat``)                          |
    | ``sampled_tokens``          | all sampled tokens of the problem's rounds                |
    | ``forward_tokens``          | the prompt once per round (shared prefill) + sampled      |
    | ``forward_tokens_no_reuse`` | the prompt once per sample + sampled                      |

    Group stats (``cost_metrics`` averages them over the step's groups): ``adaptive_rounds``
    (rounds the problem was sampled in), ``adaptive_samples`` (its group size) and
    ``adaptive_budget_hit`` (1.0 when it closed without both outcomes: the budget or the
    sample cap stopped it; the step mean is the share). The seed is not used: the randomness is
    the policy's, as for ``flat``.
    """

    chunk: int
    """samples per open problem per round"""
    budget_tokens: int
    """a problem with this many sampled tokens gets no new round"""
    max_samples: int
    """the most samples one problem gets"""
    max_new_tokens: int
    temperature: float
    grpo: TreeGRPOConfig
    incomplete_score: float = -1.0
    """score of a sample that hit the length cap without an answer (as the search's)"""
    name: str = "adaptive"

    def __post_init__(self) -> None:
        AdaptiveConfig(chunk=self.chunk, budget_tokens=self.budget_tokens,
                       max_samples=self.max_samples)  # the same checks, the same messages

    @property
    def group_size(self) -> int:
        """The first round's group: what a cached group standing in for it holds."""
        return self.chunk

    def __call__(self, items: Sequence[Any], policy: Policy, verifier: Verifier,
                 seed: int = 0) -> list[Group]:
        items = list(items)
        segs: list[list[Segment]] = [[] for _ in items]
        oks: list[list[bool]] = [[] for _ in items]
        # verdicts by response, so outcome_group does not grade a sample a second time
        verdicts: list[dict[tuple[int, ...], Verdict]] = [{} for _ in items]
        tokens = [0] * len(items)
        rounds = [0] * len(items)

        def both(i: int) -> bool:
            return any(oks[i]) and not all(oks[i])

        def is_open(i: int) -> bool:
            return (not both(i) and tokens[i] < self.budget_tokens
                    and len(segs[i]) < self.max_samples)

        while True:
            live = [i for i in range(len(items)) if is_open(i)]
            if not live:
                break
            counts = [min(self.chunk, self.max_samples - len(segs[i])) for i in live]
            outs = policy.sample([items[i].prompt_ids for i in live], n=counts,
                                 max_new_tokens=self.max_new_tokens,
                                 temperature=self.temperature)
            for i, new in zip(live, outs, strict=True):
                for s in new:
                    key = tuple(int(t) for t in s.token_ids)
                    if key not in verdicts[i]:
                        verdicts[i][key] = verifier(items[i], list(key))
                    oks[i].append(bool(verdicts[i][key].correct))
                segs[i] += new
                tokens[i] += sum(len(s.token_ids) for s in new)
                rounds[i] += 1
        groups = []
        for i, item in enumerate(items):
            members = [(list(s.token_ids), list(s.logprobs), bool(s.finished)) for s in segs[i]]
            graded = verdicts[i]
            samples = outcome_group(item, members, lambda _, ids, v=graded: v[tuple(ids)],
                                    self.grpo, self.incomplete_score)
            prompt, n = len(item.prompt_ids), len(members)
            groups.append(Group(
                str(item.id), samples, self.name, tokens[i], rounds[i] * prompt + tokens[i],
                n * prompt + tokens[i],
                {"adaptive_rounds": rounds[i], "adaptive_samples": n,
                 "adaptive_budget_hit": float(not both(i))}))
        return groups


@dataclass
class CachedRollout:
    """Replay-buffer hits (docs/paper-notes.md#hybrid-groups): the groups of the buffered problems
    among ``items``.

    Of each group's n = ``standin.group_size`` members the first k = min(#cached, n) are
    cached solutions; the n - k direct samples of every hit come from ONE policy call, sized
    like the strategy the group stands in for (``standin.max_new_tokens``,
    ``standin.temperature``). Group stats: ``cached_members`` (k), ``fresh_members`` (n - k)
    and ``saved_tokens_estimate`` (the cached solutions' tokens: each stands in for a direct
    rollout the code would have sampled and overwritten; a lower bound, since the search the
    problem skips costs far more).
    """

    buffer: ReplayBuffer
    standin: Any
    """the configured strategy (its group size, length cap and temperature are used)"""
    grpo: TreeGRPOConfig
    incomplete_score: float = -1.0
    name: str = "cached"

    def __contains__(self, item: Any) -> bool:
        return str(item.id) in self.buffer

    def __call__(self, items: Sequence[Any], policy: Policy, verifier: Verifier,
                 seed: int = 0) -> list[Group]:
        n = self.standin.group_size
        hits = [it for it in items if it in self]
        cached = [self.buffer.solutions(it.id)[:n] for it in hits]
        counts = [n - len(c) for c in cached]
        outs: list[list[Segment]] = [[] for _ in hits]
        if sum(counts) > 0:  # ONE batched call for every cached problem's direct rollouts
            outs = policy.sample([it.prompt_ids for it in hits], n=counts,
                                 max_new_tokens=self.standin.max_new_tokens,
                                 temperature=self.standin.temperature)
        groups = []
        for it, sols, segs in zip(hits, cached, outs, strict=True):
            samples = hybrid_group(it, sols, segs, verifier, self.grpo, self.incomplete_score,
                                   n=n, eos_token_id=getattr(policy, "eos_token_id", None))
            groups.append(Group(str(it.id), samples, self.name,
                                sampled_tokens=sum(len(s.token_ids) for s in segs),
                                stats={"cached_members": len(sols), "fresh_members": len(segs),
                                       "saved_tokens_estimate": sum(len(ids) for ids in sols)}))
        return groups


def make_strategy(cfg: RolloutConfig, grpo: TreeGRPOConfig) -> Any:
    """The strategy ``cfg.strategy`` names (``config.STRATEGIES``)."""
    if cfg.strategy == "tree":
        return TreeRollout(cfg.search, grpo)
    if cfg.strategy == "flat":
        return FlatRollout(cfg.samples_per_problem, cfg.max_new_tokens, cfg.temperature, grpo,
                           cfg.search.incomplete_score)
    if cfg.strategy == "adaptive":
        ad = cfg.adaptive
        budget = (ad.budget_tokens if ad.budget_tokens is not None
                  else cfg.samples_per_problem * cfg.max_new_tokens)
        return AdaptiveRollout(ad.chunk, budget, ad.max_samples, cfg.max_new_tokens,
                               cfg.temperature, grpo, cfg.search.incomplete_score)
    raise ValueError(f"no rollout strategy named {cfg.strategy!r}")


# ----------------------------------------------------------------------------- filters


def drop_unsolved(groups: Sequence[Group], tokenizer: Any = None) -> list[Group]:
    """The filter "drop_unsolved": only groups with a correct sample go into the update.

    DAPO's dynamic-sampling filter applied to trees. NOT in the paper or the released code,
    which train on a confident mistake when a tree has no correct leaf
    (docs/paper-notes.md#which-terminal); an experiment for the tiny reasoner, whose trees are >=
    90 % all wrong and whose code advantage then gives the mistake's prefix tanh(q) + 1 > 0
    (docs/paper-notes.md#advantage).
    """
    return [g for g in groups if any(s.correct for s in g.samples)]


# ----------------------------------------------------------------------------- metrics


def flatten(groups: Iterable[Group]) -> list[Sample]:
    """Every sample, group after group."""
    return [s for g in groups for s in g.samples]


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def group_metrics(groups: Sequence[Group]) -> dict[str, float]:
    """What a step's samples look like (every group, before any filter).

    | key                  | meaning                                                       |
    |----------------------|---------------------------------------------------------------|
    | ``reward``           | mean score of the samples (cached solutions included)         |
    | ``sampled_reward``   | mean score of the sampled samples only (cached ones left out: |
    |                      | they are verified solutions, so they raise ``reward`` without |
    |                      | the policy having found anything; the number to compare with  |
    |                      | a run without a replay buffer)                                |
    | ``cached_samples``   | samples that are cached solutions                             |
    | ``accuracy``         | share of correct samples                                      |
    | ``solved_share``     | share of groups with a correct sample                         |
    | ``all_correct_share``| share of groups whose samples are all correct                 |
    | ``all_wrong_share``  | share of groups whose samples are all wrong                   |
    | ``zero_signal_share``| all correct + all wrong: no outcome signal for flat GRPO      |
    | ``response_length``  | mean response tokens                                          |
    | ``entropy``          | mean sampled-token NLL of the sampled (not cached) responses  |
    | ``sequences``        | samples                                                       |
    | ``cached_groups``    | groups served from the replay buffer                          |
    """
    samples = flatten(groups)
    outcomes = [[s.correct for s in g.samples] for g in groups if g.samples]
    all_ok = sum(all(o) for o in outcomes)
    all_bad = sum(not any(o) for o in outcomes)
    n = max(1, len(outcomes))
    own = [s for s in samples if not s.cached]
    return {
        "reward": _mean([s.score for s in samples]),
        "sampled_reward": _mean([s.score for s in own]),
        "cached_samples": len(samples) - len(own),
        "accuracy": _mean([float(s.correct) for s in samples]),
        "solved_share": (len(outcomes) - all_bad) / n,
        "all_correct_share": all_ok / n, "all_wrong_share": all_bad / n,
        "zero_signal_share": (all_ok + all_bad) / n,
        "response_length": _mean([len(s.response_ids) for s in samples]),
        "entropy": _mean([-x for s in own for x in s.behaviour_logprobs]),
        "sequences": len(samples),
        "cached_groups": sum(g.strategy == "cached" for g in groups),
    }


def cost_metrics(groups: Sequence[Group], with_cache: bool) -> dict[str, float]:
    """What a step's groups cost: token counts summed, the strategy's stats averaged.

    ``sampled_tokens`` counts every sampled token (cached groups' direct samples included);
    ``forward_tokens*`` and the strategy's stats cover the groups the strategy made (none when
    every problem was cached). ``with_cache`` adds ``cache_*``: cached problems, members, the
    tokens their direct rollouts sampled (``cache_sampled_tokens``, what
    :func:`dslib.rounds.cache_savings` subtracts) and the saved-tokens estimate, summed over the
    cached groups.
    """
    made = [g for g in groups if g.strategy != "cached"]
    hits = [g for g in groups if g.strategy == "cached"]
    out: dict[str, float] = {"sampled_tokens": sum(g.sampled_tokens for g in groups)}
    if made:
        out["forward_tokens"] = sum(g.forward_tokens for g in made)
        out["forward_tokens_no_reuse"] = sum(g.forward_tokens_no_reuse for g in made)
        for key in dict.fromkeys(k for g in made for k in g.stats):
            out[key] = _mean([g.stats[key] for g in made if key in g.stats])
    if with_cache:
        out["cache_cached_problems"] = len(hits)
        out["cache_sampled_tokens"] = sum(g.sampled_tokens for g in hits)
        for key in ("cached_members", "fresh_members", "saved_tokens_estimate"):
            out[f"cache_{key}"] = sum(int(g.stats[key]) for g in hits)
    return out
