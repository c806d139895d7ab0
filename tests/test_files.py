"""dslib.files: atomic directory swaps and the build lock (hand-made directories, threads)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from dslib import files, tiny


def _dir(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "weights").write_text(text)
    return path


def test_replace_dir_publishes_and_swaps(tmp_path: Path) -> None:
    target = tmp_path / "tiny-abc"
    files.replace_dir(_dir(tmp_path / ".tmp-1", "first"), target)
    assert (target / "weights").read_text() == "first" and not (tmp_path / ".tmp-1").exists()
    files.replace_dir(_dir(tmp_path / ".tmp-2", "second"), target)
    assert (target / "weights").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-abc"]  # nothing left aside


def test_exclusive_makes_a_second_holder_wait(tmp_path: Path, capfd) -> None:
    lock = tmp_path / ".x.lock"
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with files.exclusive(lock):
            held.set()
            time.sleep(0.3)
            order.append("first done")

    t = threading.Thread(target=first)
    t.start()
    held.wait(5)
    with files.exclusive(lock, waiting="another process is building x; waiting for it"):
        order.append("second in")
    t.join()
    assert order == ["first done", "second in"]
    assert capfd.readouterr().err.count("waiting for it") == 1
    with files.exclusive(lock, waiting="never printed"):  # free: no wait, no message
        pass
    assert "never printed" not in capfd.readouterr().err


def test_tiny_build_reuses_what_another_process_built_while_it_waited(tmp_path, monkeypatch):
    cfg = tiny.default_config()
    target = tmp_path / f"tiny-{cfg.key()}"

    def no_build(*args, **kwargs):
        raise AssertionError("built a second time")

    monkeypatch.setattr(tiny, "_build", no_build)
    held = threading.Event()

    def other_process() -> None:  # holds the lock, publishes a build, releases
        with files.exclusive(target.with_name(f".{target.name}.lock")):
            held.set()
            time.sleep(0.3)
            tmp = tmp_path / ".tmp-tiny-other"
            tmp.mkdir()
            (tmp / "build_info.json").write_text(json.dumps({"built_by": "other"}))
            files.replace_dir(tmp, target)

    t = threading.Thread(target=other_process)
    t.start()
    held.wait(5)
    reasoner = tiny.build(cfg, cache_dir=tmp_path, progress=False)
    t.join()
    assert reasoner.path == target and reasoner.info == {"built_by": "other"}
    with pytest.raises(AssertionError, match="built a second time"):  # force still rebuilds
        tiny.build(cfg, cache_dir=tmp_path, force=True, progress=False)
