"""Worker of tests/test_distributed.py: one rank of a 2-process (gloo) group on the CPU."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch


def run(rank: int, world: int, init_file: str, model_dir: str, samples_file: str,
        out: str, cfg_dict: dict) -> None:
    import torch.distributed as dist

    from dslib import tiny
    from dslib.policy.hf import load_causal_lm
    from dslib.trainer import TrainConfig, Trainer, countdown_task

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        cfg = TrainConfig.from_dict(cfg_dict)
        task = countdown_task(cfg, tiny.TinyReasoner.from_dir(model_dir))
        # the same global batch as the single process: one update
        trainer = Trainer(cfg, Path(out) / "update", model=load_causal_lm(model_dir), task=task,
                          progress=False)
        samples = pickle.loads(Path(samples_file).read_bytes())
        trainer.update(samples, step=0)
        torch.save(trainer.model.state_dict(), Path(out) / f"update-{rank}.pt")
        torch.save({n: q.grad for n, q in trainer.model.named_parameters()},
                   Path(out) / f"grads-{rank}.pt")  # the last mini-batch's summed gradients
        # a whole step: each rank samples its shard of the problems, then the shared update
        step = Trainer(cfg, Path(out) / "e2e", model=load_causal_lm(model_dir), task=task,
                       progress=False)
        history = step.train(steps=1)
        torch.save(step.model.state_dict(), Path(out) / f"step-{rank}.pt")
        (Path(out) / f"history-{rank}.json").write_text(json.dumps(history))
    finally:
        dist.destroy_process_group()
