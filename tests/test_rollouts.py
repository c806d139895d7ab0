"""Rollout strategies and the step's metrics, on hand-made groups and a scripted policy."""

from __future__ import annotations

import pytest
from fakes import CORRECT, EOS, WRONG, FakeProblem, ScriptedPolicy, fake_verifier, seg
from hypothesis import given, settings
from hypothesis import strategies as st

from dslib import rollouts
from dslib.config import RolloutConfig, SearchConfig, TreeGRPOConfig
from dslib.rollouts import FlatRollout, Group, Sample, TreeRollout


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
    assert m["sequences"] == 6 and m["cached_groups"] == 1
    assert m["reward"] == pytest.approx((3 - 3) / 6) and m["accuracy"] == pytest.approx(3 / 6)
    # 3 groups with samples: one all wrong, one all correct
    assert (m["solved_share"], m["all_wrong_share"], m["all_correct_share"]) == (
        pytest.approx(2 / 3), pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert m["zero_signal_share"] == pytest.approx(2 / 3)
    assert m["response_length"] == pytest.approx(14 / 6)
    assert m["entropy"] == pytest.approx(0.5)  # sampled tokens only: the cached one has none


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
    assert (tree.group_size, tree.max_new_tokens) == (3, 8 * 4)


def test_make_strategy_and_drop_unsolved():
    cfg = RolloutConfig(strategy="flat", samples_per_problem=5, max_new_tokens=7)
    flat = rollouts.make_strategy(cfg, TreeGRPOConfig())
    assert (flat.name, flat.group_size, flat.max_new_tokens) == ("flat", 5, 7)
    groups = [Group("a", [sample(False)], "flat"), Group("b", [sample(True)], "flat")]
    assert [g.problem_id for g in rollouts.drop_unsolved(groups)] == ["b"]


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
