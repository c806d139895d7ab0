"""The trainer: config overrides, batching, one step in each mode, exact resume, CLI smoke."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from dslib import trainer as tr
from dslib.config import SearchConfig
from dslib.trainer import Sample, TrainConfig, Trainer, apply_overrides, countdown_task


def small_cfg(**kw) -> TrainConfig:
    base = TrainConfig(
        steps=2, problems_per_step=4, samples_per_problem=2, lr=1e-3, warmup_steps=1,
        weight_decay=0.0, mini_batches=2, eval_every=0, eval_problems=4, eval_samples=2,
        train_levels=(3,), eval_levels=(3,), max_new_tokens=32,
        search=SearchConfig.tiny(n_trajectories=2, width=2, max_depth=5),
    )
    return replace(base, **kw)


@pytest.fixture()
def task(quick_reasoner):
    return countdown_task(small_cfg(), quick_reasoner)


def fresh_trainer(quick_reasoner, task, run_dir, **kw) -> Trainer:
    return Trainer(small_cfg(**kw), run_dir, model=quick_reasoner.load_model(), task=task,
                   progress=False)


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- config


def test_overrides_parse_json_and_dotted_sections():
    cfg = apply_overrides(tr.preset("tiny"), ["lr=0.001", "search.width=3", "grpo.std_norm=true",
                                              "mode=grpo", "train_levels=[5]"])
    assert cfg.lr == 0.001 and cfg.search.width == 3 and cfg.grpo.std_norm is True
    assert cfg.mode == "grpo" and cfg.train_levels == (5,)
    with pytest.raises(ValueError, match="unknown field"):
        apply_overrides(cfg, ["search.widht=3"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(cfg, ["lr"])
    with pytest.raises(ValueError, match="mode"):
        apply_overrides(cfg, ["mode=ppo"])
    with pytest.raises(ValueError, match="unknown preset"):
        tr.preset("huge")


def test_tiny_build_changes_the_tiny_reasoner(quick_reasoner, monkeypatch):
    from dslib import cli, tiny

    cfg = apply_overrides(tr.preset("tiny"), ['tiny_build=["sft_mix=[0.45,0.35,0.2]"]'])
    assert cfg.tiny_build == ("sft_mix=[0.45,0.35,0.2]",)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    built = []
    monkeypatch.setattr(tiny, "build", lambda c, **kw: built.append(c) or quick_reasoner)
    tr.countdown_model_and_task(cfg)
    assert built[0].sft_mix == (0.45, 0.35, 0.2) != tiny.TinyConfig().sft_mix
    assert built[0] == replace(tiny.default_config(), sft_mix=(0.45, 0.35, 0.2))
    tr.countdown_model_and_task(tr.preset("tiny"))
    assert built[1] == tiny.default_config()  # no tiny_build: the default build
    args = cli.build_parser().parse_args(["train", "--tiny", "sft_steps=9", "--tiny", "seed=2"])
    assert cli._config(args).tiny_build == ("sft_steps=9", "seed=2")
    with pytest.raises(ValueError, match="tiny_build.*unknown TinyConfig field"):
        replace(tr.preset("tiny"), tiny_build=("sft_stepz=9",))
    with pytest.raises(ValueError, match="needs model='tiny'"):
        replace(tr.preset("tiny"), model="runs/x/checkpoint", tiny_build=("sft_steps=9",))


def test_config_round_trips_through_json():
    cfg = tr.preset("tiny")
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


# ----------------------------------------------------------------------------- batching


def test_collate_puts_token_fields_at_the_predicting_position():
    s = Sample(prompt_ids=[5, 6, 7], response_ids=[8, 9], advantages=[0.5, -1.0],
               step_ids=[0, 1], score=1.0, correct=True, behaviour_logprobs=[-0.1, -0.2],
               group=0)
    t = Sample(prompt_ids=[5], response_ids=[4, 3, 2], advantages=[1.0, 1.0, 1.0],
               step_ids=[0, 0, 0], score=1.0, correct=True, behaviour_logprobs=[-1, -2, -3],
               group=1)
    b = tr._collate([s, t], pad_id=0)
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
    t = fresh_trainer(quick_reasoner, task, tmp_path / mode, mode=mode, steps=1, eval_every=1)
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
    straight = fresh_trainer(quick_reasoner, task, tmp_path / "a", steps=4)
    straight.train()
    first = fresh_trainer(quick_reasoner, task, tmp_path / "b", steps=4)
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
    t = fresh_trainer(quick_reasoner, task, tmp_path / "k", steps=3)
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

    # the CLI builds its model from cfg.model: point it at the quick reasoner's directory
    args = ["train", "--preset", "tiny", "--runs", str(tmp_path), "--name", "smoke",
            "--set", f"model={quick_reasoner.path}", "--set", "steps=1",
            "--set", "problems_per_step=2", "--set", "eval_problems=2", "--set", "eval_every=1",
            "--set", "search.n_trajectories=2", "--set", "train_levels=[3]"]
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

    ref = fresh_trainer(quick_reasoner, task, tmp_path / "a", mode="grpo", samples_per_problem=4)
    samples, _ = ref.flat_rollouts(ref.problems_for(0))
    r = rnd.Random(0)  # advantages of our choosing: the accumulation arithmetic is compared
    samples = [replace(s, advantages=[r.uniform(-1, 1)] * len(s.response_ids)) for s in samples]
    micro = fresh_trainer(quick_reasoner, task, tmp_path / "b", mode="grpo",
                          samples_per_problem=4, micro_batch_tokens=64)
    chunks = micro._micro_batches(list(range(len(samples))),
                                  tr._collate(samples, micro.policy.pad_token_id))
    assert len(chunks) > 2 and sorted(sum(chunks, [])) == list(range(len(samples)))
    a, b = ref.update(samples, 0), micro.update(samples, 0)
    assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
    for (name, p), q in zip(ref.model.named_parameters(), micro.model.parameters(), strict=True):
        assert (p.grad - q.grad).abs().max().item() <= 1e-6, name
        assert (p - q).abs().max().item() <= 0.01 * ref.cfg.lr, name


def test_bf16_compute_over_fp32_master_weights(quick_reasoner, task, tmp_path):
    """At the paper's lr (1e-6) a bf16 parameter cannot take AdamW's update (8-bit mantissa);
    fp32 master weights with bf16 autocast compute (the paper preset) do."""
    import random as rnd

    kw = {"mode": "grpo", "samples_per_problem": 4, "lr": 1e-6, "warmup_steps": 1}
    ref = fresh_trainer(quick_reasoner, task, tmp_path / "ref", **kw)
    samples, _ = ref.flat_rollouts(ref.problems_for(0))
    r = rnd.Random(0)
    samples = [replace(s, advantages=[r.uniform(-1, 1)] * len(s.response_ids)) for s in samples]

    def changed_share(run: str, param_dtype: torch.dtype, **extra) -> tuple[float, Trainer, dict]:
        model = quick_reasoner.load_model().to(param_dtype)
        t = Trainer(small_cfg(**kw, **extra), tmp_path / run, model=model, task=task,
                    progress=False)
        before = weights(t.model)
        out = t.update(samples, 0)
        after = t.model.state_dict()
        moved = sum(int((after[k] != v).sum()) for k, v in before.items())
        return moved / sum(v.numel() for v in before.values()), t, out

    master, t_master, out_master = changed_share("master", torch.float32,
                                                 compute_dtype="bfloat16")
    pure, _, _ = changed_share("pure", torch.bfloat16, dtype="bfloat16")
    assert all(p.dtype == torch.float32 for p in t_master.model.parameters())
    assert master > 0.5 > 0.1 > pure, (master, pure)
    # the recomputation really ran in bf16: it differs from the fp32 sampler's log-probs
    assert out_master["behaviour_vs_recomputed_logp"] > 1e-4
    assert ref.update(samples, 0)["behaviour_vs_recomputed_logp"] < 1e-5
    assert out_master["logprob_s"] > 0


def test_drop_unsolved_groups_trains_on_solved_groups_only(quick_reasoner, task, tmp_path,
                                                           monkeypatch):
    t = fresh_trainer(quick_reasoner, task, tmp_path / "d", mode="grpo", samples_per_problem=4,
                      drop_unsolved_groups=True)
    seen = []
    monkeypatch.setattr(t, "update", lambda samples, step: seen.extend(samples) or {})
    row = t.train_step()
    solved = {s.group for s in t.last_samples if s.correct}
    assert seen == [s for s in t.last_samples if s.group in solved]
    assert row["unsolved_dropped"] == len(t.last_samples) - len(seen)
    assert row["unsolved_dropped"] > 0  # the under-trained model leaves groups unsolved
