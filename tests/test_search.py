"""The driver (docs/paper-notes.md#search): one batched call per iteration, bookkeeping,
switches."""

import json
import math

import pytest
from fakes import (
    CORRECT,
    EOS,
    NEWLINE,
    WRONG,
    FakeProblem,
    ScriptedPolicy,
    fake_verifier,
    seg,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from dslib import search
from dslib.config import SearchConfig
from dslib.policy.base import Segment
from dslib.search import SearchStats, aggregate_stats, terminal_score
from dslib.tree import Tree
from dslib.verify import Verdict

# ---------------------------------------------------------------- a hand-checked tiny search


def tiny_script(prefix, j, max_new_tokens):
    # call 1 (prompt, len 3): two plain chunks; call 2 (len 5): a correct answer + a plain chunk;
    # call 3 (len 7): children at max_depth 3: an unfinished chunk (incomplete) and a wrong answer
    if len(prefix) == 3:
        return seg([5, 6], -1.0)
    if len(prefix) == 5:
        return seg([CORRECT, EOS], -0.5) if j == 0 else seg([5, 6], -1.0)
    return seg([5, 6], -0.1) if j == 0 else seg([WRONG, EOS], -2.0)


def run_tiny(**overrides):
    cfg = SearchConfig(step_tokens=2, max_depth=3, width=2, n_trajectories=2, **overrides)
    policy = ScriptedPolicy(script=tiny_script)
    (res,) = search.run([FakeProblem([9, 9, 9])], policy, fake_verifier, cfg)
    return res, policy


def test_hand_checked_search_values_visits_and_trajectories():
    res, policy = run_tiny()
    by_id = {n.id: n for n in res.tree.nodes()}
    root, a, b, c, e = by_id[0], by_id[1], by_id[2], by_id[3], by_id[4]
    assert not res.exhausted and res.tree.done
    # call 2 expanded a (first child on UCT ties); c = correct leaf at depth 2:
    # gamma (code) = 1/3, 2/3, 1 -> root 1/3, a 2/3, c 1
    # then the frontier prefers e (depth 2, Q(a) = 1/3) over b (depth 1, Q(root) = 1/3)
    # call 3 expanded e: incomplete leaf (lower NLL) backed up with -1 at depth 3:
    # gamma = 0.25, 0.5, 0.75, 1 -> root, a positive: ignored; e: -0.75; leaf: -1
    assert root.value == pytest.approx(1 / 3) and root.visits == 2
    assert a.value == pytest.approx(2 / 3) and a.visits == 3  # 1 initial + 2 backups
    assert b.value == 0.0 and b.visits == 1
    assert c.value == pytest.approx(1.0) and c.visits == 1 and c.outcome == "correct"
    assert e.value == pytest.approx(-0.75) and e.visits == 2
    t1, t2 = res.trajectories
    assert t1.response_ids == [5, 6, CORRECT, EOS] and t1.node_spans == [(0, 2), (2, 4)]
    assert t1.logprobs == [-1.0, -1.0, -0.5, -0.5]
    assert t1.correct and t1.score == 1.0 and t1.outcome == "correct"
    assert t1.node_values == pytest.approx([2 / 3, 1.0]) and t1.node_visits == [3, 1]
    assert t1.entropy == pytest.approx(0.75)
    assert t2.response_ids == [5, 6, 5, 6, 5, 6]
    assert t2.node_spans == [(0, 2), (2, 4), (4, 6)]
    assert t2.outcome == "incomplete" and t2.score == -1.0 and not t2.correct
    assert t2.node_values == pytest.approx([2 / 3, -0.75, -1.0])
    assert t2.prompt_ids == [9, 9, 9]


def test_hand_checked_stats():
    res, policy = run_tiny()
    s = res.stats
    assert s.iterations == 3 and len(policy.calls) == 3
    assert [c.counts for c in policy.calls] == [[2], [2], [2]]
    assert [len(c.prefixes[0]) for c in policy.calls] == [3, 5, 7]
    assert s.nodes == 6 and s.sampled_tokens == 12 and s.max_depth == 3
    assert s.forward_tokens == (3 + 4) + (5 + 4) + (7 + 4)  # prefix once + sampled
    assert s.forward_tokens_no_reuse == (2 * 3 + 4) + (2 * 5 + 4) + (2 * 7 + 4)
    assert (s.n_correct, s.n_wrong, s.n_incomplete, s.n_trajectories) == (1, 1, 1, 2)
    assert s.time_s >= 0.0
    assert set(s.to_dict()) >= {"iterations", "forward_tokens", "time_s"}


def test_incomplete_score_switch_changes_the_class_and_the_choice():
    # with incomplete_score -0.5 the incomplete leaf is "other": the wrong leaf wins
    # (docs/paper-notes.md#which-terminal)
    res, _ = run_tiny(incomplete_score=-0.5)
    t2 = res.trajectories[1]
    assert t2.outcome == "wrong" and t2.response_ids[-2:] == [WRONG, EOS]


def test_sampling_arguments_are_passed_through():
    cfg = SearchConfig.tiny(temperature=0.7, top_p=0.9, n_trajectories=1)
    policy = ScriptedPolicy(seed=1, p_eos=0.5)
    search.run([FakeProblem([3])], policy, fake_verifier, cfg)
    assert all((c.max_new_tokens, c.temperature, c.top_p) == (24, 0.7, 0.9) for c in policy.calls)
    assert all(c.stop == "\n" for c in policy.calls)  # the tiny preset's nodes are lines


def test_terminal_score_rule():
    t = Tree([1])
    cfg = SearchConfig(max_depth=1, incomplete_score=-0.3)
    deep = t.add_child(t.root, [5], terminal=True)
    none = Verdict(False, None, "no_answer")
    assert terminal_score(none, deep, cfg) == (-0.3, "incomplete")
    assert terminal_score(Verdict(True, "4", "ok"), deep, cfg) == (1.0, "correct")
    assert terminal_score(Verdict(False, "5", "wrong_value"), deep, cfg) == (-1.0, "wrong")
    eos = t.add_child(t.root, [0], finished=True, terminal=True)
    assert terminal_score(none, eos, cfg) == (-1.0, "wrong")  # finished without an answer
    shallow = SearchConfig(max_depth=4)
    assert terminal_score(none, deep, shallow) == (-1.0, "wrong")


# ---------------------------------------------------------------- switches


def two_level_policy():
    # root -> a, b (plain); below a: two correct leaves (a1 more confident); below b: two wrong
    # leaves (b2 more confident). With max_depth 2 every grandchild is terminal.
    def script(prefix, j, max_new_tokens):
        if len(prefix) == 1:  # root
            return seg([5 + j], -1.0)
        if prefix[1] == 5:  # below a
            return seg([CORRECT, EOS], -0.1 if j == 0 else -1.0)
        return seg([WRONG, EOS], -0.5 if j == 0 else -0.2)  # below b

    return ScriptedPolicy(script=script)


def test_global_backtrace_records_one_terminal_per_expansion():
    cfg = SearchConfig(step_tokens=2, max_depth=2, width=2, n_trajectories=5)
    policy = two_level_policy()
    (res,) = search.run([FakeProblem([1])], policy, fake_verifier, cfg)
    # call 1 root -> a, b; call 2 a -> a1, a2 (a1 backed up); frontier -> b;
    # call 3 b -> b1, b2 (b2 backed up); frontier empty -> exhausted with 2 trajectories
    assert res.exhausted and len(res.trajectories) == 2 and len(policy.calls) == 3
    assert [t.leaf.id for t in res.trajectories] == [3, 6]
    a2 = {n.id: n for n in res.tree.nodes()}[4]
    assert a2.terminal and a2.visits == 0 and a2.value == 0.0 and not a2.backed_up


def test_uct_backtrace_second_chance_and_forced_frontier():
    cfg = SearchConfig(
        step_tokens=2, max_depth=2, width=2, n_trajectories=5, backtrace="uct", uct_c=0.1
    )
    policy = two_level_policy()
    (res,) = search.run([FakeProblem([1])], policy, fake_verifier, cfg)
    n = {x.id: x for x in res.tree.nodes()}
    root, a, b = n[0], n[1], n[2]
    # call 2: a1 backed up; one UCT step from the root -> a (Q 1/3 > 0), fully expanded, so its
    # unbacked terminal a2 is backed up in the same iteration (code); UCT -> a again, no
    # candidate left, every child terminal -> forced frontier -> b. call 3: b2 backed up.
    assert [t.leaf.id for t in res.trajectories] == [3, 4, 6]
    assert len(policy.calls) == 3 and res.exhausted
    assert root.value == pytest.approx(2 / 3) and root.visits == 3
    assert a.value == pytest.approx(4 / 3) and a.visits == 3
    assert b.value == pytest.approx(-2 / 3) and b.visits == 2


def test_uct_backtrace_revisits_children_of_an_expanded_node():
    # root -> a, b plain; a -> a1 plain, a2 correct; UCT from the root goes back to a (c small),
    # which is expanded: its non-terminal child a1 gets one more visit, then UCT descends into a1
    def script(prefix, j, max_new_tokens):
        if len(prefix) == 1:
            return seg([5 + j], -1.0)
        if len(prefix) == 2 and prefix[1] == 5:
            return seg([7], -1.0) if j == 0 else seg([CORRECT, EOS], -0.1)
        return seg([WRONG, EOS], -1.0)

    cfg = SearchConfig(
        step_tokens=2, max_depth=4, width=2, n_trajectories=2, backtrace="uct", uct_c=0.1
    )
    policy = ScriptedPolicy(script=script)
    (res,) = search.run([FakeProblem([1])], policy, fake_verifier, cfg)
    n = {x.id: x for x in res.tree.nodes()}
    a1 = n[3]
    assert a1.token_ids == [7]
    assert len(policy.calls[2].prefixes[0]) == 3  # call 3 expands a1 (prefix: prompt, a, a1)
    # a1: 1 (creation) + 1 (re-visit through expanded a) + 1 (backup of its wrong child)
    assert a1.visits == 3


def test_all_correct_records_every_correct_terminal_lowest_entropy_first():
    def script(prefix, j, max_new_tokens):
        return seg([CORRECT, EOS], [-1.0, -1.0] if j == 0 else [-0.2, -0.2])

    cfg = SearchConfig(
        step_tokens=2, max_depth=3, width=2, n_trajectories=2, backup_terminals="all_correct"
    )
    policy = ScriptedPolicy(script=script)
    (res,) = search.run([FakeProblem([1])], policy, fake_verifier, cfg)
    assert len(policy.calls) == 1 and not res.exhausted
    assert [t.leaf.id for t in res.trajectories] == [2, 1]
    assert res.tree.root.value == pytest.approx(1.0)  # gamma 0.5 twice
    cfg1 = SearchConfig(
        step_tokens=2, max_depth=3, width=2, n_trajectories=1, backup_terminals="all_correct"
    )
    (res1,) = search.run([FakeProblem([1])], ScriptedPolicy(script=script), fake_verifier, cfg1)
    assert [t.leaf.id for t in res1.trajectories] == [2]  # truncated to n_trajectories
    assert not {n.id: n for n in res1.tree.nodes()}[1].backed_up


def test_dynamic_width_requests():
    cfg = SearchConfig(step_tokens=1, max_depth=8, width=4, n_trajectories=1, dynamic_width=(1, 1))
    policy = ScriptedPolicy(p_eos=0.0)
    (res,) = search.run([FakeProblem([1])], policy, fake_verifier, cfg)
    assert [c.counts[0] for c in policy.calls] == [4, 4, 3, 3, 2, 2, 1, 1]
    assert res.trajectories[0].outcome == "incomplete"


def test_exhausted_when_the_frontier_empties():
    cfg = SearchConfig(step_tokens=2, max_depth=3, width=1, n_trajectories=3)
    policy = ScriptedPolicy(p_eos=0.0)
    (res,) = search.run([FakeProblem([1])], policy, fake_verifier, cfg)
    assert res.exhausted and not res.hit_max_iterations
    assert len(res.trajectories) == 1 and res.stats.iterations == 3
    assert res.tree.current is None


def test_max_iterations_cap_flags_live_trees():
    cfg = SearchConfig(step_tokens=2, max_depth=50, width=2, n_trajectories=3, max_iterations=4)
    policy = ScriptedPolicy(p_eos=0.0)
    results = search.run([FakeProblem([1]), FakeProblem([2])], policy, fake_verifier, cfg)
    assert len(policy.calls) == 4
    assert all(r.exhausted and r.hit_max_iterations for r in results)
    assert all(r.trajectories == [] for r in results)


def test_shannon_entropy_path():
    cfg = SearchConfig.tiny(entropy="shannon", n_trajectories=2)
    policy = ScriptedPolicy(seed=3, p_eos=0.3, with_entropies=True)
    (res,) = search.run([FakeProblem([1])], policy, fake_verifier, cfg)
    for t in res.trajectories:
        ents = [h for node in t.nodes for h in node.entropies]
        assert t.entropy == pytest.approx(sum(ents) / len(ents))
    with pytest.raises(ValueError, match="shannon"):
        search.run([FakeProblem([1])], ScriptedPolicy(seed=3, p_eos=0.3), fake_verifier, cfg)


def test_bad_inputs():
    assert search.run([], ScriptedPolicy(), fake_verifier, SearchConfig.tiny()) == []
    with pytest.raises(TypeError, match="prompt_ids"):
        search.run([object()], ScriptedPolicy(), fake_verifier, SearchConfig.tiny())

    class Short(ScriptedPolicy):
        def sample(self, prefixes, n, max_new_tokens, temperature=1.0, top_p=1.0):
            return [[Segment([4], [-1.0], False)] for _ in prefixes]

    with pytest.raises(RuntimeError, match="asked for"):  # fixed chunks: no stop argument
        search.run([FakeProblem([1])], Short(), fake_verifier,
                   SearchConfig.tiny(step_tokens=8, step_boundary=None))


# ---------------------------------------------------------------- many trees, random policy


def many(seed=0, n_problems=6, **overrides):
    cfg = SearchConfig.tiny(seed=seed, **overrides)
    policy = ScriptedPolicy(seed=seed, p_eos=0.15, p_correct=0.4)
    problems = [FakeProblem([100 + i, 7], id=f"p{i}") for i in range(n_problems)]
    return search.run(problems, policy, fake_verifier, cfg), policy, cfg


def test_one_batched_call_per_iteration_with_all_live_trees():
    results, policy, cfg = many()
    assert len(policy.calls) == max(r.stats.iterations for r in results)
    assert sum(len(c.prefixes) for c in policy.calls) == sum(r.stats.iterations for r in results)
    live = len(results)
    for call in policy.calls:  # trees only leave: the batch never grows
        assert 1 <= len(call.prefixes) <= live
        live = len(call.prefixes)
        assert all(1 <= k <= cfg.width for k in call.counts)
        assert len({p[0] for p in call.prefixes}) == len(call.prefixes)  # one request per tree


def test_stats_are_consistent_with_trees_and_calls():
    results, policy, cfg = many(seed=4)
    for i, r in enumerate(results):
        nodes = list(r.tree.nodes())[1:]
        terminals = [n for n in nodes if n.terminal]
        s = r.stats
        assert s.nodes == len(nodes) == r.tree.n_nodes - 1
        assert s.sampled_tokens == sum(len(n.token_ids) for n in nodes)
        assert s.max_depth == max(n.depth for n in nodes)
        assert s.n_correct + s.n_wrong + s.n_incomplete == len(terminals)
        assert s.n_correct == sum(n.outcome == "correct" for n in terminals)
        mine = [
            (len(p), k)
            for c in policy.calls
            for p, k in zip(c.prefixes, c.counts, strict=True)
            if p[0] == 100 + i
        ]
        assert s.iterations == len(mine)
        assert s.forward_tokens == sum(lp for lp, _ in mine) + s.sampled_tokens
        assert s.forward_tokens_no_reuse == sum(lp * k for lp, k in mine) + s.sampled_tokens
    agg = aggregate_stats(results)
    assert agg["n_trees"] == len(results)
    assert agg["sampled_tokens"] == pytest.approx(
        sum(r.stats.sampled_tokens for r in results) / len(results)
    )
    assert 0.0 <= agg["exhausted"] <= 1.0
    assert aggregate_stats([])["n_trees"] == 0.0


def test_trajectory_values_are_the_final_tree_values():
    results, _, _ = many(seed=2)
    for r in results:
        for t in r.trajectories:
            assert t.node_values == [n.value for n in t.leaf.path()[1:]]
            assert t.node_visits == [n.visits for n in t.leaf.path()[1:]]
            assert len(t.response_ids) == len(t.logprobs) == t.node_spans[-1][1]
            assert t.node_values[-1] == t.score  # leaf: weight 1, starts at 0
            assert math.isfinite(t.entropy)


def test_determinism_and_json_round_trip():
    kw = dict(uct_deterministic=False, negative_choice="random")
    first, _, _ = many(seed=11, **kw)
    second, _, _ = many(seed=11, **kw)
    dumps = [json.dumps(r.tree.to_dict()) for r in first]
    assert dumps == [json.dumps(r.tree.to_dict()) for r in second]
    assert [json.loads(d) for d in dumps] == [r.tree.to_dict() for r in first]
    for r in first:
        json.dumps([t.to_dict() for t in r.trajectories])
        json.dumps(r.stats.to_dict())


def test_progress_flag_does_not_crash():
    cfg = SearchConfig.tiny(n_trajectories=2)
    out = search.run([FakeProblem([1])], ScriptedPolicy(seed=1), fake_verifier, cfg, progress=True)
    assert len(out) == 1


def test_searchstats_defaults():
    assert SearchStats().to_dict()["iterations"] == 0


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    width=st.integers(1, 3),
    max_depth=st.integers(1, 4),
    n_traj=st.integers(1, 4),
    p_eos=st.sampled_from([0.0, 0.2, 0.6]),
    backtrace=st.sampled_from(["global", "uct"]),
    backup_terminals=st.sampled_from(["one", "all_correct"]),
    deterministic=st.booleans(),
)
def test_property_driver_invariants(
    seed, width, max_depth, n_traj, p_eos, backtrace, backup_terminals, deterministic
):
    cfg = SearchConfig(
        step_tokens=2,
        max_depth=max_depth,
        width=width,
        n_trajectories=n_traj,
        backtrace=backtrace,
        backup_terminals=backup_terminals,
        uct_deterministic=deterministic,
        seed=seed,
        max_iterations=500,
    )
    policy = ScriptedPolicy(seed=seed, p_eos=p_eos, p_correct=0.5)
    problems = [FakeProblem([50 + i]) for i in range(3)]
    results = search.run(problems, policy, fake_verifier, cfg)
    for r in results:
        assert not r.hit_max_iterations
        if r.exhausted:
            assert len(r.trajectories) < n_traj
        else:
            assert len(r.trajectories) == n_traj
        through: dict[int, int] = {}
        on_correct: set[int] = set()
        for t in r.trajectories:
            for node in t.leaf.path():
                through[node.id] = through.get(node.id, 0) + 1
                if t.correct:
                    on_correct.add(node.id)
        for node in r.tree.nodes():
            if node.id in on_correct:
                assert node.value >= 0
            backups = through.get(node.id, 0)
            if node.is_root or node.terminal:
                assert node.visits == backups
            elif backtrace == "global":
                assert node.visits == 1 + backups
            else:  # the uct re-pass may add visits to children of expanded nodes
                assert node.visits >= 1 + backups


