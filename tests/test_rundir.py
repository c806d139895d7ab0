"""The run directory and the atomic writer: what is on disk after a write, a cut, a failure."""

from __future__ import annotations

import json

import pytest
import torch

from dslib import files
from dslib.rundir import RunDir


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
