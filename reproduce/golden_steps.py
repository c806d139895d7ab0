"""Golden runs: 3 training steps of the tiny preset, to check that a refactor changes nothing.

    python reproduce/golden_steps.py --model ~/.cache/dslib/tiny-<key> --out /tmp/before.json
    ... change the code ...
    python reproduce/golden_steps.py --model ~/.cache/dslib/tiny-<key> --out /tmp/after.json
    python reproduce/golden_steps.py --compare /tmp/before.json /tmp/after.json

Three runs, each 3 steps of the ``tiny`` preset at seed 0 with ONE torch thread (the thread
count changes float sums), from the model directory ``--model`` (pass the same directory on
both sides, so both train the same weights):

| run                 | what it covers                                                     |
|---------------------|--------------------------------------------------------------------|
| ``deepsearch``      | tree search + Tree-GRPO, evaluation at the start and after step 3 |
| ``grpo``            | flat samples + the outcome (DAPO) loss                             |
| ``deepsearch_buffer`` | the replay buffer (cached groups), the hygiene filter, rollout log |

The buffer of the third run is built deterministically: the reference solution (token ids +
EOS) of every other training problem, in the order of the training set, so some problems of
each step are served from the buffer and the others are searched.

For each run the JSON holds the metrics rows without wall-clock fields (keys ending in ``_s``),
a sha256 of the final weights (every parameter's name, shape, dtype and bytes, in name order)
and, for the third run, a sha256 of ``rollouts.jsonl``. ``--compare A B`` prints every
difference and exits 1 if there is any, 0 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

#: the runs: name -> config overrides on top of the common ones (kept identical across refactors)
RUNS: dict[str, list[str]] = {
    "deepsearch": ["rollout.strategy=tree"],
    "grpo": ["rollout.strategy=flat"],
    "deepsearch_buffer": ["rollout.strategy=tree", "filters=[\"hygiene\"]",
                          "run.log_rollouts=true"],
}
#: overrides every run shares: 3 steps, a small evaluation at the start and after step 3
COMMON = ["run.steps=3", "run.seed=0", "eval.every=3", "eval.problems=10", "eval.samples=2"]


def weights_sha256(model: Any) -> str:
    """sha256 over every parameter's name, shape, dtype and raw bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}\n".encode())
        h.update(t.reshape(-1).contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def strip_times(row: dict[str, Any]) -> dict[str, Any]:
    """A metrics row without its wall-clock fields."""
    return {k: v for k, v in row.items() if not k.endswith("_s")}


def build_buffer(model_dir: Path, train_levels: tuple[int, ...], path: Path) -> int:
    """The replay buffer of the third run: every other training problem's reference solution."""
    from dslib import tiny
    from dslib.replay import ReplayBuffer

    reasoner = tiny.TinyReasoner.from_dir(model_dir)
    tok = reasoner.load_tokenizer()
    items = [it for lv in train_levels for it in reasoner.prompted(lv, "rl")]
    buf = ReplayBuffer()
    for it in items[::2]:
        ids = tok(reasoner.solution_text(it.problem), add_special_tokens=False)["input_ids"]
        buf.add(it.id, list(ids) + [tok.eos_token_id], round=0)
    buf.save(path)
    return len(buf)


def run_one(name: str, model_dir: Path, work: Path) -> dict[str, Any]:
    """One golden run: its metrics rows (no wall times) and the final weights' sha256."""
    from dslib.config import override
    from dslib.presets import preset
    from dslib.trainer import Trainer

    overrides = [f"task.model={model_dir}", *COMMON, *RUNS[name]]
    if name == "deepsearch_buffer":
        base = override(preset("tiny"), overrides)
        buffer = work / "buffer.json"
        build_buffer(model_dir, base.task.levels, buffer)
        overrides.append(f"rollout.replay_buffer={buffer}")
    cfg = override(preset("tiny"), overrides)
    run_dir = work / name
    trainer = Trainer(cfg, run_dir, progress=False)
    trainer.train()
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    out: dict[str, Any] = {"rows": [strip_times(r) for r in rows],
                           "weights_sha256": weights_sha256(trainer.model)}
    rollouts = run_dir / "rollouts.jsonl"
    if rollouts.exists():
        out["rollouts_sha256"] = hashlib.sha256(rollouts.read_bytes()).hexdigest()
    return out


def record(model_dir: Path, out: Path, only: list[str] | None) -> None:
    import torch

    torch.set_num_threads(1)
    result: dict[str, Any] = {"model": str(model_dir), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        for name in only or list(RUNS):
            print(f"run {name} ...", flush=True)
            result["runs"][name] = run_one(name, model_dir, Path(tmp))
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Every place where two JSON values differ (floats compared exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                side = "second" if k not in a else "first"
                out.append(f"{where}/{k}: only in the {side} file")
            else:
                out.extend(differences(a[k], b[k], f"{where}/{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} entries vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def compare(a_path: Path, b_path: Path) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    diffs = differences(a["runs"], b["runs"])
    if a.get("model") != b.get("model"):
        print(f"note: different --model ({a.get('model')} vs {b.get('model')})")
    for d in diffs:
        print(d)
    runs = sorted(set(a["runs"]) & set(b["runs"]))
    print(f"{len(diffs)} difference(s) over runs {runs}")
    return 1 if diffs else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None,
                    help="model directory (default: the cached default tiny reasoner)")
    ap.add_argument("--out", type=Path, default=None, help="write the golden JSON here")
    ap.add_argument("--only", nargs="+", choices=list(RUNS), default=None)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), default=None)
    args = ap.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if args.out is None:
        ap.error("give --out FILE.json (record) or --compare A B")
    if args.model is None:
        from dslib import tiny

        model_dir = tiny.build(progress=False).path
    else:
        model_dir = Path(args.model).expanduser().resolve()
    record(model_dir, args.out, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