# ---------------------------------------------------------------- SearchConfig


def test_config_defaults_tiny_preset_and_validation():
    cfg = SearchConfig()
    assert (cfg.step_tokens, cfg.max_depth, cfg.width, cfg.n_trajectories) == (256, 64, 8, 8)
    assert (cfg.lambda1, cfg.lambda2, cfg.lambda3, cfg.lambda4) == (0.4, 0.4, 0.01, 0.0)
    assert (cfg.gamma, cfg.backup_terminals, cfg.entropy, cfg.backtrace) == (
        "code",
        "one",
        "sampled_nll",
        "global",
    )
    assert not cfg.entropy_bonus and cfg.dynamic_width is None and cfg.uct_deterministic
    tiny = SearchConfig.tiny()
    assert (tiny.step_tokens, tiny.max_depth, tiny.width, tiny.n_trajectories) == (24, 10, 4, 4)
    assert tiny.step_boundary == "\n"  # a line per node (reproduce/bench_exploration.py)
    assert SearchConfig.tiny(width=2).width == 2
    assert SearchConfig(depth_bonus="constant").depth_bonus == "linear"  # the code's name
    assert SearchConfig(dynamic_width=[2, 1]).dynamic_width == (2, 1)
    for bad in (
        {"gamma": "nope"},
        {"backup_rule": "x"},
        {"backup_terminals": "all"},
        {"negative_choice": "x"},
        {"entropy": "x"},
        {"backtrace": "x"},
        {"depth_bonus": "x"},
        {"width": 0},
        {"max_iterations": 0},
        {"gamma_min": 1.5},
        {"top_p": 0.0},
        {"dynamic_width": (0, 1)},
        {"dynamic_width": (1, 2, 3)},
    ):
        with pytest.raises(ValueError, match="SearchConfig"):
            SearchConfig(**bad)
    with pytest.raises(ValueError):
        SearchConfig.tiny(entropy="x")


