"""The transformers backend: batched sampling with behaviour log-probs from the raw logits.

One call of :meth:`HFPolicy.sample` runs ONE batched generation for all its requests:

1. the P distinct prefixes are left-padded and pre-filled once (a single forward pass);
2. the prefix KV cache is fanned out to ``sum(n)`` rows by index selection
   (``DynamicCache.batch_select_indices``), so the n samples of a prefix share its pre-fill
   (the "KV-cache branching" of ``reference/python-ecosystem.md`` §3);
3. a manual decode loop samples one token per row per step until every row has sampled EOS,
   completed its ``stop`` text (a step boundary, e.g. ``"\n"``: matched per row by a
   :class:`~dslib.policy.base.StopTable` on the tokenizer's texts, two table look-ups per
   step) or sampled ``max_new_tokens`` tokens. A row that is done idles until the last one
   is; its tokens after the stop are dropped.

Across calls (the search asks for children of a node it created in an earlier call), a
**prefix KV cache** keeps, for every sample that ended without EOS (at ``max_new_tokens`` or at
its stop: a node that may be expanded later), the keys and values of ``prefix + sample`` minus
its last token. When that sequence comes back as a prefix, only its uncached tail is pre-filled: the
search's forward tokens per sampled token drop to about 1 (the official code re-prefills the
whole prefix of every copy at every iteration, docs/paper-notes.md#termination). Entries are evicted
least-recently-used first beyond ``prefix_cache_tokens``, cleared by ``search.run`` when it
finishes, and dropped whenever the
weights change (checked through the parameters' in-place version counters, so an optimizer
step on a shared model invalidates them too).

In one pre-fill every prefix contributes its last S tokens, S = the longest uncached tail; a
prefix whose cached part is longer than ``len - S`` recomputes a few cached tokens (exactly the
same values), so the pre-fill stays one rectangular forward pass.

Behaviour log-probs are ``log_softmax(raw logits)`` of the sampled token, i.e. the temperature-1
distribution that the training forward pass recomputes (processed scores would differ, see the
ecosystem reference's ``generate`` pitfall). The Shannon entropy of each step's full distribution
is returned too, for the ``entropy="shannon"`` switch of the search (docs/paper-notes.md#entropy).

Shapes inside one call (P prefixes, R = sum(n) rows, L longest prefix, V vocabulary):

| tensor            | shape   |
|-------------------|---------|
| ``block_ids``     | [P, S]  |
| ``prefix_mask``   | [P, L]  |
| cached keys/layer | [P, H, L - S, D] |
| ``row_of``        | [R]     |
| ``logits`` (step) | [R, V]  |
| ``sampled``       | [R]     |
| stop tables       | [m, V]  |
| ``stop_state``    | [R]     |
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, DynamicCache, PreTrainedModel

from dslib.policy.base import Segment, StopTable, eos_token_id, validate_request


class HFPolicy:
    """A :class:`~dslib.policy.base.Policy` on a transformers causal LM (CPU or one GPU).

    Args:
        model: a causal LM; it is used in place (the trainer may share it, then
            :meth:`load_weights` is only needed for a separate copy).
        eos_token_id: the id whose sampling ends a sequence (``<|im_end|>`` for chat models).
        pad_token_id: id used to left-pad prefixes (never attended to).
        seed: seeds the sampling generator, so a fresh policy with the same seed and weights
            samples the same tokens.
        max_rows: upper bound on rows decoded together; larger requests are split into
            several passes (memory guard for big models; the tiny model never needs it).
        prefix_cache_tokens: token budget of the cross-call prefix KV cache (0 turns it
            off). Memory per token = layers x 2 x kv_heads x head_dim x 4 bytes: 1 KiB for
            the tiny reasoner, 56 KiB for a 1.5B Qwen2 in fp32.
        tokenizer: the model's tokenizer, needed only for ``sample(..., stop=...)``; when
            None it is loaded from the model's directory (``model.name_or_path``) on the
            first stop.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        eos_token_id: int,
        pad_token_id: int | None = None,
        seed: int = 0,
        max_rows: int = 4096,
        prefix_cache_tokens: int = 200_000,
        tokenizer: Any | None = None,
    ) -> None:
        self.model = model
        self.eos_token_id = int(eos_token_id)
        self.pad_token_id = int(pad_token_id if pad_token_id is not None else eos_token_id)
        self.device = next(model.parameters()).device
        self.max_rows = max_rows
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.prefix_cache_tokens = int(prefix_cache_tokens)
        self._prefix_cache: OrderedDict[tuple[int, ...], list[tuple[torch.Tensor, ...]]] = (
            OrderedDict()
        )
        self._cached_tokens = 0
        self._weights_version = self._version()
        self.tokenizer = tokenizer
        self._stops: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        #: running totals, read by benchmarks: ``prefill_tokens`` = prefix tokens actually run
        #: through the model, ``reused_tokens`` = prefix tokens taken from the prefix cache.
        self.counters = {
            "calls": 0, "prefill_tokens": 0, "reused_tokens": 0, "sampled_tokens": 0,
            "seconds": 0.0,
        }

    @classmethod
    def from_pretrained(cls, path: str | Path, seed: int = 0, **kwargs: Any) -> HFPolicy:
        """Load a checkpoint directory (model + tokenizer ids from its config)."""
        model = load_causal_lm(path)
        eos = eos_token_id(model.generation_config.eos_token_id, path)
        pad = model.generation_config.pad_token_id
        return cls(model, eos_token_id=eos, pad_token_id=pad, seed=seed, **kwargs)

    def seed(self, seed: int) -> None:
        """Reset the sampling generator."""
        self.generator.manual_seed(seed)

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Copy new weights into the model (strict: every parameter must be present)."""
        self.model.load_state_dict(dict(state_dict), strict=True)
        self.clear_prefix_cache()

    def clear_prefix_cache(self) -> None:
        """Forget every cached prefix (``search.run`` calls this when it finishes)."""
        self._prefix_cache.clear()
        self._cached_tokens = 0
        self._weights_version = self._version()

    @property
    def prefix_cache_size(self) -> tuple[int, int]:
        """(entries, tokens) held by the prefix cache."""
        return len(self._prefix_cache), self._cached_tokens

    def _version(self) -> int:
        # every in-place write to a parameter (optimizer step, load_state_dict) bumps it
        return sum(p._version for p in self.model.parameters())

    def _take_cached(self, prefix: Sequence[int]) -> list[tuple[torch.Tensor, ...]] | None:
        """The cached (keys, values) per layer of ``prefix[:-1]``, or None.

        Entries stay (most recently used last): sibling nodes with identical chunks share a
        key, and a low-entropy model samples such duplicates often.
        """
        key = tuple(prefix)
        entry = self._prefix_cache.get(key)
        if entry is not None:
            self._prefix_cache.move_to_end(key)
        return entry

    def _put_cached(self, key: tuple[int, ...], kv: list[tuple[torch.Tensor, ...]]) -> None:
        n = kv[0][0].shape[1]
        if n > self.prefix_cache_tokens:
            return
        old = self._prefix_cache.pop(key, None)
        if old is not None:
            self._cached_tokens -= old[0][0].shape[1]
        self._prefix_cache[key] = kv
        self._cached_tokens += n
        while self._cached_tokens > self.prefix_cache_tokens:
            _, dropped = self._prefix_cache.popitem(last=False)
            self._cached_tokens -= dropped[0][0].shape[1]

    @torch.no_grad()
    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n: int | Sequence[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        stop: str | None = None,
    ) -> list[list[Segment]]:
        """Sample ``n`` (or ``n[i]``) continuations of each prefix; see the module docstring."""
        counts = validate_request(prefixes, n, max_new_tokens, temperature, top_p, stop)
        tables = self._stop_tables(stop) if stop is not None else None
        out: list[list[Segment]] = [[] for _ in prefixes]
        # Split into passes of at most max_rows rows, keeping each prefix's samples together.
        start = 0
        while start < len(prefixes):
            end, rows = start, 0
            while end < len(prefixes) and (rows == 0 or rows + counts[end] <= self.max_rows):
                rows += counts[end]
                end += 1
            segs = self._sample_pass(
                prefixes[start:end], counts[start:end], max_new_tokens, temperature, top_p,
                tables,
            )
            for i, s in enumerate(segs):
                out[start + i] = s
            start = end
        return out

    def _stop_tables(self, stop: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(hit, next state), each [m, V], of :class:`StopTable` for ``stop`` (built once)."""
        if stop not in self._stops:
            if self.tokenizer is None:
                from transformers import AutoTokenizer

                source = getattr(self.model, "name_or_path", "")
                try:
                    self.tokenizer = AutoTokenizer.from_pretrained(str(source))
                except Exception as err:
                    raise ValueError(
                        f"HFPolicy needs the model's tokenizer to stop at {stop!r}: pass "
                        f"tokenizer=... (none found at model.name_or_path={source!r})"
                    ) from err
            table = StopTable.from_tokenizer(stop, self.tokenizer)
            vocab = max(table.size, int(self.model.get_output_embeddings().weight.shape[0]))
            hit = torch.zeros((len(stop), vocab), dtype=torch.bool)
            nxt = torch.zeros((len(stop), vocab), dtype=torch.long)
            for state, moves in enumerate(table.moves):
                for token, (h, s) in moves.items():
                    hit[state, token], nxt[state, token] = h, s
            self._stops[stop] = (hit.to(self.device), nxt.to(self.device))
        return self._stops[stop]

    def _sample_pass(
        self,
        prefixes: Sequence[Sequence[int]],
        counts: list[int],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[list[Segment]]:
        t0 = time.perf_counter()
        keep = [i for i, k in enumerate(counts) if k > 0]
        result: list[list[Segment]] = [[] for _ in prefixes]
        if not keep:
            return result
        dev = self.device
        if self.prefix_cache_tokens and self._version() != self._weights_version:
            self.clear_prefix_cache()  # weights changed in place: every entry is stale
        # 1. pre-fill the distinct prefixes once, left-padded; cached heads are not recomputed
        lens = [len(prefixes[i]) for i in keep]
        hits = [self._take_cached(prefixes[i]) if self.prefix_cache_tokens else None for i in keep]
        width = max(lens)
        block = max(n - (h[0][0].shape[1] if h else 0) for n, h in zip(lens, hits, strict=True))
        head = width - block  # cache columns before the block
        ids = torch.full((len(keep), block), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(keep), width), dtype=torch.long)
        for r, i in enumerate(keep):
            tail = list(prefixes[i][max(0, lens[r] - block) :])
            ids[r, block - len(tail) :] = torch.tensor(tail, dtype=torch.long)
            mask[r, width - lens[r] :] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        if head > 0:
            self._fill_cache(cache, hits, lens, head, block)
        logits = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions[:, head:],
            past_key_values=cache, use_cache=True,
        ).logits[:, -1, :].float()
        computed = sum(min(n, block) for n in lens)
        # 2. fan the prefix cache out to one row per sample
        row_of = torch.tensor(
            [r for r, i in enumerate(keep) for _ in range(counts[i])], dtype=torch.long, device=dev
        )
        cache.batch_select_indices(row_of)
        logits, mask = logits[row_of], mask[row_of]
        next_pos = positions[row_of, -1] + 1
        n_rows = row_of.numel()
        # 3. decode
        tokens = torch.zeros((n_rows, max_new_tokens), dtype=torch.long, device=dev)
        logps = torch.zeros((n_rows, max_new_tokens), dtype=torch.float32, device=dev)
        ents = torch.zeros((n_rows, max_new_tokens), dtype=torch.float32, device=dev)
        length = torch.full((n_rows,), max_new_tokens, dtype=torch.long, device=dev)
        done = torch.zeros(n_rows, dtype=torch.bool, device=dev)  # EOS or stop sampled
        eos = torch.zeros(n_rows, dtype=torch.bool, device=dev)  # EOS sampled: finished
        stop_state = torch.zeros(n_rows, dtype=torch.long, device=dev)
        steps = 0
        for t in range(max_new_tokens):
            logp_all = torch.log_softmax(logits, dim=-1)
            p_all = logp_all.exp()
            tok = self._draw(logits, logp_all, p_all, temperature, top_p)
            tokens[:, t] = tok
            logps[:, t] = logp_all.gather(-1, tok[:, None]).squeeze(-1)
            ents[:, t] = -(p_all * logp_all).sum(-1)
            steps = t + 1
            ends = tok == self.eos_token_id
            eos |= ends & ~done
            if stop is not None:
                ends = ends | stop[0][stop_state, tok]
                stop_state = stop[1][stop_state, tok]
            hit = ends & ~done
            length[hit] = t + 1
            done |= hit
            if bool(done.all()) or t + 1 == max_new_tokens:
                break
            mask = torch.cat([mask, torch.ones((n_rows, 1), dtype=mask.dtype, device=dev)], 1)
            logits = self.model(
                input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                past_key_values=cache, use_cache=True,
            ).logits[:, -1, :].float()
            next_pos = next_pos + 1
        length = length.clamp(max=steps)
        if self.prefix_cache_tokens and not bool(eos.all()):
            self._store_open(cache, prefixes, keep, counts, lens, width, tokens, length, eos)
        tokens, logps, ents = tokens.cpu(), logps.cpu(), ents.cpu()
        length, eos_list = length.cpu().tolist(), eos.cpu().tolist()
        r = 0
        for i in keep:
            for _ in range(counts[i]):
                m = length[r]
                result[i].append(Segment(
                    token_ids=tokens[r, :m].tolist(), logprobs=logps[r, :m].tolist(),
                    finished=bool(eos_list[r]), entropies=ents[r, :m].tolist(),
                ))
                r += 1
        self.counters["calls"] += 1
        self.counters["prefill_tokens"] += int(computed)
        self.counters["reused_tokens"] += int(sum(lens) - computed)
        self.counters["sampled_tokens"] += int(sum(length))
        self.counters["seconds"] += time.perf_counter() - t0
        return result

    def _fill_cache(
        self,
        cache: DynamicCache,
        hits: list[list[tuple[torch.Tensor, ...]] | None],
        lens: list[int],
        head: int,
        block: int,
    ) -> None:
        """Left-padded [P, H, head, D] keys/values per layer from the cached entries."""
        some = next(h for h in hits if h is not None)
        for layer, (k0, v0) in enumerate(some):
            keys = k0.new_zeros((len(hits), k0.shape[0], head, k0.shape[2]))
            values = v0.new_zeros((len(hits), v0.shape[0], head, v0.shape[2]))
            for r, hit in enumerate(hits):
                use = lens[r] - block  # this row's tokens before the block (all cached)
                if use > 0:
                    assert hit is not None
                    keys[r, :, head - use :] = hit[layer][0][:, :use]
                    values[r, :, head - use :] = hit[layer][1][:, :use]
            cache.update(keys, values, layer)

    def _store_open(
        self,
        cache: DynamicCache,
        prefixes: Sequence[Sequence[int]],
        keep: list[int],
        counts: list[int],
        lens: list[int],
        width: int,
        tokens: torch.Tensor,
        length: torch.Tensor,
        eos: torch.Tensor,
    ) -> None:
        """Cache prefix + sample (minus its last token) of every row that did not sample EOS.

        Row r's cache holds its prefix from column ``width - lens[r]`` and then every token it
        was fed; a row that stopped early kept decoding, so its entry ends at its own length.
        """
        open_rows = (~eos).nonzero().flatten().tolist()
        if not open_rows:
            return
        prefix_of = [r for r, i in enumerate(keep) for _ in range(counts[i])]
        # one gather per layer (a copy of the open rows only); entries are views of it
        index = torch.tensor(open_rows, dtype=torch.long, device=tokens.device)
        layers = [
            (layer.keys.index_select(0, index), layer.values.index_select(0, index))
            for layer in cache.layers
        ]
        sampled, sizes = tokens.cpu().tolist(), length.cpu().tolist()
        for j, row in enumerate(open_rows):
            r, m = prefix_of[row], sizes[row]
            start, end = width - lens[r], width + m - 1
            kv = [(k[j, :, start:end], v[j, :, start:end]) for k, v in layers]
            self._put_cached(tuple(prefixes[keep[r]]) + tuple(sampled[row][:m]), kv)

    def _draw(
        self,
        logits: torch.Tensor,
        logp: torch.Tensor,
        probs: torch.Tensor,
        temperature: float,
        top_p: float,
    ) -> torch.Tensor:
        """Sample one token per row: greedy at temperature 0, else temperature + nucleus.

        Inverse-CDF sampling (one uniform per row against the cumulative probabilities): the
        same distribution as ``torch.multinomial``, several times cheaper on the CPU for the
        small batches a search issues.
        """
        if temperature == 0:
            return logits.argmax(-1)
        if temperature != 1.0:
            probs = torch.softmax(logits / temperature, -1)
        if top_p < 1.0:
            sorted_p, order = probs.sort(-1, descending=True)
            # keep the smallest set whose mass reaches top_p (the first token always stays)
            drop = sorted_p.cumsum(-1) - sorted_p >= top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        cdf = probs.cumsum(-1)
        u = torch.rand(
            (probs.shape[0], 1), generator=self.generator, device=probs.device, dtype=cdf.dtype
        )
        tok = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(-1)
        # u * total < total, so tok < V unless rounding puts it on the edge; zero-probability
        # tokens are never drawn (their cdf step is empty)
        return tok.clamp(max=probs.shape[-1] - 1)


def load_causal_lm(path: str | Path) -> PreTrainedModel:
    """Load a checkpoint in fp32, eval mode, without transformers' per-tensor progress bar."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    return model.eval()


def sequence_logprobs(
    model: PreTrainedModel, prompt_ids: Sequence[int], response_ids: Sequence[int]
) -> torch.Tensor:
    """Log-probs of ``response_ids`` given ``prompt_ids`` from one fresh forward pass, shape [T]."""
    ids = torch.tensor([list(prompt_ids) + list(response_ids)], dtype=torch.long)
    ids = ids.to(next(model.parameters()).device)
    logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
    logp = torch.log_softmax(logits, -1)
    return logp.gather(-1, ids[0, len(prompt_ids) :, None]).squeeze(-1)
