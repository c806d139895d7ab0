"""The trainer on the vLLM backend: every update reaches the engine (``backend="vllm"``)."""

from __future__ import annotations

import pytest
import torch
from logprob_check import max_logprob_error

from dslib.config import SearchConfig, TrainConfig, update
from dslib.policy.vllm import VLLMPolicy
from dslib.trainer import Trainer


@pytest.mark.parametrize("mode", ["grpo", "deepsearch"])
def test_trainer_samples_from_the_weights_it_trains(tiny_reasoner, tmp_path, mode):
    torch.set_num_threads(1)
    cfg = update(TrainConfig(), {
        "rollout.strategy": {"grpo": "flat", "deepsearch": "tree"}[mode], "run.backend": "vllm",
        "run.steps": 2, "run.problems_per_step": 8, "rollout.samples_per_problem": 4,
        "optim.lr": 1e-3, "optim.warmup_steps": 1, "optim.weight_decay": 0.0,
        "optim.mini_batches": 1, "eval.every": 0, "task.levels": (3,), "eval.levels": (3,),
        "rollout.max_new_tokens": 24,
        "rollout.search": SearchConfig.tiny(n_trajectories=2, width=2, max_depth=3)})
    trainer = Trainer(cfg, tmp_path, progress=False)
    try:
        assert isinstance(trainer.policy, VLLMPolicy)
        base = tiny_reasoner.load_model()
        trainer.train()
        assert any(not torch.equal(a, b) for a, b in
                   zip(base.state_dict().values(), trainer.model.state_dict().values()))
        prompts = [list(it.prompt_ids) for it in trainer.task.train_items[:3]]
        out = trainer.policy.sample(prompts, n=2, max_new_tokens=16)
        assert max_logprob_error(trainer.model, prompts, out) <= 1e-4   # the trained weights...
        assert max_logprob_error(base, prompts, out) > 1e-3             # ...not the starting ones
    finally:
        trainer.policy.close()
