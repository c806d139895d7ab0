"""The one atomic writer: a file is either its old content or its new content, never half of it.

Every file the kit rewrites (run configs, metrics after a resume, filter files, replay buffers,
round state, benchmark tables) goes through :func:`atomic_write`:

    1. write the data to a sibling temporary file ``.<name>.<pid>.tmp`` in the same directory
       (same file system, so step 3 is a rename, not a copy);
    2. flush and ``fsync`` it, so the bytes are on disk before the name points at them;
    3. ``os.replace`` it over ``path`` (atomic on POSIX and Windows).

If anything fails before step 3 (a kill, a full disk, an exception while writing), the
temporary file is removed and ``path`` keeps its previous content. Append-only logs
(``metrics.jsonl``, ``rollouts.jsonl``, ``results.jsonl``) are appended to instead; they are
rewritten through this writer when a resume cuts them back.

| function              | data                      | on disk                                 |
|-----------------------|---------------------------|-----------------------------------------|
| ``atomic_write``      | ``str`` or ``bytes``      | UTF-8 text, or the bytes as given       |
| ``atomic_write_json`` | anything ``json`` dumps   | UTF-8 JSON (``indent`` as given) + "\\n" |
| ``replace_dir``       | a finished directory      | renamed over ``target``; an old one is  |
|                       |                           | moved aside first, then removed         |
| ``exclusive``         | a lock file's path        | held while the block runs: a second     |
|                       |                           | process waits (it says so once)         |

Directories built once and shared by processes (the tiny reasoner's cache) are built into a
temporary sibling, published with ``replace_dir``, and built under ``exclusive``: a process
that finds another one building the same directory waits for it and then reuses its result,
instead of building it a second time and replacing it under the first one's readers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = None) -> Path:
    """``obj`` as JSON (one trailing newline) to ``path`` atomically; returns ``path``."""
    return atomic_write(path, json.dumps(obj, indent=indent) + "\n")


def replace_dir(tmp: str | Path, target: str | Path) -> Path:
    """Move the finished directory ``tmp`` to ``target`` (same file system); returns
    ``target``. An existing ``target`` is first renamed aside (``.<name>.old``) and removed
    after the swap, so ``target`` is whole at every moment except between two renames."""
    tmp, target = Path(tmp), Path(target)
    if not target.exists():
        os.replace(tmp, target)
        return target
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


@contextlib.contextmanager
def exclusive(lock: str | Path, waiting: str = "") -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (created if missing) while the block runs.

    Another process (or another open of the same file) entering ``exclusive`` on the same path
    blocks until it is released; ``waiting`` is printed to stderr once if it has to wait. The
    lock is advisory (``fcntl.flock``) and released by the OS if the holder dies. Where
    ``fcntl`` does not exist (Windows) the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
