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
"""

from __future__ import annotations

import json
import os
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
