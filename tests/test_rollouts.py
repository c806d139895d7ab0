"""Rollout strategies and the step's metrics, on hand-made groups and a scripted policy."""

from __future__ import annotations

import pytest
from fakes import (
    CORRECT,
    EOS,
    FILLER,
    WRONG,
    FakeProblem,
    ScriptedPolicy,
    fake_verifier,
    seg,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from dslib import rollouts
from dslib.config import RolloutConfig, SearchConfig, TreeGRPOConfig, update
from dslib.rollouts import AdaptiveRollout, FlatRollout, Group, Sample, TreeRollout


def sample(correct: bool, length: int = 2, cached: bool = False, lp: float = -0.5) -> Sample:
    return Sample([1], [9] * length, [0.0] * length, [0] * length, 1.0 if correct else -1.0,
                  correct, [0.0 if cached else lp] * length, cached)


def test_group_metrics_by_hand():
    groups = [
        Group("a", [sample(True), sample(False)], "flat"),           # mixed
        Group("b", [sample(False), sample(False, length=4)], "flat"),  # all wrong
        Group("c", [sample(True, cached=True), sample(True)], "cached"),  # all correct
        Group("d", [], "tree"),                                       # a tree with no record
    ]
    m = rollouts.group_metrics(groups)
    assert m["sequences"] == 6 and m["cached_groups"] == 1 and m["cached_samples"] == 1
    assert m["reward"] == pytest.approx((3 - 3) / 6) and m["accuracy"] == pytest.approx(3 / 6)
    # 3 groups with samples: one all wrong, one all correct
    assert (m["solved_share"], m["all_wrong_share"], m["all_correct_share"]) == (
        pytest.approx(2 / 3), pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert m["zero_signal_share"] == pytest.approx(2 / 3)
    assert m["response_length"] == pytest.approx(14 / 6)
    assert m["entropy"] == pytest.approx(0.5)  # sampled tokens only: the cached one has none
    # the cached correct solution lifts the reward; the sampled reward leaves it out
    assert m["sampled_reward"] == pytest.approx((2 - 3) / 5)


def test_cost_metrics_sum_tokens_and_average_strategy_stats():
    made = [Group("a", [], "tree", 10, 15, 40, {"search_iterations": 3, "search_solved": 1.0}),
            Group("b", [], "tree", 20, 25, 60, {"search_iterations": 4, "search_solved": 0.0})]
    hit = Group("c", [], "cached", 5, stats={"cached_members": 1, "fresh_members": 3,
                                               "saved_tokens_estimate": 7})
    m = rollouts.cost_metrics(made + [hit], with_cache=True)
    assert m == {"sampled_tokens": 35, "forward_tokens": 40, "forward_tokens_no_reuse": 100,
                 "search_iterations": 3.5, "search_solved": 0.5, "cache_cached_problems": 1,
                 "cache_sampled_tokens": 5, "cache_cached_members": 1, "cache_fresh_members": 3,
                 "cache_saved_tokens_estimate": 7}
    # every problem cached: the strategy made nothing, so it reports nothing but tokens
    assert rollouts.cost_metrics([hit], with_cache=False) == {"sampled_tokens": 5}


def test_flat_rollout_is_one_call_with_outcome_advantages():
    items = [FakeProblem([4, 5, 6], id="x"), FakeProblem([7], id="y")]
    outs = {0: seg([3, CORRECT, EOS]), 1: seg([3, WRONG, EOS]), 2: seg([3, 3, 3], finished=False)}
    policy = ScriptedPolicy(script=lambda prefix, j, m: outs[j])
    flat = FlatRollout(3, max_new_tokens=3, temperature=0.7, grpo=TreeGRPOConfig(),
                       incomplete_score=-0.5)
    groups = flat(items, policy, fake_verifier, seed=0)
    assert len(policy.calls) == 1 and policy.calls[0].counts == [3, 3]
    assert (policy.calls[0].max_new_tokens, policy.calls[0].temperature) == (3, 0.7)
    g = groups[0]
    assert [s.score for s in g.samples] == [1.0, -1.0, -0.5]  # unfinished, no answer
    mu = (1.0 - 1.0 - 0.5) / 3
    assert [s.advantages[0] for s in g.samples] == pytest.approx([1 - mu, -1 - mu, -0.5 - mu])
    assert (g.sampled_tokens, g.forward_tokens, g.forward_tokens_no_reuse) == (9, 3 + 9, 9 + 9)
    assert groups[1].forward_tokens == 1 + 9 and groups[1].problem_id == "y"


def test_tree_rollout_makes_one_group_per_problem_with_search_stats():
    items = [FakeProblem([9, 9], id=f"p{i}") for i in range(3)]
    policy = ScriptedPolicy(seed=1, p_eos=0.3, p_correct=0.5)
    tree = TreeRollout(SearchConfig.tiny(n_trajectories=3, width=2, max_depth=4),
                       TreeGRPOConfig())
    groups = tree(items, policy, fake_verifier, seed=5)
    assert [g.problem_id for g in groups] == ["p0", "p1", "p2"]
    for g in groups:
        assert g.strategy == "tree" and 1 <= len(g.samples) <= 3
        assert set(g.stats) == {"search_iterations", "search_nodes", "search_exhausted",
                                "search_solved"}
        assert g.stats["search_solved"] == float(any(s.correct for s in g.samples))
        for s in g.samples:
            assert len(s.advantages) == len(s.response_ids) == len(s.step_ids)
    assert (tree.group_size, tree.max_new_tokens) == (3, tree.search.step_tokens * 4)


def test_make_strategy_and_drop_unsolved():
    cfg = RolloutConfig(strategy="flat", samples_per_problem=5, max_new_tokens=7)
    flat = rollouts.make_strategy(cfg, TreeGRPOConfig())
    assert (flat.name, flat.group_size, flat.max_new_tokens) == ("flat", 5, 7)
    groups = [Group("a", [sample(False)], "flat"), Group("b", [sample(True)], "flat")]
    assert [g.problem_id for g in rollouts.drop_unsolved(groups)] == ["b"]


# ----------------------------------------------------------------------------- adaptive

OK, NO = seg([3, CORRECT, EOS]), seg([3, WRONG, EOS])  # 3 tokens each


def rounds_policy(table):
    """A policy whose sample j of prompt p in round r (1-based: the call count) is
    ``table[p[0]][r - 1][j]``."""
    policy = ScriptedPolicy()
    policy.script = lambda prefix, j, m: table[prefix[0]][len(policy.calls) - 1][j]
    return policy


def adaptive(chunk=2, budget=100, max_samples=64, **kw):
    return AdaptiveRollout(chunk, budget, max_samples, max_new_tokens=3, temperature=0.7,
                           grpo=TreeGRPOConfig(), **kw)


def test_adaptive_stops_a_problem_once_it_has_both_outcomes():
    items = [FakeProblem([4, 5, 6], id="x"), FakeProblem([7], id="y")]
    # x: both outcomes in round 1; y: all wrong, then a correct one in round 2
    policy = rounds_policy({4: [[OK, NO]], 7: [[NO, NO], [NO, OK]]})
    groups = adaptive()(items, policy, fake_verifier, seed=0)
    # one call per round, every open problem in it, in item order
    assert [(c.prefixes, c.counts) for c in policy.calls] == [([[4, 5, 6], [7]], [2, 2]),
                                                                ([[7]], [2])]
    assert all((c.max_new_tokens, c.temperature) == (3, 0.7) for c in policy.calls)
    x, y = groups
    assert (x.problem_id, y.problem_id) == ("x", "y")
    assert [s.correct for s in y.samples] == [False, False, False, True]
    assert x.stats == {"adaptive_rounds": 1, "adaptive_samples": 2, "adaptive_budget_hit": 0.0}
    assert y.stats == {"adaptive_rounds": 2, "adaptive_samples": 4, "adaptive_budget_hit": 0.0}
    # outcome advantages over all 4 samples: mean -0.5, so r - mu = -0.5 / +1.5 on every token
    assert [s.advantages for s in y.samples] == [[-0.5] * 3] * 3 + [[1.5] * 3]
    # the same numbers flat GRPO gives the same samples (one code path: outcome_group)
    same = FlatRollout(4, 3, 0.7, TreeGRPOConfig())(
        [items[1]], ScriptedPolicy(script=lambda p, j, m: [NO, NO, NO, OK][j]), fake_verifier, 0)
    assert same[0].samples == y.samples
    # tokens: x 2 x 3 sampled, prompt 3 prefilled once; y 4 x 3 sampled, prompt 1 in 2 rounds
    assert (x.sampled_tokens, x.forward_tokens, x.forward_tokens_no_reuse) == (6, 3 + 6, 6 + 6)
    assert (y.sampled_tokens, y.forward_tokens, y.forward_tokens_no_reuse) == (12, 2 + 12,
                                                                               4 + 12)


def test_adaptive_keeps_sampling_an_all_correct_group():
    policy = rounds_policy({4: [[OK, OK], [OK, OK], [NO, OK]]})
    (g,) = adaptive()([FakeProblem([4])], policy, fake_verifier, seed=0)
    assert len(policy.calls) == 3 and g.stats["adaptive_samples"] == 6
    assert [s.score for s in g.samples] == [1.0] * 4 + [-1.0, 1.0]


def test_adaptive_stops_at_the_token_budget():
    """budget 10, rounds of 2 x 3 tokens: 6 < 10 sample again, 12 >= 10 stop (overshoot)."""
    short = seg([FILLER], finished=False)  # hit the cap with no answer: wrong, score -0.5
    items = [FakeProblem([4], id="a"), FakeProblem([5], id="b")]
    policy = rounds_policy({4: [[NO, NO]] * 9, 5: [[short, short]] * 9})
    groups = adaptive(budget=10, incomplete_score=-0.5)(items, policy, fake_verifier, seed=0)
    a, b = groups
    assert (a.sampled_tokens, a.stats["adaptive_rounds"], a.stats["adaptive_budget_hit"]) == (
        12, 2, 1.0)
    # b: 1 token per sample, 2 per round: 5 rounds reach 10
    assert (b.sampled_tokens, b.stats["adaptive_rounds"], b.stats["adaptive_samples"]) == (
        10, 5, 10)
    assert [c.counts for c in policy.calls] == [[2, 2], [2, 2], [2], [2], [2]]
    assert all(s.score == -0.5 and s.advantages == [0.0] for s in b.samples)  # no signal
    assert rollouts.cost_metrics(groups, with_cache=False)["adaptive_budget_hit"] == 1.0


def test_adaptive_cuts_the_last_round_to_max_samples():
    policy = rounds_policy({4: [[NO] * 3] * 9})
    (g,) = adaptive(chunk=3, max_samples=5)([FakeProblem([4])], policy, fake_verifier, seed=0)
    assert [c.counts for c in policy.calls] == [[3], [2]]
    assert (g.stats["adaptive_samples"], g.stats["adaptive_budget_hit"]) == (5, 1.0)


def test_adaptive_grades_each_response_once():
    graded = []

    def verifier(item, ids):
        graded.append(tuple(ids))
        return fake_verifier(item, ids)

    policy = rounds_policy({4: [[NO, NO], [OK, NO]]})
    (g,) = adaptive()([FakeProblem([4])], policy, verifier, seed=0)
    assert len(g.samples) == 4 and sorted(graded) == sorted({tuple(NO.token_ids),
                                                             tuple(OK.token_ids)})


def test_adaptive_rejects_bad_sizes_and_has_no_problems_to_sample():
    with pytest.raises(ValueError, match=r"max_samples must be >= chunk \(4\)"):
        adaptive(chunk=4, max_samples=3)
    with pytest.raises(ValueError, match="budget_tokens must be >= 1"):
        adaptive(budget=0)
    policy = ScriptedPolicy()
    assert adaptive()([], policy, fake_verifier, seed=0) == [] and policy.calls == []


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), chunk=st.integers(1, 4), budget=st.integers(1, 60),
       n_items=st.integers(1, 5))
