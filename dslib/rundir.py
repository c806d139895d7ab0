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
is kept as ``checkpoint.old/`` until the swap is done, or for good with ``keep_previous``), so
a kill at any moment leaves a complete checkpoint to resume from. A resume cuts both logs back
to the checkpoint's step (rows of a step lost in a kill are dropped) through the atomic writer.

Faults end in a recovery or in a :class:`RunDirError` that names the file and what to do:

| fault                                         | behaviour                                     |
|-----------------------------------------------|-----------------------------------------------|
| logs but no checkpoint (killed before the     | a fresh start moves them aside to             |
| first one was complete)                       | ``<log>.aborted-N`` (a warning names them)    |
| a fresh start over a complete checkpoint      | error: resume it, or use a new folder         |
| torn *last* line of a log (kill, full disk)   | dropped, with a warning naming the file       |
| a bad line before the last                    | error naming file and line number             |
| unreadable ``checkpoint/`` (any of its files) | ``checkpoint.old/`` if kept (a warning), else |
|                                               | error naming the file                         |
| full disk (or any ``OSError``) while writing  | error naming the file: free space, resume;    |
|                                               | the previous checkpoint is untouched          |
| run folder not writable                       | error at start, before any training work      |
| ``config.json`` differs from the checkpoint's | error listing the fields (:func:`config_diff`)|
| ``config.json`` missing or unreadable         | restored from the checkpoint's copy (a        |
|                                               | warning), else error naming it                |
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dslib.files import atomic_write, atomic_write_json
from dslib.policy.make import save_model

CONFIG, METRICS, ROLLOUTS, CHECKPOINT, CURVES = (
    "config.json", "metrics.jsonl", "rollouts.jsonl", "checkpoint", "curves.png")
LOGS = (METRICS, ROLLOUTS)
"""the append-only logs of a run"""


class RunDirError(RuntimeError):
    """A run-directory file that cannot be read or written; the message names the file and
    says what to do."""


@dataclass
class Checkpoint:
    """A checkpoint read back completely: its folder, ``state.json``, ``optimizer.pt`` and
    the model (whatever the loader given to :meth:`RunDir.load_checkpoint` returned)."""

    path: Path
    """``checkpoint/`` or the kept previous one, ``checkpoint.old/``"""
    state: dict[str, Any]
    """``state.json``: ``step``, ``cumulative_sampled``, ``config`` (the run's config then)"""
    optimizer: dict[str, Any]
    """``optimizer.pt``: the learner's optimizer and scheduler state"""
    model: Any
    """the loaded model"""


