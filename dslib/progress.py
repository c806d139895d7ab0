"""One progress bar for every long loop in the kit: tqdm's text bar, or a silent stand-in.

Text bars (``tqdm.tqdm``, not ``tqdm.auto``) need no ipywidgets, so they render the same in a
terminal, a notebook and a notebook stored on a code host. The silent stand-in has the same
methods, so callers never branch on whether progress is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


class SilentBar:
    """What :func:`progress_bar` returns when progress is off: iterates, ignores updates."""

    def __init__(self, iterable: Iterable[Any] | None = None) -> None:
        self._iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable if self._iterable is not None else ())

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def set_description(self, desc: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(
    iterable: Iterable[Any] | None = None, *, enabled: bool = True, **tqdm_kwargs: Any
) -> Any:
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``), or :class:`SilentBar`.

    ``tqdm_kwargs`` go to ``tqdm.tqdm`` unchanged (``desc``, ``total``, ``unit``, ``leave``...).
    """
    if not enabled:
        return SilentBar(iterable)
    from tqdm import tqdm

    return tqdm(iterable, **tqdm_kwargs)