# ---------------------------------------------------------------- step boundaries (line nodes)


def test_line_nodes_end_at_the_line_end_and_are_not_terminal():
    """Each node is one line: cut after NEWLINE, never finished by it; EOS still ends."""

    def lines(prefix, j, max_new_tokens):
        if len(prefix) == 3:  # the root: a two-line chunk, and a line then the answer
            two_lines, line_then_answer = [5, 6, NEWLINE, 7, NEWLINE, 8], [5, NEWLINE, CORRECT, EOS]
            return seg(two_lines if j == 0 else line_then_answer)
        return seg([CORRECT, EOS]) if j == 0 else seg([WRONG, EOS])

    cfg = SearchConfig(step_tokens=6, max_depth=4, width=2, n_trajectories=2,
                       step_boundary="line")
    policy = ScriptedPolicy(script=lines)
    (res,) = search.run([FakeProblem([9, 9, 9])], policy, fake_verifier, cfg)
    assert cfg.step_boundary == "\n" and all(c.stop == "\n" for c in policy.calls)
    first = [n.token_ids for n in res.tree.root.children]
    assert first == [[5, 6, NEWLINE], [5, NEWLINE]]  # cut after the line end, not at 6 tokens
    assert not any(n.terminal or n.finished for n in res.tree.root.children)
    assert policy.calls[1].prefixes == [[9, 9, 9, 5, 6, NEWLINE]]  # the next line follows it
    assert res.trajectories[0].response_ids == [5, 6, NEWLINE, CORRECT, EOS]
    assert res.stats.sampled_tokens == sum(len(n.token_ids) for n in res.tree.nodes()) - 3


