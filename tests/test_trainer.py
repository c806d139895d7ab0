"""The trainer: batching, one step in each mode, exact resume, CLI smoke."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from dslib import learner as ln
from dslib.build import countdown_task
from dslib.config import SearchConfig, TrainConfig, update
from dslib.rollouts import Sample, flatten
from dslib.trainer import Trainer


def small_cfg(changes: dict | None = None) -> TrainConfig:
    """A small countdown run with ``changes`` (dotted paths: ``{"optim.lr": 1e-3}``)."""
    base = update(TrainConfig(), {
        "run.steps": 2, "run.problems_per_step": 4, "rollout.samples_per_problem": 2,
        "optim.lr": 1e-3, "optim.warmup_steps": 1, "optim.weight_decay": 0.0,
        "optim.mini_batches": 2, "eval.every": 0, "eval.problems": 4, "eval.samples": 2,
        "task.levels": (3,), "eval.levels": (3,), "rollout.max_new_tokens": 32,
        "rollout.search": SearchConfig.tiny(n_trajectories=2, width=2, max_depth=5),
    })
    return update(base, changes or {})


@pytest.fixture()
def task(quick_reasoner):
    return countdown_task(small_cfg(), quick_reasoner)


def fresh_trainer(quick_reasoner, task, run_dir, changes: dict | None = None) -> Trainer:
    return Trainer(small_cfg(changes), run_dir, model=quick_reasoner.load_model(), task=task,
                   progress=False)


GRPO = {"rollout.strategy": "flat"}


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- batching


def test_collate_puts_token_fields_at_the_predicting_position():
    s = Sample(prompt_ids=[5, 6, 7], response_ids=[8, 9], advantages=[0.5, -1.0],
               step_ids=[0, 1], score=1.0, correct=True, behaviour_logprobs=[-0.1, -0.2])
    t = Sample(prompt_ids=[5], response_ids=[4, 3, 2], advantages=[1.0, 1.0, 1.0],
               step_ids=[0, 0, 0], score=1.0, correct=True, behaviour_logprobs=[-1, -2, -3])
    b = ln.collate([s, t], pad_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 7, 8, 9], [5, 4, 3, 2, 0]]
    # position t predicts token t+1: the response of s starts at index 3 -> predicted from 2
    assert b["resp_mask"].tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]
    assert b["adv"].tolist() == [[0, 0, 0.5, -1.0], [1, 1, 1, 0]]
    assert b["step_ids"].tolist() == [[-1, -1, 0, 1], [0, 0, 0, -1]]


def test_problems_cycle_through_a_seeded_shuffle(quick_reasoner, task, tmp_path):
    t = fresh_trainer(quick_reasoner, task, tmp_path / "r")
    n = len(task.train_items)
    per_epoch = [it.id for s in range(n // 4) for it in t.problems_for(s)]
    assert len(set(per_epoch)) == len(per_epoch)  # no repeats within an epoch
    assert [it.id for it in t.problems_for(0)] == [it.id for it in t.problems_for(0)]


# ----------------------------------------------------------------------------- steps


@pytest.mark.parametrize("mode", ["deepsearch", "grpo"])
def test_one_step_changes_the_weights_and_logs_metrics(quick_reasoner, task, tmp_path, mode):
    strategy = {"deepsearch": "tree", "grpo": "flat"}[mode]
    t = fresh_trainer(quick_reasoner, task, tmp_path / mode,
                      {"rollout.strategy": strategy, "run.steps": 1, "eval.every": 1})
    assert t.cfg.mode == mode
    before = weights(t.model)
    history = t.train()
    after = weights(t.model)
    changed = any((before[k] - after[k]).abs().max() > 0 for k in before)
    rows = [json.loads(x) for x in (tmp_path / mode / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in rows]
    assert kinds == ["eval", "train", "eval"] and rows == history
    train = rows[1]
    for key in ("reward", "accuracy", "zero_signal_share", "entropy", "response_length",
                "clip_frac_low", "grad_norm", "cumulative_sampled_tokens", "wall_s", "loss"):
        assert key in train, key
    assert -1.0 <= train["reward"] <= 1.0 and train["sequences"] > 0
    # the recomputed old log-probs are the behaviour log-probs (same weights, fp32)
    assert train["behaviour_vs_recomputed_logp"] < 1e-4
    if mode == "deepsearch":
        assert train["search_iterations"] > 0
        assert changed  # node q-values differ from the terminal mean: always some signal
    else:  # flat groups that are all wrong (or all right) carry no gradient at all
        assert changed == (train["zero_signal_share"] < 1.0)
    assert (tmp_path / mode / "checkpoint" / "model.safetensors").exists()
    assert (tmp_path / mode / "curves.png").exists()


def test_resume_continues_exactly(quick_reasoner, task, tmp_path):
    straight = fresh_trainer(quick_reasoner, task, tmp_path / "a", {"run.steps": 4})
    straight.train()
    first = fresh_trainer(quick_reasoner, task, tmp_path / "b", {"run.steps": 4})
    first.train(steps=2)
    assert first.step == 2
    resumed = Trainer.resume(tmp_path / "b", task=task, progress=False)
    assert resumed.step == 2
    resumed.train()
    a, b = weights(straight.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows_a = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows_a] == [r["reward"] for r in rows_b]


def test_resume_drops_metrics_of_a_step_lost_in_a_kill(quick_reasoner, task, tmp_path):
    t = fresh_trainer(quick_reasoner, task, tmp_path / "k", {"run.steps": 3})
    t.train(steps=1)
    with open(tmp_path / "k" / "metrics.jsonl", "a") as f:  # step 2 logged, then killed
        f.write(json.dumps({"kind": "train", "step": 2, "reward": 0.0}) + "\n")
    resumed = Trainer.resume(tmp_path / "k", task=task, progress=False)
    assert [r["step"] for r in resumed.history] == [1]


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer.resume(tmp_path)


# ----------------------------------------------------------------------------- CLI


def test_cli_train_then_compare(quick_reasoner, tmp_path, monkeypatch, capsys):
    from dslib import cli

    # the CLI builds its model from task.model: point it at the quick reasoner's directory
    args = ["train", "--preset", "tiny", "--runs", str(tmp_path), "--name", "smoke",
            "--set", f"task.model={quick_reasoner.path}", "--set", "run.steps=1",
            "--set", "run.problems_per_step=2", "--set", "eval.problems=2",
            "--set", "eval.every=1", "--set", "rollout.search.n_trajectories=2",
            "--set", "task.levels=[3]"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "pass@1 before" in out and "smoke" in out
    with pytest.raises(SystemExit, match="already holds a run"):
        cli.main(args)
    assert cli.main(["compare", str(tmp_path / "smoke"), "--plot", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").exists()
    with pytest.raises(SystemExit, match="unknown preset"):
        cli.main(["train", "--preset", "huge", "--runs", str(tmp_path)])
    with pytest.raises(SystemExit, match="no checkpoint"):
        cli.main(["train", "--resume", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit, match="no metrics"):
        cli.main(["compare", str(tmp_path / "nowhere")])


def test_micro_batches_accumulate_to_the_same_update(quick_reasoner, task, tmp_path):
    import random as rnd

    flat4 = {**GRPO, "rollout.samples_per_problem": 4}
    ref = fresh_trainer(quick_reasoner, task, tmp_path / "a", flat4)
    samples = flatten(ref.rollouts(ref.problems_for(0), 0))
    r = rnd.Random(0)  # advantages of our choosing: the accumulation arithmetic is compared
    samples = [replace(s, advantages=[r.uniform(-1, 1)] * len(s.response_ids)) for s in samples]
    micro = fresh_trainer(quick_reasoner, task, tmp_path / "b",
                          {**flat4, "optim.micro_batch_tokens": 64})
    chunks = micro.learner.micro_batches(list(range(len(samples))),
                                         ln.collate(samples, micro.policy.pad_token_id))
    assert len(chunks) > 2 and sorted(sum(chunks, [])) == list(range(len(samples)))
    a, b = ref.learner.update(samples, seed=0), micro.learner.update(samples, seed=0)
    assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
    for (name, p), q in zip(ref.model.named_parameters(), micro.model.parameters(), strict=True):
        assert (p.grad - q.grad).abs().max().item() <= 1e-6, name
        assert (p - q).abs().max().item() <= 0.01 * ref.cfg.optim.lr, name


def test_bf16_compute_over_fp32_master_weights(quick_reasoner, task, tmp_path):
    """At the paper's lr (1e-6) a bf16 parameter cannot take AdamW's update (8-bit mantissa);
    fp32 master weights with bf16 autocast compute (the paper preset) do."""
    import random as rnd

    kw = {**GRPO, "rollout.samples_per_problem": 4, "optim.lr": 1e-6, "optim.warmup_steps": 1}
    ref = fresh_trainer(quick_reasoner, task, tmp_path / "ref", kw)
    samples = flatten(ref.rollouts(ref.problems_for(0), 0))
    r = rnd.Random(0)
    samples = [replace(s, advantages=[r.uniform(-1, 1)] * len(s.response_ids)) for s in samples]

    def changed_share(run: str, param_dtype: torch.dtype, extra: dict
                      ) -> tuple[float, Trainer, dict]:
        model = quick_reasoner.load_model().to(param_dtype)
        t = Trainer(small_cfg({**kw, **extra}), tmp_path / run, model=model, task=task,
                    progress=False)
        before = weights(t.model)
        out = t.learner.update(samples, seed=0)
        after = t.model.state_dict()
        moved = sum(int((after[k] != v).sum()) for k, v in before.items())
        return moved / sum(v.numel() for v in before.values()), t, out

    master, t_master, out_master = changed_share("master", torch.float32,
                                                 {"optim.compute_dtype": "bfloat16"})
    pure, _, _ = changed_share("pure", torch.bfloat16, {"optim.dtype": "bfloat16"})
    assert all(p.dtype == torch.float32 for p in t_master.model.parameters())
    assert master > 0.5 > 0.1 > pure, (master, pure)
    # the recomputation really ran in bf16: it differs from the fp32 sampler's log-probs
    assert out_master["behaviour_vs_recomputed_logp"] > 1e-4
    assert ref.learner.update(samples, seed=0)["behaviour_vs_recomputed_logp"] < 1e-5
    assert out_master["logprob_s"] > 0


def test_drop_unsolved_groups_trains_on_solved_groups_only(quick_reasoner, task, tmp_path,
                                                           monkeypatch):
    t = fresh_trainer(quick_reasoner, task, tmp_path / "d",
                      {**GRPO, "rollout.samples_per_problem": 4, "filters": ("drop_unsolved",)})
    seen = []
    monkeypatch.setattr(t.learner, "update", lambda samples, seed: seen.extend(samples) or {})
    row = t.train_step()
    solved = [s for g in t.last_groups if any(x.correct for x in g.samples) for s in g.samples]
    assert seen == solved
    assert row["unsolved_dropped"] == len(flatten(t.last_groups)) - len(seen)
    assert row["unsolved_dropped"] > 0  # the under-trained model leaves groups unsolved
    assert row["sequences"] == len(flatten(t.last_groups))  # metrics: every rollout
