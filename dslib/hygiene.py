"""Data hygiene (paper Sec. 4.2, docs/paper-notes.md#hygiene): drop garbled or looping INCORRECT
samples.

The paper: "among the incorrect samples, we remove data containing garbled text or infinite
repetitions"; it gives no criterion and the released code has no such step. Ours is
character-level (no tokenizer needed to judge, one is needed to decode):

| reason       | criterion (``HygieneConfig`` defaults, :mod:`dslib.config`)               |
|--------------|--------------------------------------------------------------------------|
| "repetition" | a block of 1..100 characters holding a letter or digit, repeated >= 10    |
|              | times back to back and covering >= 40 characters (:func:`repeated_block`);|
|              | or, for texts of >= 1000 characters, a zlib compression ratio < 0.1      |
| "garbled"    | > 20 % of the characters outside printable ASCII, whitespace and common  |
|              | math/Latin/Greek Unicode blocks (``config.DEFAULT_ALLOWED_RANGES``)       |

The filter "hygiene" of ``TrainConfig.filters`` is :func:`drop_degenerate`: correct samples are
always kept; a dropped sample leaves its group, whose advantages were computed with it (the
paper removes data, not rollouts).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from dslib.config import HygieneConfig
from dslib.rollouts import Group, Sample


def repeated_block(text: str, cfg: HygieneConfig | None = None) -> tuple[int, int] | None:
    """``(period, chars)`` of a back-to-back repetition loop in ``text``, or None.

    For every period p in 1..max_period, each maximal stretch where ``text[i] == text[i + p]``
    gives a substring of ``chars`` = stretch + p characters made of one p-character block
    repeated chars / p times. Flagged when chars >= max(min_repeats * p, min_run_chars) and the
    block holds a letter or digit: runs of punctuation or blanks (``-----`` rules, table
    borders, indentation) are layout, not a loop. Vectorised with numpy:
    O(len(text) * max_period) comparisons, a few milliseconds for 60k characters.
    """
    cfg = cfg or HygieneConfig()
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    size = codes.size
    if size < cfg.min_run_chars:
        return None
    for p in range(1, min(cfg.max_period, size // cfg.min_repeats) + 1):
        same = np.concatenate(([False], codes[p:] == codes[:-p], [False])).astype(np.int8)
        edges = np.diff(same)
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        need = max(cfg.min_repeats * p, cfg.min_run_chars)
        for i in np.flatnonzero(ends - starts + p >= need):
            start = int(starts[i])
            if any(ch.isalnum() for ch in text[start : start + p]):
                return p, int(ends[i] - starts[i]) + p
    return None


def compression_ratio(text: str) -> float:
    """zlib (level 9) compressed size / UTF-8 size; 1.0 for an empty text."""
    raw = text.encode("utf-8")
    return len(zlib.compress(raw, 9)) / len(raw) if raw else 1.0


def foreign_share(text: str, cfg: HygieneConfig | None = None) -> float:
    """Share of characters outside printable ASCII + whitespace + ``cfg.allowed_ranges``."""
    cfg = cfg or HygieneConfig()
    if not text:
        return 0.0

    def ok(ch: str) -> bool:
        c = ord(ch)
        if 0x20 <= c <= 0x7E or ch in "\t\n\r":
            return True
        return any(lo <= c <= hi for lo, hi in cfg.allowed_ranges)

    return sum(not ok(ch) for ch in text) / len(text)


def is_degenerate(text: str, cfg: HygieneConfig | None = None) -> str | None:
    """"repetition", "garbled" or None for a decoded response (docs/paper-notes.md#hygiene; paper
    Sec. 4.2).

    | reason       | criterion (``HygieneConfig`` defaults)                                   |
    |--------------|--------------------------------------------------------------------------|
    | "repetition" | a block of 1..100 characters holding a letter or digit, repeated >= 10    |
    |              | times back to back and covering >= 40 characters (:func:`repeated_block`);|
    |              | or, for texts of >= 1000 characters, a zlib compression ratio < 0.1      |
    |              | (long loops of blocks longer than 100 characters)                        |
    | "garbled"    | > 20 % of the characters outside printable ASCII, whitespace and common  |
    |              | math/Latin/Greek Unicode blocks (:data:`DEFAULT_ALLOWED_RANGES`): control |
    |              | bytes, U+FFFD, private use, CJK, emoji... (an English-math setting: widen |
    |              | ``allowed_ranges`` for other languages)                                  |

    Character-level, so it needs no tokenizer. The paper removes such data among the INCORRECT
    samples only; which samples to test is the caller's choice.
    """
    cfg = cfg or HygieneConfig()
    if repeated_block(text, cfg) is not None:
        return "repetition"
    if len(text) >= cfg.min_compress_chars and compression_ratio(text) < cfg.max_compress_ratio:
        return "repetition"
    if foreign_share(text, cfg) > cfg.max_foreign_share:
        return "garbled"
    return None


def degenerate(samples: Sequence[Sample], tokenizer: Any,
               cfg: HygieneConfig | None = None) -> list[Sample]:
    """The INCORRECT samples whose decoded text :func:`is_degenerate` flags, in order."""
    if tokenizer is None:
        raise ValueError("the hygiene filter needs the task's tokenizer to decode responses")
    return [s for s in samples if not s.correct and is_degenerate(
        tokenizer.decode(s.response_ids, skip_special_tokens=True), cfg) is not None]


def drop_degenerate(groups: Sequence[Group], tokenizer: Any) -> list[Group]:
    """The filter "hygiene": every group without its :func:`degenerate` samples."""
    out = []
    for g in groups:
        gone = {id(s) for s in degenerate(g.samples, tokenizer)}
        out.append(dataclasses.replace(g, samples=[s for s in g.samples if id(s) not in gone]))
    return out
