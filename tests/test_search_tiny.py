"""The tiny reasoner end to end through ``search.run`` with ``HFPolicy``
(docs/paper-notes.md#search).

Uses the session's quick (under-trained) reasoner: the mechanics, not the model's skill, are
under test. A synthetic "format" verifier gives mixed +1 / -1 verdicts on the same real
samples, so the sign invariant of the backup (App. B.2) is checked on non-empty sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from dslib import search
from dslib.config import SearchConfig
from dslib.policy.hf import HFPolicy, sequence_logprobs
from dslib.tasks import countdown
from dslib.tasks.base import Prompted, TokenVerifier, prompt_all
from dslib.tree import Node
from dslib.verify import Verdict

CFG = SearchConfig.tiny(seed=0)


@dataclass
class Run:
    """One search over the test problems, with the policy's counters before and after."""

    results: list[search.SearchResult]
    policy: HFPolicy
    calls: int
    sampled: int


def do_search(
    items: Sequence[Prompted], policy: HFPolicy, verifier: Any, cfg: SearchConfig = CFG
) -> Run:
    calls0, sampled0 = policy.counters["calls"], policy.counters["sampled_tokens"]
    results = search.run(items, policy, verifier, cfg)
    return Run(
        results, policy, policy.counters["calls"] - calls0,
        policy.counters["sampled_tokens"] - sampled0,
    )


