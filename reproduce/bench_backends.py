"""Sampled tokens per second: the transformers backend vs the vLLM backend, side by side.

Same tiny reasoner, same requests, same process, same torch thread count:

| workload | requests                                                                         |
|----------|----------------------------------------------------------------------------------|
| flat     | ONE ``policy.sample(prompts, n=4, max_new_tokens=64)`` over 64 prompts           |
| tree     | ONE ``search.run`` over the first 16 of those problems, ``SearchConfig.tiny``    |

Each backend first runs a small untimed warm-up; each workload is then timed ``--repeats``
times per backend, the backends alternating run by run, and the fastest run is reported (the
machine is shared: the output prints the load average). Every run starts from the same seed
and a cold prefix cache.

``tokens/s`` = sampled tokens (EOS included) / wall seconds of the call; the two backends
draw different random numbers, so their token counts differ a little. ``prefill`` / ``reused``
are the backends' ``counters``: prefix tokens run through the model / served from the prefix
cache (``HFPolicy`` counts a prefix once per request and keeps a node's KV across calls;
vLLM counts per sample and reuses full 32-token KV blocks, see ``dslib/policy/vllm.py``).

Once the in-process vLLM engine has started, ``torch.set_num_threads`` is a no-op for the rest
of the process (``reference/vllm-on-cpu.md``), so the thread count is set once, before either
backend is built, and applies to both.

Runs from the vLLM venv only (``make venv-vllm``)::

    OMP_NUM_THREADS=1 .venv-vllm/bin/python reproduce/bench_backends.py
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from dslib import search, tiny
from dslib.config import SearchConfig
from dslib.policy.hf import HFPolicy


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=64, help="flat workload: prompts")
    ap.add_argument("--n", type=int, default=4, help="flat workload: samples per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=64, help="flat workload: length cap")
    ap.add_argument("--problems", type=int, default=16, help="tree workload: trees")
    ap.add_argument("--level", type=int, default=4, help="countdown level (numbers per problem)")
    ap.add_argument("--split", default="rl", help="problem split: sft | rl | test")
    ap.add_argument("--seed", type=int, default=0, help="seeds both policies and the search")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per workload (best kept)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, both backends")
    ap.add_argument("--dtype", default="float32", help="vLLM engine dtype")
    ap.add_argument("--kv-mib", type=int, default=256, help="vLLM CPU KV cache size (MiB)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    tiny.add_build_option(ap)
    return ap.parse_args(argv)


def workloads(
    policy: Any, args: argparse.Namespace, items: list[Any], verifier: Any
) -> dict[str, Callable[[], None]]:
    """The two timed workloads on one policy; each starts from the same seed and a cold
    prefix cache, so every repeat does the same work."""
    prompts = [list(it.prompt_ids) for it in items[: args.prompts]]
    trees = items[: args.problems]
    cfg = SearchConfig.tiny(seed=args.seed)

    def flat() -> None:
        policy.seed(args.seed)
        policy.clear_prefix_cache()
        policy.sample(prompts, n=args.n, max_new_tokens=args.max_new_tokens)

    def tree() -> None:
        policy.seed(args.seed)
        search.run(trees, policy, verifier, cfg)  # clears the prefix cache itself

    # warm-up, untimed: first-call allocations, vLLM's first scheduling steps
    policy.sample(prompts[:4], n=2, max_new_tokens=8)
    search.run(trees[:2], policy, verifier, cfg)
    return {"flat": flat, "tree": tree}


def timed(policy: Any, run: Callable[[], None]) -> dict[str, float]:
    """Wall seconds of one run and the policy's counter deltas."""
    before = dict(policy.counters)
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    row = {"wall_s": wall}
    row.update({k: float(policy.counters[k] - before[k]) for k in before})
    row["tokens_per_s"] = row["sampled_tokens"] / wall
    return row


def bench(
    policies: dict[str, Any], args: argparse.Namespace, items: list[Any], verifier: Any
) -> dict[str, dict[str, dict[str, float]]]:
    """Best of ``--repeats`` per backend and workload; the backends alternate run by run, so
    a change in the shared machine's load hits both alike."""
    runs = {name: workloads(pol, args, items, verifier) for name, pol in policies.items()}
    best: dict[str, dict[str, dict[str, float]]] = {name: {} for name in policies}
    for work in ("flat", "tree"):
        for _ in range(args.repeats):
            for name, pol in policies.items():
                row = timed(pol, runs[name][work])
                if work not in best[name] or row["wall_s"] < best[name][work]["wall_s"]:
                    best[name][work] = row
    return best


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    command = "python reproduce/bench_backends.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    print(f"$ {command.strip()}\n", flush=True)
    torch.set_num_threads(args.threads)  # before vLLM starts (it disables the setter)
    reasoner = tiny.build(tiny.config_or_exit(args.tiny), progress=False)
    count = max(args.prompts, args.problems)
    items = reasoner.prompted(args.level, args.split, count)
    if len(items) < count:
        raise SystemExit(f"only {len(items)} level-{args.level} problems in {args.split!r}")
    verifier = reasoner.verifier()

    hf = HFPolicy.from_pretrained(reasoner.path, seed=args.seed)
    from dslib.policy.vllm import VLLMPolicy  # lazy: the rest of the kit never needs vLLM

    t0 = time.perf_counter()
    vl = VLLMPolicy.from_pretrained(
        reasoner.path, dtype=args.dtype, seed=args.seed, kv_cache_memory_bytes=args.kv_mib << 20
    )
    start_s = time.perf_counter() - t0
    results = bench({"hf": hf, "vllm": vl}, args, items, verifier)
    vl.close()

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"tiny reasoner {reasoner.path.name}, torch threads {args.threads}, "
        f"vLLM {args.dtype} (engine start {start_s:.1f} s incl. import), best of "
        f"{args.repeats}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    labels = {
        "flat": f"flat: {args.prompts} prompts x n={args.n} x {args.max_new_tokens} tokens",
        "tree": f"tree: search.run, {args.problems} problems (level {args.level}, tiny preset)",
    }
    print("| workload | backend | sampled tokens | wall (s) | tokens/s | prefill | reused |")
    print("|---|---|---|---|---|---|---|")
    for work, label in labels.items():
        for backend, name in (("hf", "HFPolicy"), ("vllm", "VLLMPolicy")):
            r = results[backend][work]
            print(
                f"| {label} | {name} | {r['sampled_tokens']:.0f} | {r['wall_s']:.2f} | "
                f"{r['tokens_per_s']:.0f} | {r['prefill_tokens']:.0f} | "
                f"{r['reused_tokens']:.0f} |"
            )
    print()
    for work in labels:
        ratio = results["vllm"][work]["tokens_per_s"] / results["hf"][work]["tokens_per_s"]
        print(f"{work}: vLLM / HF tokens/s = {ratio:.2f}x")
    out = {
        "command": command, "args": vars(args), "model": str(reasoner.path),
        "vllm_start_s": start_s, "load_average": list(load), "results": results,
    }
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
        print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
