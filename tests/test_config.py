"""Configs: the one override parser, type and range checks at parse time, presets, docs."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dslib import cli, config, presets, rollouts, tiny, trainer
from dslib.config import (
    RoundsConfig,
    SearchConfig,
    TrainConfig,
    TreeGRPOConfig,
    override,
    update,
)

ROOT = Path(__file__).resolve().parents[1]


def test_overrides_parse_json_and_dotted_sections():
    cfg = override(presets.preset("tiny"), [
        "optim.lr=0.001", "rollout.search.width=3", "optim.grpo.std_norm=true",
        "rollout.strategy=flat", "task.levels=[5]", "filters=hygiene"])
    assert cfg.optim.lr == 0.001 and cfg.rollout.search.width == 3
    assert cfg.optim.grpo.std_norm is True and cfg.mode == "grpo"
    assert cfg.task.levels == (5,) and cfg.filters == ("hygiene",)
    assert presets.preset("tiny").optim.lr == 5e-5  # the preset itself is untouched
    with pytest.raises(ValueError, match="unknown field 'rollout.search.widht'.*search.width"):
        override(cfg, ["rollout.search.widht=3"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        override(cfg, ["optim.lr"])
    with pytest.raises(ValueError, match="strategy must be one of"):
        override(cfg, ["rollout.strategy=ppo"])
    with pytest.raises(ValueError, match="unknown preset"):
        presets.preset("huge")
    # text fields keep the text typed, whatever JSON would make of it
    assert override(cfg, ["task.model=123"]).task.model == "123"


# the faults a reliability tester reported: each now fails at parse time, naming the field,
# the value and what is allowed (before: a traceback, a late crash, or a silent misuse)
FAULTS = [
    ("optim.lr=abc", r"'optim.lr=abc': OptimConfig.lr must be a finite number, got 'abc'"),
    ("optim.lr=Infinity", r"OptimConfig.lr must be a finite number, got inf"),
    ("lr=abc", r"unknown field 'lr' of TrainConfig; did you mean optim.lr\?"),
    ("run.steps=2.7", r"RunConfig.steps must be an integer, got 2.7"),
    ("run.steps=abc", r"RunConfig.steps must be an integer, got 'abc'"),
    ("optim.grpo=5", r"optim.grpo is a section, not a value: set one of its fields, "
                     r"optim.grpo.FIELD=VALUE \(reward, eps_q"),
    ("grpo=5", r"unknown field 'grpo' of TrainConfig; did you mean optim.grpo\?"),
    ("run.checkpoint_every=0", r"RunConfig.checkpoint_every must be >= 1, got 0"),
    ("eval.every=-1", r"EvalConfig.every must be >= 0 \(0 = never\), got -1"),
    ("rollout.temperature=-1", r"RolloutConfig.temperature must be >= 0 \(0 = greedy\), got -1"),
    ("rollout.search.width=2.5", r"SearchConfig.width must be an integer, got 2.5"),
    ("optim.adam_betas=[0.9]", r"OptimConfig.adam_betas must be a list of 2"),
    ("run.device=gpu", r'RunConfig.device must be "cpu", "cuda", "cuda:N" or "mps"'),
    ("filters=[\"dedupe\"]", r"TrainConfig.filters must be distinct names from \('hygiene'"),
    ("optim.micro_batch_tokens=0", r"OptimConfig.micro_batch_tokens must be >= 1 or None"),
    ("optim.grpo.clip_low=1.5", r"TreeGRPOConfig.clip_low must be in \[0, 1\), got 1.5"),
    ("run.dry_run=yes", r"RunConfig.dry_run must be true or false, got 'yes'"),
    ("task.verify=lines", r"TaskConfig.verify must be one of \('box', 'steps'\), got 'lines'"),
    ("rollout.adaptive.chunk=0", r"AdaptiveConfig.chunk must be >= 1, got 0"),
    ("rollout.adaptive.max_samples=2", r"AdaptiveConfig.max_samples must be >= chunk \(4\): "
                                       r"raise max_samples or lower chunk, got 2"),
    ("rollout.adaptive.budget_tokens=0", r"AdaptiveConfig.budget_tokens must be >= 1 or None"),
]


@pytest.mark.parametrize("item, message", FAULTS)
def test_bad_values_fail_at_parse_time_naming_field_value_and_range(item, message):
    with pytest.raises(ValueError, match=message):
        override(presets.preset("tiny"), [item])
    with pytest.raises(SystemExit, match=message):  # the CLI: a clear exit, no traceback
        cli.main(["train", "--preset", "tiny", "--set", item])


def test_levels_are_checked_against_the_tiny_build_at_config_time():
    levels = re.escape(str(list(tiny.default_config().levels)))
    last = tiny.default_config().levels[-1]
    with pytest.raises(ValueError, match=rf"task.levels=\[9\].*no level 9.*are {levels}"):
        presets.configure("tiny", ["task.levels=[9]"])
    with pytest.raises(ValueError, match=rf"eval.levels=\[3, 7\].*no level 7.*are {levels}"):
        presets.configure("tiny", ["eval.levels=[3,7]"])
    with pytest.raises(ValueError, match=r"task.split='train'.*splits \['rl', 'sft', 'test'\]"):
        presets.configure("tiny", ["task.split=train"])
    assert presets.configure("tiny", [f"task.levels=[{last}]"]).task.levels == (last,)
    with pytest.raises(ValueError, match="task.tiny_build.*unknown field 'sft_stepz'"):
        presets.configure("tiny", tiny_build=["sft_stepz=9"])
    with pytest.raises(SystemExit, match="no level 9"):
        cli.main(["train", "--preset", "tiny", "--set", "task.levels=[9]"])


def test_mode_is_the_rollout_strategy():
    assert presets.configure("tiny", mode="grpo").rollout.strategy == "flat"
    assert presets.configure("tiny", mode="deepsearch").mode == "deepsearch"
    with pytest.raises(ValueError, match="--mode 'ppo'"):
        presets.configure("tiny", mode="ppo")


def test_adaptive_strategy_parses_from_set_and_mode():
    cfg = presets.configure("tiny", ["rollout.strategy=adaptive", "rollout.adaptive.chunk=2",
                                     "rollout.adaptive.budget_tokens=390"])
    assert (cfg.rollout.strategy, cfg.mode) == ("adaptive", "adaptive-grpo")
    assert (cfg.rollout.adaptive.chunk, cfg.rollout.adaptive.budget_tokens) == (2, 390)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert presets.configure("tiny", mode="adaptive-grpo").rollout.strategy == "adaptive"
    args = cli.build_parser().parse_args(["train", "--mode", "adaptive-grpo",
                                          "--set", "rollout.adaptive.max_samples=16"])
    assert (args.mode, args.set) == ("adaptive-grpo", ["rollout.adaptive.max_samples=16"])
    # a config.json written before the section existed still loads, with its defaults
    old = presets.preset("tiny").to_dict()
    del old["rollout"]["adaptive"]
    assert TrainConfig.from_dict(old).rollout.adaptive == config.AdaptiveConfig()
    # the dry run shrinks the rounds too
    dry = presets.configure("paper-1.5b", ["run.dry_run=true", "rollout.strategy=adaptive",
                                           "rollout.adaptive.budget_tokens=100000"])
    assert (dry.rollout.adaptive.chunk, dry.rollout.adaptive.max_samples,
            dry.rollout.adaptive.budget_tokens) == (2, 4, None)


def test_tiny_build_changes_the_tiny_reasoner(quick_reasoner, monkeypatch):
    from dslib import build

    cfg = override(presets.preset("tiny"), ['task.tiny_build=["sft_mix=[0.45,0.35,0.2]"]'])
    assert cfg.task.tiny_build == ("sft_mix=[0.45,0.35,0.2]",)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    built = []
    monkeypatch.setattr(tiny, "build", lambda c, **kw: built.append(c) or quick_reasoner)
    monkeypatch.setattr(build, "countdown_task", lambda cfg, r: None)
    build.countdown_model_and_task(cfg)
    assert built[0].sft_mix == (0.45, 0.35, 0.2) != tiny.TinyConfig().sft_mix
    assert built[0] == replace(tiny.default_config(), sft_mix=(0.45, 0.35, 0.2))
    build.countdown_model_and_task(presets.preset("tiny"))
    assert built[1] == tiny.default_config()  # no tiny_build: the default build
    args = cli.build_parser().parse_args(["train", "--tiny", "sft_steps=9", "--tiny", "seed=2"])
    assert cli._config(args).task.tiny_build == ("sft_steps=9", "seed=2")
    with pytest.raises(ValueError, match="needs model='tiny'"):
        update(presets.preset("tiny"), {"task": replace(
            presets.preset("tiny").task, model="runs/x/checkpoint", tiny_build=("seed=1",))})


def test_config_round_trips_through_json_and_rejects_unknown_fields():
    for name in presets.PRESETS:
        cfg = presets.preset(name)
        assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    data = presets.preset("tiny").to_dict()
    data["optim"]["lr"] = "fast"
    with pytest.raises(ValueError, match="OptimConfig.lr must be a finite number, got 'fast'"):
        TrainConfig.from_dict(data)
    with pytest.raises(ValueError, match=r"TrainConfig: unknown field\(s\) \['lr'\]"):
        TrainConfig.from_dict({"lr": 1e-4})


def test_the_same_parser_serves_tiny_and_rounds_configs():
    assert tiny.override(tiny.TinyConfig(), ["seed=3"]).seed == 3
    with pytest.raises(ValueError, match="TinyConfig.sft_steps must be an integer, got 'x'"):
        tiny.override(tiny.TinyConfig(), ["sft_steps=x"])
    with pytest.raises(ValueError, match=r"TinyConfig.levels must be numbers in 2..6"):
        tiny.override(tiny.TinyConfig(), ["levels=[3,4,9]"])
    assert override(RoundsConfig(), ["k=8", "strict=true"]) == RoundsConfig(k=8, strict=True)
    with pytest.raises(ValueError, match="RoundsConfig.delta must be in"):
        override(RoundsConfig(), ["delta=2"])


def test_every_config_field_has_a_docstring():
    """Each field of every config dataclass (``*Config``) is followed by its docstring."""
    missing = []
    for path in (ROOT / "dslib" / "config.py", ROOT / "dslib" / "tiny.py"):
        tree = ast.parse(path.read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            if not cls.name.endswith("Config"):
                continue
            body = cls.body
            for i, node in enumerate(body):
                if isinstance(node, ast.AnnAssign):
                    nxt = body[i + 1] if i + 1 < len(body) else None
                    if not (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                            and isinstance(nxt.value.value, str)):
                        missing.append(f"{cls.name}.{ast.unparse(node.target)}")
    assert not missing, missing


def test_countdown_verify_modes_are_the_tasks_and_reach_the_verifier(quick_reasoner):
    from dslib import build
    from dslib.tasks import countdown

    assert config.COUNTDOWN_VERIFY == countdown.VERIFY_MODES  # config sits below tasks
    for mode in config.COUNTDOWN_VERIFY:
        cfg = presets.configure("tiny", [f"task.verify={mode}"])
        task = build.countdown_task(cfg, quick_reasoner)
        assert task.verifier.verify_text is countdown.verifier(mode)


def test_strategy_and_filter_names_have_implementations():
    for name in config.STRATEGIES:
        cfg = update(config.RolloutConfig(), {"strategy": name})
        assert rollouts.make_strategy(cfg, TreeGRPOConfig()).name == name
    assert set(trainer.FILTERS) == set(config.FILTERS)


@settings(max_examples=60, deadline=None)
@given(width=st.integers(min_value=-3, max_value=40),
       lr=st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.text(max_size=4)),
       every=st.integers(min_value=-5, max_value=50))
def test_an_override_either_gives_a_valid_config_or_a_clear_error(width, lr, every):
    """Invariant: parsing never lets a value through that the config's checks reject, and a
    rejected value never changes the config (the result round-trips through JSON)."""
    base = presets.preset("tiny")
    items = [f"rollout.search.width={width}", f"optim.lr={json.dumps(lr)}",
             f"eval.every={every}"]
    try:
        cfg = override(base, items)
    except ValueError as err:
        assert any(k in str(err) for k in ("width", "lr", "every")), err
        return
    assert cfg.rollout.search.width == width >= 1 and cfg.eval.every == every >= 0
    assert isinstance(cfg.optim.lr, float) and cfg.optim.lr > 0
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_presets_and_sections_are_what_the_docs_say():
    cfg = presets.preset("tiny")
    assert cfg.rollout.search == SearchConfig.tiny()  # the CPU preset's search, line nodes
    assert [f.name for f in dataclasses.fields(TrainConfig)] == [
        "task", "rollout", "optim", "eval", "run", "filters"]
    small, rcfg = presets.smoke(cfg, presets.tiny_rounds())
    assert (small.run.problems_per_step, rcfg.steps_per_round) == (4, 2)
