"""Worker of tests/test_distributed.py: one rank of a 2-process (gloo) group on the CPU."""

from __future__ import annotations

import json
import pickle
from datetime import timedelta
from pathlib import Path

import torch


def _join(rank: int, world: int, init_file: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    # a rank that skips a collective fails the test in minutes instead of hanging it
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=300))


def _config_and_task(model_dir: str, cfg_dict: dict):
    from dslib import tiny
    from dslib.build import countdown_task
    from dslib.config import TrainConfig

    cfg = TrainConfig.from_dict(cfg_dict)
    return cfg, countdown_task(cfg, tiny.TinyReasoner.from_dir(model_dir))


def run(rank: int, world: int, init_file: str, model_dir: str, samples_file: str,
        out: str, cfg_dict: dict) -> None:
    import torch.distributed as dist

    from dslib.policy.hf import load_causal_lm
    from dslib.trainer import Trainer

    _join(rank, world, init_file)
    try:
        cfg, task = _config_and_task(model_dir, cfg_dict)
        # the same global batch as the single process: one update
        trainer = Trainer(cfg, Path(out) / "update", model=load_causal_lm(model_dir), task=task,
                          progress=False)
        samples = pickle.loads(Path(samples_file).read_bytes())
        trainer.learner.update(samples, seed=0)
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


def run_sharded(rank: int, world: int, init_file: str, model_dir: str, samples_file: str,
                out: str, cfg_dict: dict) -> None:
    """``shard_optimizer=True``: one update, its checkpoint, then a whole step via ``train``."""
    import torch.distributed as dist

    from dslib.policy.hf import load_causal_lm
    from dslib.trainer import Trainer

    _join(rank, world, init_file)
    try:
        cfg, task = _config_and_task(model_dir, cfg_dict)
        run_dir = Path(out) / "sharded"
        trainer = Trainer(cfg, run_dir, model=load_causal_lm(model_dir), task=task,
                          progress=False)
        assert trainer.learner.sharded
        samples = pickle.loads(Path(samples_file).read_bytes())
        trainer.learner.update(samples, seed=0)
        torch.save(trainer.model.state_dict(), Path(out) / f"sharded-update-{rank}.pt")
        # this rank's AdamW state: the parameters of its partition, by name
        names = {id(q): n for n, q in trainer.model.named_parameters()}
        local = trainer.learner.optimizer.optim.state
        torch.save({names[id(q)]: {k: v.clone() for k, v in s.items()} for q, s in local.items()},
                   Path(out) / f"sharded-state-{rank}.pt")
        # a checkpoint as train() writes it: every rank gathers, rank 0 saves
        trainer.learner.gather_state()
        if rank == 0:
            trainer.files.write_config(cfg.to_dict())
            trainer.save_checkpoint()
        dist.barrier()
        # every rank resumes it sharded: its own part of the moments, and the next update
        # continues exactly as the run that saved it
        back = Trainer.resume(run_dir, task=task, progress=False)
        assert back.learner.sharded
        mine = {names[id(q)] for q in local}
        again = {n for n, q in back.model.named_parameters()
                 if q in back.learner.optimizer.optim.state}
        assert again == mine, (again, mine)
        trainer.learner.update(samples, seed=1)
        back.learner.update(samples, seed=1)
        after = back.model.state_dict()
        assert all(torch.equal(v, after[k]) for k, v in trainer.model.state_dict().items())
        # a whole step through train(), which gathers on every rank before rank 0 saves
        step = Trainer(cfg, Path(out) / "sharded-e2e", model=load_causal_lm(model_dir),
                       task=task, progress=False)
        step.train(steps=1)
        torch.save(step.model.state_dict(), Path(out) / f"sharded-step-{rank}.pt")
    finally:
        dist.destroy_process_group()
