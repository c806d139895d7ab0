"""The vLLM backend against the transformers one on the tiny reasoner (``vllm-on-cpu.md``).

One engine for the module (fp32, in-process, 128 MiB KV cache). Checked:

(a) behaviour log-probs = ``log_softmax(raw logits)`` of a transformers fp32 forward pass
    (<= 1e-4), also at temperature 0.7 / top-p 0.9, and Shannon entropies;
(b) EOS: kept, nothing after it, ``finished`` iff sampled; only ``eos_token_id`` stops;
(c) ``load_weights`` takes effect, and the prefix cache serves no KV from the old weights;
(d) ``search.run`` gives the same statistics as ``HFPolicy`` within 4 paired standard errors;
(e) stops: a sample ends where ``HFPolicy``'s ``StopTable`` ends it (one token or two), and a
    search with line nodes is made of lines with the model's log-probs.

Run: ``.venv-vllm/bin/python -m pytest -q tests/vllm_backend``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from logprob_check import max_logprob_error

from dslib import search
from dslib.config import SearchConfig
from dslib.policy.base import Policy, StopTable
from dslib.policy.hf import HFPolicy, load_causal_lm, sequence_logprobs
from dslib.policy.vllm import VLLMPolicy

KV_BYTES = 128 << 20  # 0.7 GB resident instead of 1.7 GB (vllm-on-cpu.md "Memory")
TOL = 1e-4


@pytest.fixture(scope="module")
def policy(tiny_reasoner) -> Any:
    # one thread: the 2-core machine is shared, and the tiny model gains nothing from two.
    # Set before the engine starts: afterwards vLLM makes set_num_threads a no-op.
    torch.set_num_threads(1)
    pol = VLLMPolicy.from_pretrained(
        tiny_reasoner.path, seed=0, kv_cache_memory_bytes=KV_BYTES,
        max_logprobs=-1,  # lets a second policy on the same engine ask for entropies
    )
    yield pol
    pol.close()


@pytest.fixture(scope="module")
def hf_model(tiny_reasoner) -> Any:
    return tiny_reasoner.load_model()


@pytest.fixture(scope="module")
def items(tiny_reasoner) -> list[Any]:
    """16 level-3 and 16 level-4 test problems with their chat prompt ids (built once: the
    level pools take seconds to generate)."""
    return tiny_reasoner.prompted(3, "test", 16) + tiny_reasoner.prompted(4, "test", 16)


@pytest.fixture(scope="module")
def prompts(items) -> list[list[int]]:
    return [list(it.prompt_ids) for it in items[:3] + items[16:19]]


# ------------------------------------------------------------------------- (a) log-probs


def test_protocol_counts_and_seeding(policy, prompts):
    assert isinstance(policy, Policy)
    out = policy.sample(prompts[:3], n=[2, 0, 3], max_new_tokens=6)
    assert [len(o) for o in out] == [2, 0, 3]
    with pytest.raises(ValueError):
        policy.sample(prompts[:3], n=[1, 2], max_new_tokens=4)
    with pytest.raises(ValueError):
        policy.sample([[]], n=1, max_new_tokens=4)
    before = dict(policy.counters)
    out = policy.sample(prompts, n=3, max_new_tokens=12)
    assert policy.counters["calls"] == before["calls"] + 1
    assert policy.counters["sampled_tokens"] - before["sampled_tokens"] == sum(
        len(s.token_ids) for segs in out for s in segs
    )
    prefill = policy.counters["prefill_tokens"] - before["prefill_tokens"]
    reused = policy.counters["reused_tokens"] - before["reused_tokens"]
    assert prefill + reused == 3 * sum(len(p) for p in prompts)
    # same seed, same engine: same tokens; another seed: others (per-request seeds)
    a = VLLMPolicy(policy.llm, policy.eos_token_id, seed=7)
    b = VLLMPolicy(policy.llm, policy.eos_token_id, seed=7)
    c = VLLMPolicy(policy.llm, policy.eos_token_id, seed=8)
    ta, tb, tc = ([s.token_ids for o in p.sample(prompts, 4, 16) for s in o] for p in (a, b, c))
    assert ta == tb
    assert ta != tc


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9)])
def test_logprobs_are_raw_and_match_a_transformers_forward(
    policy, hf_model, prompts, temperature, top_p
):
    # HFPolicy returns log_softmax(raw logits) whatever the temperature / top-p; so must vLLM
    out = policy.sample(prompts, n=4, max_new_tokens=32, temperature=temperature, top_p=top_p)
    assert max_logprob_error(hf_model, prompts, out) <= TOL


def test_entropies_match_the_transformers_backend(policy, hf_model, prompts):
    pol = VLLMPolicy(policy.llm, policy.eos_token_id, seed=3, entropies=True)
    out = pol.sample(prompts[:2], n=2, max_new_tokens=10)
    with torch.no_grad():
        for prefix, segs in zip(prompts[:2], out, strict=True):
            for seg in segs:
                ids = torch.tensor([prefix + seg.token_ids])
                logits = hf_model(input_ids=ids).logits[0, len(prefix) - 1 : -1].float()
                logp = torch.log_softmax(logits, -1)
                ref = -(logp.exp() * logp).sum(-1)
                assert seg.entropies is not None
                assert (ref - torch.tensor(seg.entropies)).abs().max().item() <= TOL


def test_greedy_matches_the_transformers_backend(policy, tiny_reasoner, prompts):
    hf = HFPolicy.from_pretrained(tiny_reasoner.path)
    ref = hf.sample(prompts, n=1, max_new_tokens=24, temperature=0.0)
    out = policy.sample(prompts, n=2, max_new_tokens=24, temperature=0.0)
    for r, segs in zip(ref, out, strict=True):
        assert [s.token_ids for s in segs] == [r[0].token_ids] * 2
        assert segs[0].logprobs == pytest.approx(r[0].logprobs, abs=TOL)


# ----------------------------------------------------------------------------------- (b) EOS


def test_eos_is_kept_and_nothing_follows(policy, prompts):
    eos = policy.eos_token_id
    long = policy.sample(prompts, n=4, max_new_tokens=64)
    short = policy.sample(prompts, n=4, max_new_tokens=5)
    assert any(s.finished for o in long for s in o)  # the reasoner answers in ~21 tokens
    for segs, limit in [(long, 64), (short, 5)]:
        for seg in (s for o in segs for s in o):
            assert eos not in seg.token_ids[:-1]
            assert seg.finished == (seg.token_ids[-1] == eos)
            assert len(seg.token_ids) == len(seg.logprobs)
            assert len(seg.token_ids) <= limit
            if not seg.finished:
                assert len(seg.token_ids) == limit


def test_only_the_policys_eos_stops_a_sample(policy, prompts):
    # same seeds, same draws: declare a token seen mid-sample to be EOS; every sample must stop
    # at its first occurrence, and the model's own EOS no longer stops anything
    ref = VLLMPolicy(policy.llm, policy.eos_token_id, seed=5).sample(prompts, 2, 24)
    toks = ref[0][0].token_ids
    cut = next(i for i in range(2, len(toks)) if toks[i] not in toks[:i])
    other = VLLMPolicy(policy.llm, toks[cut], seed=5).sample(prompts, 2, 24)
    assert other[0][0].token_ids == toks[: cut + 1] and other[0][0].finished
    for segs, ref_segs in zip(other, ref, strict=True):
        for seg, r in zip(segs, ref_segs, strict=True):
            if toks[cut] in r.token_ids:
                k = r.token_ids.index(toks[cut])
                assert seg.finished and seg.token_ids == r.token_ids[: k + 1]
            else:  # r may have stopped on the real EOS; this one went on past it
                assert seg.token_ids[: len(r.token_ids)] == r.token_ids
                assert seg.finished == (seg.token_ids[-1] == toks[cut])


# ------------------------------------------------------------------------ (c) weight updates


def perturbed(model: Any, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        k: v * (1 + 0.3 * torch.randn(v.shape, generator=gen))
        for k, v in model.state_dict().items()
    }


def test_pushed_weights_take_effect_and_no_stale_kv_is_served(policy, tiny_reasoner, prompts):
    base = load_causal_lm(tiny_reasoner.path)
    new = load_causal_lm(tiny_reasoner.path)
    new.load_state_dict(perturbed(base))
    long = [sum(prompts[:4], [])]  # two full 32-token KV blocks for the prefix cache
    assert len(long[0]) > 2 * 32

    def greedy() -> tuple[Any, int]:
        reused = policy.counters["reused_tokens"]
        out = policy.sample(long, n=1, max_new_tokens=16, temperature=0.0)
        return out, policy.counters["reused_tokens"] - reused

    old_out, _ = greedy()
    old_out, hit = greedy()
    assert hit >= 32  # the prefix cache serves the long prompt's full blocks
    assert max_logprob_error(base, long, old_out) <= TOL
    assert max_logprob_error(new, long, old_out) > 1e-2  # negative control: weights differ

    # vLLM's reload alone keeps the cached blocks: this is what reset_prefix_cache prevents
    policy.llm.collective_rpc(
        "reload_weights", kwargs={"weights_iterator": list(new.state_dict().items())}
    )
    stale, hit = greedy()
    assert hit >= 32 and max_logprob_error(new, long, stale) > 1e-3

    # the policy's push: reload + reset, so nothing computed with the old weights comes back
    policy.load_weights(perturbed(base, seed=1))
    policy.load_weights(new.state_dict())
    fresh, hit = greedy()
    assert hit == 0
    assert max_logprob_error(new, long, fresh) <= TOL
    ref = HFPolicy(new, eos_token_id=policy.eos_token_id).sample(long, 1, 16, temperature=0.0)
    assert fresh[0][0].token_ids == ref[0][0].token_ids
    assert fresh[0][0].token_ids != old_out[0][0].token_ids

    # the file route (multiprocess engines) gives the same engine weights
    policy._reload_from_file(list(base.state_dict().items()))
    policy.clear_prefix_cache()
    back, _ = greedy()
    assert back[0][0].token_ids == old_out[0][0].token_ids
    assert max_logprob_error(base, long, back) <= TOL
    policy.load_weights(base.state_dict())  # leave the module's engine as it started


def test_sleep_and_wake_are_no_ops_on_the_cpu(policy, prompts):
    assert not policy.sleep_enabled  # the CPU platform has no sleep mode
    policy.sleep(level=1)
    policy.wake_up()
    assert len(policy.sample(prompts[:1], 1, 4)[0]) == 1


# ------------------------------------------------------------------------ (d) tree search


def tree_stats(results: Sequence[search.SearchResult]) -> dict[str, list[float]]:
    return {
        "sampled tokens": [float(r.stats.sampled_tokens) for r in results],
        "iterations": [float(r.stats.iterations) for r in results],
        "has a correct answer": [
            float(any(t.correct for t in r.trajectories)) for r in results
        ],
    }


def test_search_statistics_match_the_transformers_backend(policy, tiny_reasoner, items):
    """Same 32 problems through both backends (levels 3 and 4, tiny preset search).

    The backends draw different random numbers, so trees differ; per problem, the two trees
    are independent draws of the same distribution. A difference of means beyond 4 paired
    standard errors (|z| > 4: probability ~6e-5 under equal distributions) fails. Measured
    here on these 32: sampled tokens per tree 260 (HF) vs 241 (vLLM), paired se 7.2;
    iterations 9.4 vs 8.6, se 0.27; share with a correct answer 0.31 vs 0.38, se 0.08. On 128
    problems x 3 seeds the gaps were all within 1.5 se (tokens 253-256 vs 254-260, se 4-5).
    """
    verifier = tiny_reasoner.verifier()
    cfg = SearchConfig.tiny(seed=0)
    hf = search.run(items, HFPolicy.from_pretrained(tiny_reasoner.path, seed=0), verifier, cfg)
    policy.seed(0)  # the same draws whichever tests ran before
    before = dict(policy.counters)
    vl = search.run(items, policy, verifier, cfg)
    assert policy.counters["reused_tokens"] > before["reused_tokens"]  # tree prefixes reused
    assert all(len(r.trajectories) == cfg.n_trajectories for r in hf + vl)
    a, b = tree_stats(hf), tree_stats(vl)
    for key in a:
        diffs = [x - y for x, y in zip(a[key], b[key], strict=True)]
        se = statistics.stdev(diffs) / len(diffs) ** 0.5
        gap = abs(statistics.mean(diffs))
        assert gap <= 4 * se + 1e-9, (key, statistics.mean(a[key]), statistics.mean(b[key]), se)
    # the tolerance is informative: a quarter of the mean chunk budget would be caught
    tokens = statistics.mean(a["sampled tokens"])
    se_tokens = statistics.stdev(
        [x - y for x, y in zip(a["sampled tokens"], b["sampled tokens"], strict=True)]
    ) / len(items) ** 0.5
    assert 4 * se_tokens < 0.25 * tokens
    # the trajectories' behaviour log-probs are the model's (node by node through the cache)
    model = load_causal_lm(tiny_reasoner.path)
    worst = 0.0
    with torch.no_grad():
        for res in vl[:8]:
            for traj in res.trajectories:
                ref = sequence_logprobs(model, traj.prompt_ids, traj.response_ids)
                worst = max(worst, (ref - torch.tensor(traj.logprobs)).abs().max().item())
    assert worst <= TOL


# ------------------------------------------------------------------------------- (e) stops


@pytest.mark.parametrize("stop", ["\n", "=2"])
def test_a_stop_ends_a_sample_where_the_stop_table_does(policy, tiny_reasoner, prompts, stop):
    """Per-request seeds: the same draws with and without the stop, cut by the table. "\n"
    is one token here (a stop token id); "=2" is two ("=" then "2": a stop string)."""
    tokenizer = tiny_reasoner.load_tokenizer()
    table = StopTable.from_tokenizer(stop, tokenizer)
    assert bool(table.containing) == (stop == "\n")
    plain = VLLMPolicy(policy.llm, policy.eos_token_id, seed=9).sample(prompts, 4, 40)
    cut = VLLMPolicy(policy.llm, policy.eos_token_id, seed=9).sample(prompts, 4, 40, stop=stop)
    stopped = 0
    for segs, ref_segs in zip(cut, plain, strict=True):
        for seg, ref in zip(segs, ref_segs, strict=True):
            m = table.cut(ref.token_ids)
            assert seg.token_ids == ref.token_ids[:m]
            assert seg.logprobs == pytest.approx(ref.logprobs[:m], abs=TOL)
            assert seg.finished == (seg.token_ids[-1] == policy.eos_token_id)
            if m < len(ref.token_ids):
                stopped += 1
                assert not seg.finished and tokenizer.decode(seg.token_ids).endswith(stop)
    assert stopped >= 4


def test_line_nodes_search_on_vllm(policy, tiny_reasoner, items, hf_model):
    tokenizer = tiny_reasoner.load_tokenizer()
    cfg = SearchConfig.tiny(step_tokens=24, step_boundary="line", seed=0)
    results = search.run(items[:8], policy, tiny_reasoner.verifier(), cfg)
    line_ends = 0
    with torch.no_grad():
        for res in results:
            for node in res.tree.nodes():
                if node.is_root:
                    continue
                text = tokenizer.decode(node.token_ids, skip_special_tokens=True)
                assert "\n" not in text[:-1]
                line_ends += text.endswith("\n")
                assert text.endswith("\n") or node.finished or len(node.token_ids) == 24
            for traj in res.trajectories:
                ref = sequence_logprobs(hf_model, traj.prompt_ids, traj.response_ids)
                assert (ref - torch.tensor(traj.logprobs)).abs().max().item() <= TOL
    assert line_ends > 0