class FormatVerifier:
    """Synthetic verdicts on real samples: "correct" iff there is an answer and the response
    has an even number of tokens (mixed outcomes whatever the model's skill)."""

    def __init__(self, tokenizer: Any) -> None:
        self.inner = TokenVerifier(tokenizer, countdown.verify)

    def __call__(self, item: Prompted, response_ids: Sequence[int]) -> Verdict:
        v = self.inner(item, response_ids)
        ok = v.has_answer and len(response_ids) % 2 == 0
        return Verdict(ok, v.extracted, "ok" if ok else (v.reason if not v.correct else "wrong"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: a ~1M-parameter model gains nothing from two, and two threads spin
    badly when the 2-core machine is shared (measured: 0.4 s -> 55 s per search)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def setup(quick_reasoner) -> tuple[Any, list[Prompted]]:
    tokenizer = quick_reasoner.load_tokenizer()
    problems = quick_reasoner.problems(3, "test", 3) + quick_reasoner.problems(5, "test", 3)
    return tokenizer, prompt_all(tokenizer, problems, countdown.prompt_text)


@pytest.fixture(scope="module")
def run(quick_reasoner, setup) -> Run:
    tokenizer, items = setup
    return do_search(
        items, quick_reasoner.load_policy(seed=0), TokenVerifier(tokenizer, countdown.verify)
    )


@pytest.fixture(scope="module")
def format_run(quick_reasoner, setup) -> Run:
    tokenizer, items = setup
    return do_search(items, quick_reasoner.load_policy(seed=1), FormatVerifier(tokenizer))


def test_n_trajectories_per_tree_unless_exhausted(run):
    assert len(run.results) == 6
    for res in run.results:
        if res.exhausted:
            assert len(res.trajectories) < CFG.n_trajectories
        else:
            assert len(res.trajectories) == CFG.n_trajectories
            assert res.tree.done
        assert res.stats.n_trajectories == len(res.trajectories)
        assert [t.leaf for t in res.trajectories] == res.tree.recorded


def test_trajectory_tokens_and_logprobs_match_a_fresh_forward(run):
    model = run.policy.model
    worst = 0.0
    for res in run.results:
        for traj in res.trajectories:
            assert len(traj.response_ids) == len(traj.logprobs) > 0
            assert traj.prompt_ids == res.problem.prompt_ids
            # the spans tile the response, node by node
            assert traj.node_spans[0][0] == 0 and traj.node_spans[-1][1] == len(traj.response_ids)
            for (_, end), (start, _) in zip(traj.node_spans, traj.node_spans[1:]):
                assert end == start
            for node, (a, b) in zip(traj.nodes, traj.node_spans):
                assert traj.response_ids[a:b] == node.token_ids
            assert traj.leaf.terminal and traj.leaf.depth == len(traj.node_spans)
            with torch.no_grad():
                ref = sequence_logprobs(model, traj.prompt_ids, traj.response_ids)
            diff = (ref - torch.tensor(traj.logprobs)).abs().max().item()
            worst = max(worst, diff)
    assert worst <= 1e-5, worst


def test_one_policy_call_per_iteration(run):
    iterations = [res.stats.iterations for res in run.results]
    assert iterations == [res.tree.iterations for res in run.results]
    assert run.calls == max(iterations)


def test_sampled_token_stat_equals_the_chunks_in_the_tree(run):
    for res in run.results:
        chunks = [len(n.token_ids) for n in res.tree.nodes() if not n.is_root]
        assert res.stats.sampled_tokens == sum(chunks)
        assert res.stats.nodes == len(chunks) == res.tree.n_nodes - 1
        assert 0 < res.stats.sampled_tokens <= res.stats.forward_tokens
        assert res.stats.forward_tokens <= res.stats.forward_tokens_no_reuse
        assert max(chunks) <= CFG.step_tokens
    assert run.sampled == sum(res.stats.sampled_tokens for res in run.results)


def snapshot(results: Sequence[search.SearchResult]) -> list[dict[str, Any]]:
    out = []
    for res in results:
        stats = res.stats.to_dict()
        stats.pop("time_s")
        out.append({
            "tree": res.tree.to_dict(include_tokens=True),
            "trajectories": [t.to_dict() for t in res.trajectories],
            "stats": stats,
            "exhausted": res.exhausted,
        })
    return out


def test_same_seed_twice_is_identical(quick_reasoner, setup, run):
    tokenizer, items = setup
    again = do_search(
        items, quick_reasoner.load_policy(seed=0), TokenVerifier(tokenizer, countdown.verify)
    )
    assert snapshot(again.results) == snapshot(run.results)
    assert again.calls == run.calls


def correct_path_nodes(results: Sequence[search.SearchResult]) -> list[Node]:
    """Every node that was ever on a path to a +1 terminal (backed up or not)."""
    seen: dict[int, Node] = {}
    for res in results:
        for node in res.tree.nodes():
            if node.terminal and node.score == 1.0:
                for anc in node.path():
                    seen[id(anc)] = anc
    return list(seen.values())


@pytest.mark.parametrize("which", ["run", "format_run"])
def test_nodes_on_correct_paths_never_go_negative(which, request):
    results = request.getfixturevalue(which).results
    on_correct = [n for res in results for t in res.trajectories if t.correct for n in t.nodes]
    assert all(n.value >= 0 for n in on_correct)
    assert all(n.value >= 0 for n in correct_path_nodes(results))
    if which == "format_run":  # the synthetic verdicts make both sets non-empty
        assert on_correct
        assert any(n.value < 0 for res in results for n in res.tree.nodes())


def test_search_reuses_the_prefix_cache_and_leaves_it_empty(tiny_reasoner):
    """The tree's nodes come back as prefixes: the backend pre-fills ~1 token per request."""
    policy = tiny_reasoner.load_policy(seed=0)
    items = tiny_reasoner.prompted(4, "rl", 6)
    before = dict(policy.counters)
    run = do_search(items, policy, tiny_reasoner.verifier())
    computed = policy.counters["prefill_tokens"] - before["prefill_tokens"]
    reused = policy.counters["reused_tokens"] - before["reused_tokens"]
    prompts = sum(len(it.prompt_ids) for it in items)
    assert reused > computed > 0
    # beyond the prompts, most requests pre-fill a single token (the node's last sampled one)
    assert computed - prompts < 3 * sum(r.stats.iterations for r in run.results)
    assert policy.prefix_cache_size == (0, 0)


def test_line_nodes_on_the_tiny_reasoner(quick_reasoner, setup):
    """``step_boundary="\\n"``: a node is one line of the solution (or the answer line), its
    log-probs are the model's, and the prefix cache still serves the next line's prefix."""
    tokenizer, items = setup
    policy = quick_reasoner.load_policy(seed=2)  # finds its tokenizer next to the model
    cfg = SearchConfig.tiny(step_tokens=24, step_boundary="line", seed=2)
    before = dict(policy.counters)
    run = do_search(items, policy, TokenVerifier(tokenizer, countdown.verify), cfg)
    line_ends = 0
    for res in run.results:
        for node in res.tree.nodes():
            if node.is_root:
                continue
            text = tokenizer.decode(node.token_ids, skip_special_tokens=True)
            assert "\n" not in text[:-1]  # at most one line end, at the end
            if text.endswith("\n"):
                line_ends += 1
                assert not node.finished
            else:
                assert node.finished or len(node.token_ids) == cfg.step_tokens
        for traj in res.trajectories:
            with torch.no_grad():
                ref = sequence_logprobs(policy.model, traj.prompt_ids, traj.response_ids)
            assert (ref - torch.tensor(traj.logprobs)).abs().max().item() < 1e-5
    assert line_ends > 0
    computed = policy.counters["prefill_tokens"] - before["prefill_tokens"]
    reused = policy.counters["reused_tokens"] - before["reused_tokens"]
    assert reused > computed > 0
    assert policy.prefix_cache_size == (0, 0)
