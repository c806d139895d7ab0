"""The run directory: every file a training run reads or writes, in one place.

| file               | content                                                   | written    |
|--------------------|-----------------------------------------------------------|------------|
| ``config.json``    | the full ``TrainConfig``                                  | atomically |
| ``metrics.jsonl``  | one JSON line per step (and per evaluation, kind "eval")  | appended   |
| ``rollouts.jsonl`` | one line per sampled response (``run.log_rollouts``)      | appended   |
| ``checkpoint/``    | model + tokenizer (HF directory), the tiny build's        | swapped in |
|                    | ``build_info.json``, ``optimizer.pt``, ``state.json``     | by renames |
| ``curves.png``     | training curves                                           | at the end |

A checkpoint is written into ``checkpoint.tmp/`` and swapped in by renames (the previous one
is kept as ``checkpoint.old/`` until the swap is done), so a kill at any moment leaves a
complete checkpoint to resume from. A resume cuts both logs back to the checkpoint's step
(rows of a step lost in a kill are dropped) through the atomic writer.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from dslib.files import atomic_write, atomic_write_json
from dslib.policy.make import save_model

CONFIG, METRICS, ROLLOUTS, CHECKPOINT, CURVES = (
    "config.json", "metrics.jsonl", "rollouts.jsonl", "checkpoint", "curves.png")


class RunDir:
    """The files of one run under ``path`` (module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ config
    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.path / CONFIG, config, indent=2)

    def read_config(self) -> dict[str, Any]:
        return json.loads((self.path / CONFIG).read_text())

    # ------------------------------------------------------------------ logs
    def append_metrics(self, row: dict[str, Any]) -> None:
        self._append(METRICS, [row])

    def read_metrics(self, upto_step: int | None = None) -> list[dict[str, Any]]:
        """The metrics rows (those of steps <= ``upto_step`` when given)."""
        return _read_jsonl(self.path / METRICS, upto_step)

    def append_rollouts(self, rows: Iterable[dict[str, Any]]) -> None:
        self._append(ROLLOUTS, rows)

    def cut_logs(self, step: int, metrics: Sequence[dict[str, Any]]) -> None:
        """Resume at ``step``: ``metrics.jsonl`` becomes ``metrics``, ``rollouts.jsonl`` keeps
        the rows of steps <= ``step``."""
        atomic_write(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in metrics))
        rollouts = self.path / ROLLOUTS
        if rollouts.exists():
            rows = _read_jsonl(rollouts, step)
            atomic_write(rollouts, "".join(json.dumps(r) + "\n" for r in rows))

    def _append(self, name: str, rows: Iterable[dict[str, Any]]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / name, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, model: Any, tokenizer: Any, source: Path | None,
                        optimizer: dict[str, Any], state: dict[str, Any]) -> Path:
        """Write ``checkpoint/`` (model, tokenizer, the build's ``build_info.json`` from
        ``source``, ``optimizer.pt``, ``state.json``) atomically; returns its path."""
        final, tmp, old = (self.path / f"{CHECKPOINT}{s}" for s in ("", ".tmp", ".old"))
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_model(model, tokenizer, tmp)
        info = source / "build_info.json" if source else None
        if info is not None and info.exists():
            shutil.copy2(info, tmp / "build_info.json")
        torch.save(optimizer, tmp / "optimizer.pt")
        atomic_write_json(tmp / "state.json", state, indent=2)
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return final

    def latest_checkpoint(self) -> Path | None:
        """``checkpoint/``, or ``checkpoint.old/`` when a swap was cut short; None if neither."""
        for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
            if (self.path / name / "state.json").exists():
                return self.path / name
        return None

    def checkpoint_state(self, ckpt: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """(``state.json``, ``optimizer.pt``) of a checkpoint; its model loads through
        ``dslib.build.load_model``."""
        state = json.loads((ckpt / "state.json").read_text())
        return state, torch.load(ckpt / "optimizer.pt", weights_only=False)

    def curves_path(self) -> Path:
        return self.path / CURVES


def _read_jsonl(path: Path, upto_step: int | None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if upto_step is None or row.get("step", 0) <= upto_step:
                rows.append(row)
    return rows