def test_adaptive_invariants_on_random_policies(seed, chunk, budget, n_items):
    """One call per round over exactly the open problems; token counts exact; a problem stops
    only with both outcomes or a spent budget; the same seed gives the same groups."""
    items = [FakeProblem([10 + i, 11], id=f"p{i}") for i in range(n_items)]
    strat = adaptive(chunk=chunk, budget=budget)
    policy = ScriptedPolicy(seed=seed, p_eos=0.3, p_correct=0.4)
    groups = strat(items, policy, fake_verifier, seed=0)
    rounds = [int(g.stats["adaptive_rounds"]) for g in groups]
    assert len(policy.calls) == max(rounds)
    for r, call in enumerate(policy.calls):
        assert call.prefixes == [it.prompt_ids for it, k in zip(items, rounds) if k > r]
        assert set(call.counts) == {chunk}
    for g in groups:
        toks = sum(len(s.response_ids) for s in g.samples)
        oks = [s.correct for s in g.samples]
        both = any(oks) and not all(oks)
        assert g.sampled_tokens == toks and len(oks) == g.stats["adaptive_rounds"] * chunk
        assert g.stats["adaptive_budget_hit"] == float(not both)
        assert both or toks >= budget
        assert toks - sum(len(s.response_ids) for s in g.samples[-chunk:]) < budget  # no extra
        # before the last round the group had no signal
        first = oks[:-chunk]
        assert not (any(first) and not all(first))
    again = strat(items, ScriptedPolicy(seed=seed, p_eos=0.3, p_correct=0.4), fake_verifier, 0)
    assert again == groups


