"""The shared progress bar: tqdm when on, a silent stand-in with the same methods when off."""

from __future__ import annotations

import io

from dslib.progress import SilentBar, progress_bar


def test_silent_bar_iterates_and_ignores_updates() -> None:
    bar = progress_bar(range(3), enabled=False, desc="x")
    assert isinstance(bar, SilentBar)
    bar.update(5)
    bar.set_postfix(loss="1.0")
    bar.set_description("y")
    bar.close()
    assert list(bar) == [0, 1, 2]
    assert list(progress_bar(enabled=False, total=4)) == []


def test_enabled_bar_is_tqdm_and_counts() -> None:
    out = io.StringIO()
    bar = progress_bar(enabled=True, total=4, desc="work", file=out)
    bar.update(3)
    bar.close()
    assert bar.n == 3
    assert "work" in out.getvalue() and "3/4" in out.getvalue()
    assert list(progress_bar(range(2), enabled=True, file=io.StringIO())) == [0, 1]
