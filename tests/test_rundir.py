"""The run directory and the atomic writer: what is on disk after a write, a cut, a failure."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch

from dslib import files
from dslib.rundir import RunDir, RunDirError


def test_atomic_write_text_bytes_json_and_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "f.json"
    files.atomic_write_json(path, {"a": [1, 2]}, indent=None)
    assert path.read_text() == '{"a": [1, 2]}\n'
    files.atomic_write(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError, match="No space"):
        files.atomic_write(path, "new")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.json"]  # no temporary left


def test_metrics_and_rollouts_are_cut_back_to_a_step(tmp_path):
    run = RunDir(tmp_path)
    for step in (1, 2, 3):
        run.append_metrics({"kind": "train", "step": step})
        run.append_rollouts([{"step": step, "problem_id": "p", "response_ids": [step]}])
    run.append_metrics({"kind": "eval", "step": 3})
    kept = run.read_metrics(upto_step=2)
    assert [r["step"] for r in kept] == [1, 2]
    run.cut_logs(2, kept)
    assert [r["step"] for r in run.read_metrics()] == [1, 2]
    rollouts = [json.loads(x) for x in (tmp_path / "rollouts.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rollouts] == [1, 2]


class _Saveable(torch.nn.Linear):
    def save_pretrained(self, path):
        torch.save(self.state_dict(), f"{path}/weights.pt")


def test_checkpoint_swap_keeps_a_complete_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    assert run.latest_checkpoint() is None
    model = _Saveable(2, 2)
    first = run.save_checkpoint(model, None, None, {"optimizer": {}, "scheduler": {}},
                                {"step": 1, "cumulative_sampled": 5})
    assert first == tmp_path / "checkpoint" and run.latest_checkpoint() == first
    state, optimizer = run.checkpoint_state(first)
    assert state == {"step": 1, "cumulative_sampled": 5} and optimizer["scheduler"] == {}
    run.save_checkpoint(model, None, None, {"optimizer": {}, "scheduler": {}},
                        {"step": 2, "cumulative_sampled": 9})
    assert run.checkpoint_state(first)[0]["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    # a swap cut short between its two renames: the previous checkpoint is still found
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")
    assert run.latest_checkpoint() == tmp_path / "checkpoint.old"


# ----------------------------------------------------------------------------- faults
# One test per fault of reproduce/README.md "Faults and recovery".


def _load(ckpt):
    """The model loader of these tests: the weights ``_Saveable`` wrote."""
    return torch.load(ckpt / "weights.pt", weights_only=True)


def _save(run, step, model=None):
    return run.save_checkpoint(model or _Saveable(2, 2), None, None, {"lr": step},
                               {"step": step, "cumulative_sampled": 10 * step})


def _steps(path):
    return [json.loads(x)["step"] for x in path.read_text().splitlines()]


def test_fault_kill_during_the_first_checkpoint_then_the_same_command(tmp_path):
    """Fault 1: steps logged, killed while ``checkpoint.tmp/`` was half written; a re-run
    starts afresh with the old logs aside, so step 1 is never logged twice."""
    run = RunDir(tmp_path)
    run.append_metrics({"kind": "train", "step": 1})
    run.append_rollouts([{"step": 1, "problem_id": "p", "response_ids": [3]}])
    (tmp_path / "checkpoint.tmp").mkdir()
    (tmp_path / "checkpoint.tmp" / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.warns(UserWarning, match=r"metrics\.jsonl\.aborted-1, rollouts\.jsonl\.aborted-1"):
        moved = run.start_fresh()
    assert [p.name for p in moved] == ["metrics.jsonl.aborted-1", "rollouts.jsonl.aborted-1"]
    assert not (tmp_path / "checkpoint.tmp").exists()
    assert _steps(tmp_path / "metrics.jsonl.aborted-1") == [1]
    run.append_metrics({"kind": "train", "step": 1})  # the re-run logs its own step 1
    assert [r["step"] for r in run.read_metrics()] == [1]
    assert not (tmp_path / "rollouts.jsonl").exists()
    with pytest.warns(UserWarning, match=r"metrics\.jsonl\.aborted-2"):  # a second abort
        run.start_fresh()


def test_fault_metrics_without_any_checkpoint_and_fresh_start_over_one(tmp_path):
    """Fault 8: ``metrics.jsonl`` but no checkpoint at all: moved aside as in fault 1; a
    fresh start over a complete checkpoint is refused (resume it, or a new folder), by the
    trainer and by the CLI (which also counts a kept ``checkpoint.old/``)."""
    from dslib import cli

    run = RunDir(tmp_path / "r")
    run.append_metrics({"kind": "eval", "step": 0})
    with pytest.warns(UserWarning, match="wrote no checkpoint"):
        run.start_fresh()
    assert not (tmp_path / "r" / "metrics.jsonl").exists()
    _save(run, 1)
    with pytest.raises(RunDirError, match=r"holds a checkpoint \(checkpoint/\): resume it"):
        run.start_fresh()
    (tmp_path / "r" / "checkpoint").rename(tmp_path / "r" / "checkpoint.old")
    with pytest.raises(SystemExit, match="already holds a run: --resume"):
        cli._fresh_dir(tmp_path / "r", "checkpoint", False, "--resume it")


def test_fault_torn_last_line_is_dropped_a_bad_middle_line_is_an_error(tmp_path, capsys):
    """Fault 2: a half-written last line (kill, full disk) is dropped with a warning naming
    the file, by resume (``cut_logs``) and by ``dslib compare``; a bad line before the last
    is an error naming file and line."""
    from dslib.cli import main

    run = RunDir(tmp_path)
    for step in (1, 2):
        run.append_metrics({"kind": "train", "step": step})
        run.append_rollouts([{"step": step, "problem_id": "p", "response_ids": [step]}])
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "eval", "step": 2, "L3/pa')
    with open(tmp_path / "rollouts.jsonl", "a") as f:
        f.write('{"step": 3, "prob')
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:3: dropped a torn last line"):
        assert main(["compare", str(tmp_path)]) == 0
    assert "| 2 |" in capsys.readouterr().out  # two train steps counted
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:3: dropped a torn"):
        kept = run.read_metrics(upto_step=2)
    with pytest.warns(UserWarning, match=r"rollouts\.jsonl:3: dropped a torn"):
        run.cut_logs(2, kept)
    assert _steps(tmp_path / "metrics.jsonl") == [1, 2]  # rewritten without the torn lines
    assert _steps(tmp_path / "rollouts.jsonl") == [1, 2]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "metrics.jsonl").write_text("\n".join([lines[0], "{oops", lines[1]]) + "\n")
    with pytest.raises(RunDirError, match=r"metrics\.jsonl:2: corrupt line"):
        run.read_metrics()
    with pytest.raises(SystemExit, match=r"metrics\.jsonl:2: corrupt line"):
        main(["compare", str(tmp_path)])


@pytest.mark.parametrize(("damage", "named"), [
    (lambda c: (c / "optimizer.pt").write_bytes(b"PK\x03\x04garbage"), "optimizer.pt"),
    (lambda c: (c / "weights.pt").write_bytes((c / "weights.pt").read_bytes()[:40]), "model"),
    (lambda c: (c / "state.json").unlink(), "state.json"),
    (lambda c: (c / "state.json").write_text('{"step": 2'), "state.json"),
])
def test_fault_corrupt_checkpoint_falls_back_else_names_the_file(tmp_path, damage, named):
    """Fault 3: an unreadable ``checkpoint/`` falls back to the kept previous one with a
    warning; without one, the error names the file."""
    kept = RunDir(tmp_path / "kept", keep_previous=True)
    first = _Saveable(2, 2)
    _save(kept, 1, first)
    _save(kept, 2)
    damage(tmp_path / "kept" / "checkpoint")
    with pytest.warns(UserWarning, match=f"checkpoint/?.*{named}.*previous checkpoint"):
        ckpt = kept.load_checkpoint(_load)
    assert ckpt.path.name == "checkpoint.old" and ckpt.state["step"] == 1
    assert ckpt.optimizer == {"lr": 1} and torch.equal(ckpt.model["weight"], first.weight)

    single = RunDir(tmp_path / "single")
    _save(single, 1)
    _save(single, 2)
    assert not (tmp_path / "single" / "checkpoint.old").exists()  # the default keeps one
    damage(tmp_path / "single" / "checkpoint")
    with pytest.raises(RunDirError, match=f"single/checkpoint.*{named}.*no earlier checkpoint"):
        single.load_checkpoint(_load)


def test_fault_disk_full_while_writing_a_checkpoint_or_a_log(tmp_path, monkeypatch):
    """Fault 4: ENOSPC mid-write: the previous checkpoint stays intact, the half-written one
    is removed, the error names the file, says to free space and how to resume; a log cut
    mid-line loses only that line."""
    from dslib import rundir

    run = RunDir(tmp_path)
    _save(run, 1)
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if str(f).endswith("optimizer.pt"):
            with open(f, "wb") as out:
                out.write(b"PK\x03")  # the bytes that fitted
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(rundir.torch, "save", full_disk)
    with pytest.raises(RunDirError, match=r"checkpoint\.tmp/optimizer\.pt: disk full .*free "
                                          r"space.*intact checkpoint .*/checkpoint \(dslib "
                                          r"train --resume"):
        _save(run, 2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    ckpt = run.load_checkpoint(_load)
    assert ckpt.state["step"] == 1 and ckpt.optimizer == {"lr": 1}

    run.append_metrics({"kind": "train", "step": 1})

    class HalfWrite:
        def __init__(self, path, mode):
            self.f = open(path, mode)  # noqa: SIM115 - closed in __exit__

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[: len(text) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir, "open", HalfWrite, raising=False)
    with pytest.raises(RunDirError, match=r"metrics\.jsonl: disk full.*free space.*--resume"):
        run.append_metrics({"kind": "train", "step": 2, "reward": 0.5})
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="torn last line"):
        assert [r["step"] for r in run.read_metrics()] == [1]


def test_fault_read_only_run_dir_fails_before_any_training_work(tmp_path, monkeypatch):
    """Fault 5: a run folder that cannot be written is an error naming it, raised before the
    trainer touches its model (here ``object()``, which any training work would trip on)."""
    from dslib import rundir
    from dslib.config import TrainConfig
    from dslib.trainer import Trainer

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    real_open = os.open

    def deny(path, *args, **kwargs):  # root ignores the mode bits: refuse the probe too
        if ".write-probe" in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rundir.os, "open", deny)
    try:
        with pytest.raises(RunDirError, match=r"ro: the run folder is not writable"):
            Trainer(TrainConfig(), folder, model=object(), task=object(), progress=False)
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_fault_config_edited_between_runs_lists_the_fields(tmp_path, monkeypatch):
    """Fault 9: ``config.json`` edited before a resume: an error listing every differing
    field and how to go on; ``accept_config=True`` (``--accept-config``) goes past it."""
    from dslib import build
    from dslib.config import TrainConfig, update
    from dslib.trainer import Trainer

    run = RunDir(tmp_path)
    saved = TrainConfig()
    run.save_checkpoint(_Saveable(2, 2), None, None, {},
                        {"step": 1, "cumulative_sampled": 0, "config": saved.to_dict()})
    run.write_config(update(saved, {"run.steps": 99, "optim.lr": 0.5}).to_dict())
    monkeypatch.setattr(build, "load_model", lambda ckpt, cfg: "a model")
    with pytest.raises(RunDirError) as info:
        Trainer.resume(tmp_path)
    msg = str(info.value)
    assert "config.json differs" in msg and "--accept-config" in msg and "new folder" in msg
    assert f"optim.lr: {saved.optim.lr} -> 0.5" in msg
    assert f"run.steps: {saved.run.steps} -> 99" in msg
    assert msg.count(" -> ") == 3  # those two fields only, and "(checkpoint -> config.json)"

    built = []

    def constructed(self, cfg, run_dir, **kwargs):
        built.append((cfg.run.steps, kwargs["model"]))
        raise RuntimeError("constructed")

    monkeypatch.setattr(Trainer, "__init__", constructed)
    with pytest.raises(RuntimeError, match="constructed"):
        Trainer.resume(tmp_path, accept_config=True)
    assert built == [(99, "a model")]


def test_fault_missing_or_corrupt_config_is_restored_from_the_checkpoint(tmp_path):
    """Fault 11: ``config.json`` deleted or garbled: the copy in the newest readable
    checkpoint's ``state.json`` is used and written back, with a warning; without one, an
    error names the file."""
    run = RunDir(tmp_path)
    with pytest.raises(RunDirError, match="config.json: cannot read .* no checkpoint keeps"):
        run.read_config()
    config = {"run": {"steps": 7}}
    run.save_checkpoint(_Saveable(2, 2), None, None, {},
                        {"step": 1, "cumulative_sampled": 0, "config": config})
    for damage in (None, "{not json", "[1, 2]"):
        if damage is None:
            (tmp_path / "config.json").unlink(missing_ok=True)
        else:
            (tmp_path / "config.json").write_text(damage)
        with pytest.warns(UserWarning, match="restored it from the copy in .*state.json"):
            assert run.read_config() == config
        assert json.loads((tmp_path / "config.json").read_text()) == config
    (tmp_path / "checkpoint" / "state.json").write_text("{torn")  # no readable copy left
    (tmp_path / "config.json").write_text("")
    with pytest.raises(RunDirError, match="no checkpoint keeps a copy"):
        run.read_config()