def test_a_cached_group_stands_in_for_adaptive_with_its_first_round():
    from dslib.replay import ReplayBuffer

    buf = ReplayBuffer()
    buf.add("a", [3, CORRECT, EOS], round=0)
    policy = ScriptedPolicy(script=lambda prefix, j, m: NO)
    cached = rollouts.CachedRollout(buf, adaptive(chunk=3), TreeGRPOConfig())
    (g,) = cached([FakeProblem([4], id="a")], policy, fake_verifier)
    assert [c.counts for c in policy.calls] == [[2]] and policy.calls[0].max_new_tokens == 3
    assert [s.cached for s in g.samples] == [True, False, False]


def test_make_strategy_adaptive_default_budget_is_the_flat_group_cap():
    cfg = RolloutConfig(strategy="adaptive", samples_per_problem=4, max_new_tokens=80)
    strat = rollouts.make_strategy(cfg, TreeGRPOConfig())
    assert (strat.name, strat.budget_tokens, strat.chunk, strat.group_size) == (
        "adaptive", 320, 4, 4)
    cfg = update(cfg, {"adaptive.budget_tokens": 390, "adaptive.chunk": 2})
    assert rollouts.make_strategy(cfg, TreeGRPOConfig()).budget_tokens == 390


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.booleans(), max_size=4), min_size=1, max_size=6))
def test_group_shares_are_consistent(outcomes):
    """Invariants: solved + all wrong = 1, zero signal = all correct + all wrong, all in [0, 1]."""
    groups = [Group(str(i), [sample(ok) for ok in o], "flat") for i, o in enumerate(outcomes)]
    m = rollouts.group_metrics(groups)
    if any(outcomes):
        assert m["solved_share"] + m["all_wrong_share"] == pytest.approx(1.0)
    assert m["zero_signal_share"] == pytest.approx(m["all_correct_share"] + m["all_wrong_share"])
    assert all(0.0 <= m[k] <= 1.0 for k in ("solved_share", "accuracy", "zero_signal_share"))
    assert len(rollouts.drop_unsolved(groups)) == sum(any(o) for o in outcomes)