class RunDir:
    """The files of one run under ``path`` (module docstring)."""

    def __init__(self, path: str | Path, keep_previous: bool = False) -> None:
        self.path = Path(path)
        #: keep the previous checkpoint as ``checkpoint.old/`` (``run.keep_previous_checkpoint``)
        self.keep_previous = keep_previous

    # ------------------------------------------------------------------ start
    def check_writable(self) -> None:
        """Create the folder and write (then remove) a probe file in it; a folder that
        cannot be written is a :class:`RunDirError` now, before any training work."""
        probe = self.path / f".write-probe.{os.getpid()}"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            os.close(os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644))
            os.unlink(probe)
        except OSError as err:
            raise RunDirError(
                f"{self.path}: the run folder is not writable ({err.strerror or err}); make it "
                "writable or choose another folder (dslib train --runs DIR / --name NAME)"
            ) from err

    def start_fresh(self) -> list[Path]:
        """Prepare a new run: refuse a folder with a complete checkpoint (resume it instead);
        move the logs of an attempt that never completed a checkpoint aside to
        ``<log>.aborted-N`` and drop its unfinished ``checkpoint.tmp/``, so no step is logged
        twice. Returns the moved files."""
        ckpt = self.latest_checkpoint()
        if ckpt is not None:
            raise RunDirError(
                f"{self.path} holds a checkpoint ({ckpt.name}/): resume it (dslib train "
                f"--resume {self.path}, or Trainer.resume), or start in a new folder")
        shutil.rmtree(self.path / f"{CHECKPOINT}.tmp", ignore_errors=True)
        moved = []
        for name in LOGS:
            log = self.path / name
            if log.exists():
                n = 1
                while (self.path / f"{name}.aborted-{n}").exists():
                    n += 1
                moved.append(log.rename(self.path / f"{name}.aborted-{n}"))
        if moved:
            warnings.warn(f"{self.path}: an earlier attempt logged steps but wrote no "
                          f"checkpoint; its logs were moved aside to "
                          f"{', '.join(p.name for p in moved)} and the run starts afresh",
                          stacklevel=2)
        return moved

    # ------------------------------------------------------------------ config
    def write_config(self, config: dict[str, Any]) -> None:
        with self._writing(self.path / CONFIG):
            atomic_write_json(self.path / CONFIG, config, indent=2)

    def read_config(self) -> dict[str, Any]:
        """``config.json``; a missing or unreadable one is restored, with a warning, from the
        copy every checkpoint keeps in its ``state.json`` (the newest readable one), else a
        :class:`RunDirError` names it."""
        path = self.path / CONFIG
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        except (OSError, ValueError) as err:
            for ckpt in self.checkpoints():
                try:
                    data = json.loads((ckpt / "state.json").read_text())["config"]
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                warnings.warn(f"{path}: cannot read the run's config ({err}); restored it from "
                              f"the copy in {ckpt / 'state.json'}", stacklevel=2)
                self.write_config(data)
                return data
            raise RunDirError(f"{path}: cannot read the run's config ({err}) and no checkpoint "
                              "keeps a copy; restore it, or start in a new folder") from err
        return data

    # ------------------------------------------------------------------ logs
    def append_metrics(self, row: dict[str, Any]) -> None:
        self._append(METRICS, [row])

    def read_metrics(self, upto_step: int | None = None) -> list[dict[str, Any]]:
        """The metrics rows (those of steps <= ``upto_step`` when given)."""
        return read_jsonl(self.path / METRICS, upto_step)

    def append_rollouts(self, rows: Iterable[dict[str, Any]]) -> None:
        self._append(ROLLOUTS, rows)

    def cut_logs(self, step: int, metrics: Sequence[dict[str, Any]]) -> None:
        """Resume at ``step``: ``metrics.jsonl`` becomes ``metrics``, ``rollouts.jsonl`` keeps
        the rows of steps <= ``step`` (a torn last line goes too)."""
        with self._writing(self.path / METRICS):
            atomic_write(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in metrics))
        rollouts = self.path / ROLLOUTS
        if rollouts.exists():
            rows = read_jsonl(rollouts, step)
            with self._writing(rollouts):
                atomic_write(rollouts, "".join(json.dumps(r) + "\n" for r in rows))

    def _append(self, name: str, rows: Iterable[dict[str, Any]]) -> None:
        text = "".join(json.dumps(row) + "\n" for row in rows)
        with self._writing(self.path / name):
            self.path.mkdir(parents=True, exist_ok=True)
            with open(self.path / name, "a") as f:
                f.write(text)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, model: Any, tokenizer: Any, source: Path | None,
                        optimizer: dict[str, Any], state: dict[str, Any]) -> Path:
        """Write ``checkpoint/`` (model, tokenizer, the build's ``build_info.json`` from
        ``source``, ``optimizer.pt``, ``state.json``) atomically; returns its path. A failed
        write removes ``checkpoint.tmp/`` and leaves the previous checkpoint as it was."""
        final, tmp, old = (self.path / f"{CHECKPOINT}{s}" for s in ("", ".tmp", ".old"))
        shutil.rmtree(tmp, ignore_errors=True)
        target = tmp
        try:
            with self._writing(lambda: target):
                tmp.mkdir(parents=True)
                save_model(model, tokenizer, tmp)
                info = source / "build_info.json" if source else None
                if info is not None and info.exists():
                    target = tmp / "build_info.json"
                    shutil.copy2(info, target)
                target = tmp / "optimizer.pt"
                torch.save(optimizer, target)
                target = tmp / "state.json"
                atomic_write_json(target, state, indent=2)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # give the space back
            raise
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        if not self.keep_previous:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def latest_checkpoint(self) -> Path | None:
        """``checkpoint/``, or ``checkpoint.old/`` when a swap was cut short; None if neither."""
        found = self.checkpoints()
        return found[0] if found else None

    def checkpoints(self) -> list[Path]:
        """The checkpoint folders, newest first (a swap only ever renames complete ones, so a
        file missing in one is damage, reported by :meth:`load_checkpoint`)."""
        return [self.path / name for name in (CHECKPOINT, f"{CHECKPOINT}.old")
                if (self.path / name).is_dir()]

    def checkpoint_state(self, ckpt: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """(``state.json``, ``optimizer.pt``) of a checkpoint; an unreadable file is a
        :class:`RunDirError` naming it. Its model loads through ``dslib.build.load_model``."""
        path = ckpt / "state.json"
        try:
            state = json.loads(path.read_text())
            int(state["step"]), int(state["cumulative_sampled"])
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise RunDirError(f"{path}: unreadable checkpoint state ({err!r})") from err
        path = ckpt / "optimizer.pt"
        try:
            optimizer = torch.load(path, weights_only=False)
        except Exception as err:  # torch raises many kinds on a truncated or foreign file
            raise RunDirError(f"{path}: unreadable optimizer state ({err!r})") from err
        return state, optimizer

    def load_checkpoint(self, load_model: Callable[[Path], Any]) -> Checkpoint:
        """The newest checkpoint that reads completely (``load_model(folder)`` gives its
        model). An unreadable ``checkpoint/`` falls back to ``checkpoint.old/`` with a
        warning; with nothing to fall back to, a :class:`RunDirError` names the file."""
        failed: list[str] = []
        for ckpt in self.checkpoints():
            try:
                state, optimizer = self.checkpoint_state(ckpt)
                try:
                    model = load_model(ckpt)
                except Exception as err:  # safetensors, torch, json: many kinds
                    raise RunDirError(f"{ckpt}: unreadable model ({err!r})") from err
            except RunDirError as err:
                failed.append(str(err))
                continue
            if failed:
                warnings.warn(f"{failed[0]}; resuming from the previous checkpoint {ckpt} "
                              f"(step {state['step']})", stacklevel=2)
            return Checkpoint(ckpt, state, optimizer, model)
        if not failed:
            raise FileNotFoundError(f"{self.path}: no checkpoint to resume from")
        raise RunDirError(f"{'; '.join(failed)}; no earlier checkpoint is kept: restore the "
                          "file, or start again in a new folder")

    def curves_path(self) -> Path:
        return self.path / CURVES

    # ------------------------------------------------------------------ errors
    @contextmanager
    def _writing(self, file: Path | Callable[[], Path]) -> Iterator[None]:
        """An ``OSError`` while writing ``file`` becomes a :class:`RunDirError` that names it
        and says how to go on (``file`` may be a callable: the file being written now)."""
        try:
            yield
        except OSError as err:
            name = file() if callable(file) else file
            ckpt = self.latest_checkpoint()
            then = (f"resume from the intact checkpoint {ckpt} (dslib train --resume "
                    f"{self.path})" if ckpt else "run the same command again (no checkpoint "
                    "was written yet)")
            full = err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
            raise RunDirError(
                f"{name}: {'disk full' if full else 'write failed'} ({err.strerror or err}); "
                f"{'free space on its disk' if full else 'fix the cause'}, then {then}"
            ) from err


def read_jsonl(path: str | Path, upto_step: int | None = None) -> list[dict[str, Any]]:
    """The rows of an append-only JSONL log (those of steps <= ``upto_step`` when given); no
    file, no rows. A torn last line (a kill or a full disk mid-append) is dropped with a
    warning; a bad line before it is a :class:`RunDirError` naming file and line."""
    path = Path(path)
    if not path.exists():
        return []
    numbered = [(no, line) for no, line in enumerate(path.read_text().split("\n"), start=1)
                if line.strip()]
    rows = []
    for i, (no, line) in enumerate(numbered):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}, not an object")
        except ValueError as err:
            if i == len(numbered) - 1:
                warnings.warn(f"{path}:{no}: dropped a torn last line ({line[:40]!r}...): "
                              "the write was cut short", stacklevel=2)
                break
            raise RunDirError(f"{path}:{no}: corrupt line ({err}); delete or repair that line "
                              "(rows after the last checkpoint are rewritten on resume)"
                              ) from err
        if upto_step is None or row.get("step", 0) <= upto_step:
            rows.append(row)
    return rows


def config_diff(saved: Mapping[str, Any], current: Mapping[str, Any],
                prefix: str = "") -> list[str]:
    """``"section.field: <saved> -> <current>"`` for every leaf that differs (JSON values)."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += config_diff(a, b, f"{prefix}{key}.")
        elif json.dumps(a) != json.dumps(b):
            out.append(f"{prefix}{key}: {json.dumps(a)} -> {json.dumps(b)}")
    return out
