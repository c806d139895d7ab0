"""The transformers backend: behaviour log-probs, batching, EOS handling, seeding, weights."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from dslib.policy.base import Policy, Segment
from dslib.policy.hf import HFPolicy, sequence_logprobs

VOCAB = 48
NO_EOS = VOCAB - 1  # an eos id for runs that should not stop early


def random_model(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # sharper logits than the default init, so sampling is not uniform
        for p in model.parameters():
            p.mul_(2.0)
    return model


PREFIXES = [[3, 5, 7, 9, 11, 2], [4, 4], [10, 20, 30, 31, 32, 33, 34, 35, 36, 1]]


@pytest.fixture(scope="module")
def model() -> Qwen2ForCausalLM:
    return random_model()


def test_protocol_and_shapes(model):
    pol = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=1)
    assert isinstance(pol, Policy)
    out = pol.sample(PREFIXES, n=[2, 0, 3], max_new_tokens=5)
    assert [len(o) for o in out] == [2, 0, 3]
    for seg in out[0] + out[2]:
        assert isinstance(seg, Segment)
        assert len(seg.token_ids) == len(seg.logprobs) == len(seg.entropies) <= 5
    with pytest.raises(ValueError):
        pol.sample(PREFIXES, n=[1, 2], max_new_tokens=4)
    with pytest.raises(ValueError):
        pol.sample([[]], n=1, max_new_tokens=4)


def test_logprobs_match_fresh_forward(model):
    pol = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=3)
    out = pol.sample(PREFIXES, n=4, max_new_tokens=12)
    worst = 0.0
    with torch.no_grad():
        for prefix, segs in zip(PREFIXES, out):
            for seg in segs:
                ref = sequence_logprobs(model, prefix, seg.token_ids)
                worst = max(worst, (ref - torch.tensor(seg.logprobs)).abs().max().item())
    assert worst <= 1e-5, worst


def test_batched_and_unbatched_greedy_agree(model):
    pol = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0)
    batched = pol.sample(PREFIXES, n=2, max_new_tokens=10, temperature=0.0)
    for prefix, segs in zip(PREFIXES, batched):
        alone = pol.sample([prefix], n=1, max_new_tokens=10, temperature=0.0)[0][0]
        for seg in segs:
            assert seg.token_ids == alone.token_ids
            assert seg.logprobs == pytest.approx(alone.logprobs, abs=1e-5)


def test_eos_in_the_middle_of_a_chunk(model):
    # Same seed, same draws: sample once without an EOS, then declare a token that appeared
    # mid-chunk to be EOS and sample again; every row must stop exactly there.
    ref = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=5)
    ref_out = ref.sample(PREFIXES, n=2, max_new_tokens=12)
    toks = ref_out[0][0].token_ids
    cut = next(i for i in range(2, len(toks)) if toks[i] not in toks[:i])
    eos = toks[cut]
    pol = HFPolicy(model, eos_token_id=eos, pad_token_id=0, seed=5)
    out = pol.sample(PREFIXES, n=2, max_new_tokens=12)
    assert out[0][0].finished
    assert out[0][0].token_ids == toks[: cut + 1]  # EOS kept, nothing after it
    assert len(out[0][0].logprobs) == cut + 1
    for segs, ref_segs in zip(out, ref_out):
        for seg, r in zip(segs, ref_segs):
            if eos in r.token_ids:
                k = r.token_ids.index(eos)
                assert seg.finished and seg.token_ids == r.token_ids[: k + 1]
            else:  # the reference row may have stopped on NO_EOS; up to there both agree
                assert seg.token_ids[: len(r.token_ids)] == r.token_ids
                assert not seg.finished or seg.token_ids[-1] == eos


def test_seeded_sampling_is_reproducible(model):
    a = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=7)
    b = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=7)
    c = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=8)
    ta = [s.token_ids for o in a.sample(PREFIXES, 4, 8) for s in o]
    tb = [s.token_ids for o in b.sample(PREFIXES, 4, 8) for s in o]
    tc = [s.token_ids for o in c.sample(PREFIXES, 4, 8) for s in o]
    assert ta == tb
    assert ta != tc


def test_top_p_keeps_only_the_nucleus(model):
    pol = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=0)
    tiny_p = pol.sample(PREFIXES, n=6, max_new_tokens=6, top_p=1e-6)
    greedy = pol.sample(PREFIXES, n=1, max_new_tokens=6, temperature=0.0)
    for segs, ref in zip(tiny_p, greedy):
        for seg in segs:
            assert seg.token_ids == ref[0].token_ids


def test_max_rows_splits_into_passes_with_same_shapes(model):
    pol = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, max_rows=3)
    out = pol.sample(PREFIXES, n=[2, 3, 2], max_new_tokens=4, temperature=0.0)
    assert [len(o) for o in out] == [2, 3, 2]
    assert pol.counters["calls"] == 3


def test_load_weights_takes_effect():
    m1, m2 = random_model(0), random_model(1)
    pol = HFPolicy(m1, eos_token_id=NO_EOS, pad_token_id=0)
    before = pol.sample(PREFIXES, 1, 8, temperature=0.0)
    pol.load_weights(m2.state_dict())
    after = pol.sample(PREFIXES, 1, 8, temperature=0.0)
    ref = HFPolicy(m2, eos_token_id=NO_EOS, pad_token_id=0).sample(PREFIXES, 1, 8, temperature=0.0)
    assert [o[0].token_ids for o in after] == [o[0].token_ids for o in ref]
    assert [o[0].token_ids for o in after] != [o[0].token_ids for o in before]


# ----------------------------------------------------------------------------- prefix KV cache


def _grow(pol: HFPolicy, prefixes, n, steps, chunk):
    """Expand like the search does: each step samples children of the previous samples."""
    frontier = [list(p) for p in prefixes]
    history = []
    for _ in range(steps):
        out = pol.sample(frontier, n=n, max_new_tokens=chunk)
        history.append(out)
        frontier = [p + segs[0].token_ids for p, segs in zip(frontier, out)]
    return history


def test_prefix_cache_gives_the_same_samples_as_recomputing(model):
    never = 10_000  # an EOS id outside the vocabulary: every sample runs to max_new_tokens
    cached = HFPolicy(model, eos_token_id=never, pad_token_id=0, seed=5)
    plain = HFPolicy(model, eos_token_id=never, pad_token_id=0, seed=5, prefix_cache_tokens=0)
    a = _grow(cached, PREFIXES, n=2, steps=4, chunk=6)
    b = _grow(plain, PREFIXES, n=2, steps=4, chunk=6)
    worst = 0.0
    for out_a, out_b in zip(a, b):
        for segs_a, segs_b in zip(out_a, out_b):
            for sa, sb in zip(segs_a, segs_b):
                assert sa.token_ids == sb.token_ids
                diff = torch.tensor(sa.logprobs) - torch.tensor(sb.logprobs)
                worst = max(worst, diff.abs().max().item())
    assert worst < 1e-4
    # every call after the first found its prefixes cached: 1 token pre-filled per prefix
    assert plain.counters["reused_tokens"] == 0
    assert cached.counters["reused_tokens"] > 0
    assert cached.counters["prefill_tokens"] == sum(map(len, PREFIXES)) + 3 * len(PREFIXES)


def test_prefix_cache_mixed_hits_and_misses_match_fresh_forward(model):
    pol = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=7)
    first = pol.sample(PREFIXES[:2], n=1, max_new_tokens=5)
    grown = [PREFIXES[0] + first[0][0].token_ids, PREFIXES[1] + first[1][0].token_ids]
    # two hits and a short miss: the block is 3 tokens, the hits recompute 2 cached ones
    mixed = [grown[0], [9, 8, 7], grown[1]]
    reused0 = pol.counters["reused_tokens"]
    out = pol.sample(mixed, n=3, max_new_tokens=6)
    assert pol.counters["reused_tokens"] > reused0
    with torch.no_grad():
        for prefix, segs in zip(mixed, out):
            for seg in segs:
                ref = sequence_logprobs(model, prefix, seg.token_ids)
                assert (ref - torch.tensor(seg.logprobs)).abs().max().item() < 1e-4


def test_prefix_cache_is_dropped_when_weights_change():
    model = random_model(2)
    pol = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=1)
    out = pol.sample([PREFIXES[0]], n=2, max_new_tokens=4)
    assert pol.prefix_cache_size[0] == 2  # both samples stopped at max_new_tokens
    with torch.no_grad():  # an optimizer step on the shared model: in place
        next(model.parameters()).add_(0.5)
    grown = PREFIXES[0] + out[0][0].token_ids
    reused0 = pol.counters["reused_tokens"]
    seg = pol.sample([grown], n=1, max_new_tokens=3)[0][0]
    assert pol.counters["reused_tokens"] == reused0  # stale entries were not used
    with torch.no_grad():
        ref = sequence_logprobs(model, grown, seg.token_ids)
    assert (ref - torch.tensor(seg.logprobs)).abs().max().item() < 1e-4
    pol.load_weights(random_model(3).state_dict())
    assert pol.prefix_cache_size == (0, 0)


def test_prefix_cache_budget_evicts_oldest_and_skips_finished(model):
    pol = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=1, prefix_cache_tokens=40)
    pol.sample(PREFIXES, n=2, max_new_tokens=4)  # entries of 9, 5 and 13 tokens, two each
    entries, tokens = pol.prefix_cache_size
    assert tokens <= 40 and entries < 6
    eos_pol = HFPolicy(model, eos_token_id=int(model.config.vocab_size) - 2, pad_token_id=0)
    out = eos_pol.sample(PREFIXES, n=8, max_new_tokens=30)
    finished = sum(s.finished for segs in out for s in segs)
    assert eos_pol.prefix_cache_size[0] == (24 - finished if finished < 24 else 0)


# ----------------------------------------------------------------------------- stops


class TextTokenizer:
    """Just what a stop needs: ``len`` and ``decode([id])``. Ids 5-12 end a line, 13-15
    hold a newline inside, 16 is a blank line, 17 is "\\n\\n" plus text."""

    TEXTS = {**{i: f"{i}\n" for i in range(5, 13)}, 13: "a\nb", 14: "c\nd", 15: "e\nf",
             16: "\n\n", 17: "\n\ng"}

    def __len__(self) -> int:
        return VOCAB

    def decode(self, ids, **kwargs) -> str:
        return "".join(self.TEXTS.get(i, "w") for i in ids)


LINE_ENDS = set(range(5, 18))


def test_stop_ends_each_row_after_its_first_boundary_token(model):
    never = 10_000  # an EOS id outside the vocabulary: only the stop ends a row early
    plain = HFPolicy(model, eos_token_id=never, pad_token_id=0, seed=11)
    lined = HFPolicy(model, eos_token_id=never, pad_token_id=0, seed=11,
                     tokenizer=TextTokenizer())
    ref = plain.sample(PREFIXES, n=6, max_new_tokens=12)
    out = lined.sample(PREFIXES, n=6, max_new_tokens=12, stop="\n")
    stopped = 0
    for segs, ref_segs in zip(out, ref):
        for seg, r in zip(segs, ref_segs):
            cut = next((i + 1 for i, t in enumerate(r.token_ids) if t in LINE_ENDS),
                       len(r.token_ids))
            assert seg.token_ids == r.token_ids[:cut]  # the same draws, cut after the line end
            assert seg.logprobs == pytest.approx(r.logprobs[:cut], abs=1e-6)
            assert len(seg.entropies) == cut and not seg.finished
            stopped += cut < len(r.token_ids)
    assert stopped >= 6  # enough rows stopped early for the check to mean something
    assert lined.counters["sampled_tokens"] == sum(len(s.token_ids) for o in out for s in o)


def test_stop_split_over_two_tokens_and_eos_still_finishes(model):
    tok = TextTokenizer()
    pol = HFPolicy(model, eos_token_id=9, pad_token_id=0, seed=4, tokenizer=tok)
    out = pol.sample(PREFIXES, n=8, max_new_tokens=16, stop="\n\n")
    ends = 0
    for segs in out:
        for seg in segs:
            text = tok.decode(seg.token_ids)
            if seg.finished:  # EOS (id 9, "9\n") ends a row and is the only "finished"
                assert seg.token_ids[-1] == 9 and "\n\n" not in tok.decode(seg.token_ids[:-1])
            elif len(seg.token_ids) < 16:  # stopped: the boundary completes at the last token
                assert "\n\n" in text and "\n\n" not in tok.decode(seg.token_ids[:-1])
                ends += 1
            else:
                assert "\n\n" not in text
    assert ends > 0


def test_prefix_cache_with_line_stops_matches_recomputing(model):
    """Children of nodes that ended at a line end: cached prefixes, the same samples."""
    cached = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=5,
                      tokenizer=TextTokenizer())
    plain = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0, seed=5, prefix_cache_tokens=0,
                     tokenizer=TextTokenizer())
    frontier_a = frontier_b = [list(p) for p in PREFIXES]
    lengths = []
    for _ in range(4):
        out_a = cached.sample(frontier_a, n=2, max_new_tokens=8, stop="\n")
        out_b = plain.sample(frontier_b, n=2, max_new_tokens=8, stop="\n")
        for prefix, segs_a, segs_b in zip(frontier_a, out_a, out_b):
            for sa, sb in zip(segs_a, segs_b):
                assert sa.token_ids == sb.token_ids
                assert sa.logprobs == pytest.approx(sb.logprobs, abs=1e-4)
                with torch.no_grad():
                    ref = sequence_logprobs(model, prefix, sa.token_ids)
                assert (ref - torch.tensor(sa.logprobs)).abs().max().item() < 1e-4
        lengths += [len(segs[0].token_ids) for segs in out_a]
        frontier_a = [p + segs[0].token_ids for p, segs in zip(frontier_a, out_a)]
        frontier_b = [p + segs[0].token_ids for p, segs in zip(frontier_b, out_b)]
    assert min(lengths) < 8  # some nodes ended at a line end, before max_new_tokens
    # every call after the first found its prefixes cached: 1 token pre-filled per prefix
    assert cached.counters["prefill_tokens"] == sum(map(len, PREFIXES)) + 3 * len(PREFIXES)
    assert plain.counters["reused_tokens"] == 0


def test_stop_needs_a_tokenizer(model):
    pol = HFPolicy(model, eos_token_id=NO_EOS, pad_token_id=0)
    with pytest.raises(ValueError, match="tokenizer"):
        pol.sample(PREFIXES, n=1, max_new_tokens=4, stop="\n")
    with pytest.raises(ValueError, match="stop"):
        pol.sample(PREFIXES, n=1, max_new_tokens=4, stop="")
