"""Two CPU processes (gloo) give the weights of one process with the same global batch."""

from __future__ import annotations

import dataclasses
import json
import pickle
import random

import torch
import torch.multiprocessing as mp

from dslib import distributed
from dslib.build import countdown_task
from dslib.config import SearchConfig, TrainConfig, update
from dslib.rollouts import flatten
from dslib.trainer import Trainer


def cfg_for_test() -> TrainConfig:
    return update(TrainConfig(), {
        "rollout.strategy": "flat", "run.steps": 1, "run.problems_per_step": 4,
        "rollout.samples_per_problem": 4, "optim.lr": 1e-3, "optim.warmup_steps": 1,
        "optim.weight_decay": 0.1, "optim.mini_batches": 2, "eval.every": 0,
        "task.levels": (3,), "eval.levels": (3,), "rollout.max_new_tokens": 24,
        "rollout.search": SearchConfig.tiny(n_trajectories=2)})


def test_shard_and_owned_cover_everything_once():
    items = list(range(11))
    parts = [distributed.shard(items, distributed.Dist(r, 3)) for r in range(3)]
    assert sorted(x for p in parts for x in p) == items
    owned = [distributed.owned(range(11), distributed.Dist(r, 3)) for r in range(3)]
    assert sorted(x for p in owned for x in p) == items
    assert distributed.gather("x", distributed.Dist()) == ["x"]


def single_update(quick_reasoner, tmp_path, cfg: TrainConfig) -> Trainer:
    """One process's update of the global batch (written to ``samples.pkl`` for the ranks)."""
    task = countdown_task(cfg, quick_reasoner)
    single = Trainer(cfg, tmp_path / "single", model=quick_reasoner.load_model(), task=task,
                     progress=False)
    samples = flatten(single.rollouts(single.problems_for(0), 0))
    # advantages of our choosing: the update's arithmetic is what is compared, and the
    # under-trained model would give all-zero (silent) groups
    rng = random.Random(0)
    samples = [dataclasses.replace(s, advantages=[rng.uniform(-1, 1)] * len(s.response_ids))
               for s in samples]
    (tmp_path / "samples.pkl").write_bytes(pickle.dumps(samples))
    single.learner.update(samples, seed=0)
    return single


def test_two_processes_match_one(quick_reasoner, tmp_path):
    cfg = cfg_for_test()
    single = single_update(quick_reasoner, tmp_path, cfg)
    reference = single.model.state_dict()

    mp.spawn(_run, args=(2, str(tmp_path / "init"), str(quick_reasoner.path),
                         str(tmp_path / "samples.pkl"), str(tmp_path), cfg.to_dict()),
             nprocs=2, join=True)
    # the gradients of the last mini-batch, summed over ranks, are the single process's
    grads = [torch.load(tmp_path / f"grads-{r}.pt") for r in range(2)]
    for name, q in single.model.named_parameters():
        assert (grads[0][name] - q.grad).abs().max().item() <= 1e-6, name
    # replicas stay identical; the weights agree with one process up to float summation
    # order, which AdamW's first step (g / |g|) magnifies: within 1 % of the step size lr
    ranks = [torch.load(tmp_path / f"update-{r}.pt") for r in range(2)]
    for key, ref in reference.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key
        assert (ranks[0][key] - ref).abs().max().item() <= 0.01 * cfg.optim.lr, key
    assert any(not torch.equal(ref, quick_reasoner.load_model().state_dict()[k])
               for k, ref in reference.items())  # the update did move the weights

    steps = [torch.load(tmp_path / f"step-{r}.pt") for r in range(2)]
    assert all(torch.equal(steps[0][k], steps[1][k]) for k in steps[0])
    hist = [json.loads((tmp_path / f"history-{r}.json").read_text()) for r in range(2)]
    assert hist[0][-1]["sequences"] == (cfg.run.problems_per_step
                                        * cfg.rollout.samples_per_problem)
    assert hist[0][-1]["sampled_tokens"] == hist[1][-1]["sampled_tokens"]  # global counts
    rows = (tmp_path / "e2e" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1  # rank 0 alone writes


def _run(rank, *args):
    from dist_worker import run

    run(rank, *args)


def test_sharded_optimizer_matches_one_process_and_resumes(quick_reasoner, tmp_path):
    # a 4-update warm-up: the scheduler's lr (1/4, then 2/4 of lr) must reach the shards
    cfg = update(cfg_for_test(), {"optim.shard_optimizer": True, "optim.warmup_steps": 4})
    single = single_update(quick_reasoner, tmp_path, cfg)
    assert not single.learner.sharded  # ignored with one process
    reference = single.model.state_dict()

    mp.spawn(_run_sharded, args=(2, str(tmp_path / "init"), str(quick_reasoner.path),
                                 str(tmp_path / "samples.pkl"), str(tmp_path), cfg.to_dict()),
             nprocs=2, join=True)
    # the same weights as one process (the tolerance of test_two_processes_match_one)
    ranks = [torch.load(tmp_path / f"sharded-update-{r}.pt") for r in range(2)]
    for key, ref in reference.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key
        assert (ranks[0][key] - ref).abs().max().item() <= 0.01 * cfg.optim.lr, key
    steps = [torch.load(tmp_path / f"sharded-step-{r}.pt") for r in range(2)]
    assert all(torch.equal(steps[0][k], steps[1][k]) for k in steps[0])
    assert (tmp_path / "sharded-e2e" / "checkpoint" / "optimizer.pt").exists()

    # each rank holds AdamW's moments of its partition only; together, of every parameter
    params = dict(single.model.named_parameters())
    states = [torch.load(tmp_path / f"sharded-state-{r}.pt") for r in range(2)]
    assert all(0 < len(s) < len(params) for s in states)
    assert not set(states[0]) & set(states[1])
    assert set(states[0]) | set(states[1]) == set(params)
    held = [sum(params[n].numel() for n in s) for s in states]
    assert max(held) < sum(q.numel() for q in params.values())

    # the checkpoint holds the full state: a single process resumes it with plain AdamW
    resumed = Trainer.resume(tmp_path / "sharded", task=single.task, progress=False)
    assert not resumed.learner.sharded
    owner = {n: s[n] for s in states for n in s}
    for name, q in resumed.model.named_parameters():
        state = resumed.learner.optimizer.state[q]
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(state[key], owner[name][key]), (name, key)
        assert torch.equal(q, ranks[0][name]), name
    opt, ref = resumed.learner.optimizer, single.learner.optimizer
    assert int(opt.state[next(resumed.model.parameters())]["step"]) == 2
    assert resumed.learner.lr == single.learner.lr
    assert opt.param_groups[0]["lr"] == ref.param_groups[0]["lr"]


def _run_sharded(rank, *args):
    from dist_worker import run_sharded

    run_sharded(rank, *args)