def test_fixed_chunks_pass_no_stop():
    policy = ScriptedPolicy(seed=3)
    search.run([FakeProblem([9, 9])], policy, fake_verifier,
               SearchConfig.tiny(step_tokens=8, step_boundary=None))
    assert all(c.stop is None for c in policy.calls)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), step_tokens=st.integers(1, 8))
def test_property_line_nodes(seed, step_tokens):
    """Every node holds at most one line end, as its last token; a node without one is either
    finished (EOS) or has step_tokens tokens; the random draws are the chunk run's, cut."""
    cfg = SearchConfig(step_tokens=step_tokens, max_depth=6, width=3, n_trajectories=3,
                       step_boundary="\n", seed=seed)
    policy = ScriptedPolicy(seed=seed, p_eos=0.1, vocab_size=8)
    results = search.run([FakeProblem([9, 9]), FakeProblem([8])], policy, fake_verifier, cfg)
    for res in results:
        for node in res.tree.nodes():
            if node.is_root:
                continue
            ids = node.token_ids
            assert NEWLINE not in ids[:-1]
            if ids[-1] == NEWLINE:
                assert not node.finished
            else:
                assert node.finished or len(ids) == step_tokens
            assert node.terminal == (node.finished or node.depth >= cfg.max_depth)


def test_step_boundary_names_and_validation():
    assert SearchConfig().step_boundary is None  # the released code's fixed chunks
    assert SearchConfig.tiny().step_boundary == "\n"  # the CPU preset: a line per node
    assert SearchConfig(step_boundary="line").step_boundary == "\n"
    assert SearchConfig(step_boundary="paragraph").step_boundary == "\n\n"
    assert SearchConfig(step_boundary="\n").step_boundary == "\n"
    for bad in ("", 5):
        with pytest.raises(ValueError, match="SearchConfig.step_boundary"):
            SearchConfig(step_boundary=bad)
