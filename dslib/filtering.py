"""Pass1@K hard-subset filtering and its on-disk record (docs/paper-notes.md#filtering; v4 Sec. 4.1,
Eq. 8-9).

Before each training round the policy pi^(i) answers every problem K times (K = 4 direct
rollouts); a problem stays in the training set while it is still hard:

    D_hard^(0)   = { x in D_train    | Pass1@K(x, pi^(0)) <= delta }        (code / README)
    D_hard^(i+1) = { x in D_hard^(i) | Pass1@K(x, pi^(i)) <= delta }
    Pass1@K(x)   = (#correct of the K samples) / K                          (a success RATE)

with delta = 25 % fixed across rounds. The released README keeps 0/4 AND 1/4 ("<="); the paper
writes a strict "<" (which keeps 0/4 only). Default ``strict=False`` follows the code,
``strict=True`` gives the paper's rule (docs/paper-notes.md#pvc-filter). Rounds chain by calling
:func:`hard_subset` on the previous round's hard subset.

The filter record is a versioned JSONL file, so a round's decision can be inspected, diffed and
reused without re-sampling:

| line  | field                 | type        | meaning                                     |
|-------|-----------------------|-------------|---------------------------------------------|
| 1     | ``format``            | str         | always ``"dslib.filter"``                   |
|       | ``version``           | int         | :data:`FORMAT_VERSION`                      |
|       | ``model_fingerprint`` | str         | ``policy.make.model_fingerprint`` (weights)  |
|       | ``config``            | dict        | free-form: sampling settings, data source   |
|       | ``k``                 | int         | samples per problem                         |
|       | ``delta``             | float       | threshold                                   |
|       | ``strict``            | bool        | paper's "<" (True) or code's "<=" (False)   |
| 2..   | ``id``                | str         | problem id (``Prompted.id``)                |
|       | ``successes``         | int         | correct samples, 0..k                       |
|       | ``k``                 | int         | samples drawn (= the header's k)            |
|       | ``kept``              | bool        | ``keep(record, delta, strict)`` (checked)   |
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dslib.evaluate import evaluate
from dslib.files import atomic_write
from dslib.policy.base import Policy
from dslib.policy.make import model_fingerprint
from dslib.verify import Verdict

FORMAT = "dslib.filter"
FORMAT_VERSION = 1
RATE_EPS = 1e-12
"""slack on the rate comparison, so 1/4 <= 0.25 holds whatever the float rounding of delta"""


class FilterFileError(ValueError):
    """A filter file that cannot be read: corrupt line, foreign file, unknown version."""


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FilterRecord:
    """Pass1@K outcome of one problem: ``successes`` correct out of ``k`` direct samples."""

    id: str
    successes: int
    k: int

    def __post_init__(self) -> None:
        if self.k < 1 or not 0 <= self.successes <= self.k:
            raise ValueError(f"FilterRecord {self.id!r}: need 0 <= successes <= k and k >= 1, "
                             f"got successes={self.successes}, k={self.k}")

    @property
    def rate(self) -> float:
        """Pass1@K as the paper uses it: the success rate successes / k."""
        return self.successes / self.k


def keep(record: FilterRecord, delta: float = 0.25, strict: bool = False) -> bool:
    """Is the problem still hard? (v4 Eq. 8-9, docs/paper-notes.md#filtering)

    | strict | rule           | K=4, delta=0.25 keeps | source          |
    |--------|----------------|-----------------------|-----------------|
    | False  | rate <= delta  | 0/4, 1/4              | code / README   |
    | True   | rate <  delta  | 0/4                   | paper Eq. 8-9   |
    """
    if strict:
        return record.rate < delta - RATE_EPS
    return record.rate <= delta + RATE_EPS


def pass1_at_k(
    policy: Policy,
    items: Sequence[Any],
    verifier: Callable[[Any, list[int]], Verdict],
    k: int = 4,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    batch_problems: int = 64,
    progress: bool = False,
) -> list[FilterRecord]:
    """K direct rollouts per problem, successes counted by ``verifier``
    (docs/paper-notes.md#filtering).

    Items are anything with ``prompt_ids`` and ``id`` (``Prompted``); ``batch_problems`` problems
    share ONE ``policy.sample`` call (``evaluate`` does the sampling, so filtering and
    evaluation count successes the same way). Output: one record per item, in item order.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    res = evaluate(
        policy, items, verifier, n_samples=k, ks=(1,), max_new_tokens=max_new_tokens,
        temperature=temperature, batch_problems=batch_problems, progress=progress,
        desc=f"pass1@{k}",
    )
    return [FilterRecord(str(i), int(c), k) for i, c in zip(res.ids, res.correct, strict=True)]


def hard_subset(
    items: Sequence[Any],
    records: Iterable[FilterRecord],
    delta: float = 0.25,
    strict: bool = False,
) -> list[Any]:
    """The items whose record passes :func:`keep`, in the order of ``items``.

    Every item needs a record: a missing id means the filter ran on other data (or an older
    subset), which must not silently drop or keep problems.
    """
    by_id = {r.id: r for r in records}
    missing = [str(it.id) for it in items if str(it.id) not in by_id]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise KeyError(
            f"{len(missing)} of {len(items)} items have no filter record (e.g. {shown}); "
            "was the filter file written for this data?"
        )
    return [it for it in items if keep(by_id[str(it.id)], delta, strict)]


def subset_from_file(items: Sequence[Any], path: str | Path) -> list[Any]:
    """The items a filter file keeps, in the order of ``items`` (the trainer's ``train_subset``).

    The file defines the subset: every id it holds must be among ``items`` (else it was written
    for other data, and a clear :class:`FilterFileError` says so); items it does not mention are
    not trained on (a later round's file covers only the previous hard subset,
    docs/paper-notes.md#rounds).
    """
    header, records = read_filter(path)
    by_id = {str(it.id): it for it in items}
    foreign = [r.id for r in records if r.id not in by_id]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise FilterFileError(
            f"{path}: {len(foreign)} of {len(records)} problem ids are not in the training "
            f"data (e.g. {shown}); was this filter written for other levels or splits?"
        )
    kept = {r.id for r in records if keep(r, header.delta, header.strict)}
    out = [it for it in items if str(it.id) in kept]
    if not out:
        raise FilterFileError(f"{path}: keeps no problem (all {len(records)} are solved more "
                              f"often than delta={header.delta})")
    return out


def filter_file(
    policy: Policy,
    model: Any,
    items: Sequence[Any],
    verifier: Callable[[Any, list[int]], Verdict],
    path: str | Path,
    k: int = 4,
    delta: float = 0.25,
    strict: bool = False,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    config: Mapping[str, Any] | None = None,
    progress: bool = False,
    reuse: bool = False,
) -> tuple[FilterHeader, list[FilterRecord]]:
    """Pass1@K of ``policy`` (whose weights are ``model``) on ``items``, written to ``path``.

    What ``dslib filter`` and each round of ``dslib rounds`` run (docs/paper-notes.md#filtering,
    #rounds). The header records the model fingerprint, K, delta, strictness and ``config`` (data
    source, sampling settings), so a file says which weights decided which problems are hard.

    ``reuse``: a file already at ``path`` is returned instead of sampling again when its
    header and problem ids match this call (:func:`stale_fields`); otherwise a warning names
    the file and what differs, and the problems are filtered again.
    """
    header = FilterHeader(model_fingerprint(model), k, delta, strict,
                          dict(config or {}, max_new_tokens=max_new_tokens,
                               temperature=temperature, problems=len(items)))
    if reuse and Path(path).exists():
        differs = stale_fields(path, header, [str(it.id) for it in items])
        if not differs:
            return read_filter(path)
        warnings.warn(f"{path}: written for another model, data or settings "
                      f"({'; '.join(differs)}); filtering again", stacklevel=2)
    records = pass1_at_k(policy, items, verifier, k=k, max_new_tokens=max_new_tokens,
                         temperature=temperature, progress=progress)
    write_filter(path, records, header)
    return header, records


def stale_fields(path: str | Path, expected: FilterHeader, ids: Sequence[str]) -> list[str]:
    """What makes the filter file at ``path`` unfit for ``expected`` and these problem ``ids``:
    ``"field: file -> expected"`` per differing header field (``model_fingerprint``, ``k``,
    ``delta``, ``strict``, ``config.KEY``), ``"problem ids"``, or why it is unreadable.
    Empty: the file is a valid cache of exactly this filter."""
    try:
        header, records = read_filter(path)
    except (OSError, FilterFileError) as err:
        return [f"unreadable: {err}"]
    found, want = _as_json(header.to_dict()), _as_json(expected.to_dict())
    config_found, config_want = found.pop("config"), want.pop("config")
    out = [f"{key}: {found.get(key)!r} -> {want[key]!r}" for key in want
           if found.get(key) != want[key]]
    out += [f"config.{key}: {config_found.get(key)!r} -> {config_want.get(key)!r}"
            for key in sorted(set(config_found) | set(config_want))
            if config_found.get(key) != config_want.get(key)]
    if sorted(r.id for r in records) != sorted(ids):
        out.append("problem ids")
    return out


def _as_json(obj: Any) -> Any:
    """``obj`` as JSON reads it back (tuples become lists), for comparisons with a file."""
    return json.loads(json.dumps(obj))


# ----------------------------------------------------------------------------- file format


@dataclass
class FilterHeader:
    """First line of a filter file (module docstring table)."""

    model_fingerprint: str
    k: int
    delta: float = 0.25
    strict: bool = False
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION,
                "model_fingerprint": self.model_fingerprint, "config": dict(self.config),
                "k": self.k, "delta": self.delta, "strict": self.strict}


def _as_header(header: FilterHeader | Mapping[str, Any]) -> FilterHeader:
    if isinstance(header, FilterHeader):
        return header
    data = {k: v for k, v in header.items() if k not in ("format", "version")}
    return FilterHeader(**data)


def write_filter(
    path: str | Path,
    records: Iterable[FilterRecord],
    header: FilterHeader | Mapping[str, Any],
) -> Path:
    """Write header + one line per record; atomic (a temporary file, then ``os.replace``).

    ``kept`` is computed here from the header's delta/strict, so the file is self-consistent.
    A crash mid-write leaves any previous file at ``path`` untouched.
    """
    path = Path(path)
    head = _as_header(header)
    lines = [json.dumps(head.to_dict())]
    seen: set[str] = set()
    for r in records:
        if r.k != head.k:
            raise ValueError(f"record {r.id!r} has k={r.k}, the header says k={head.k}")
        if r.id in seen:
            raise ValueError(f"duplicate record id {r.id!r}")
        seen.add(r.id)
        lines.append(json.dumps({"id": r.id, "successes": r.successes, "k": r.k,
                                 "kept": keep(r, head.delta, head.strict)}))
    atomic_write(path, "\n".join(lines) + "\n")
    return path


def read_filter(path: str | Path) -> tuple[FilterHeader, list[FilterRecord]]:
    """Parse a filter file; any problem is a :class:`FilterFileError` naming file and line."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not any(line.strip() for line in lines):
        raise FilterFileError(f"{path}: empty file, expected a {FORMAT!r} header line")
    head_data = _json_line(path, 1, lines[0])
    if not isinstance(head_data, dict) or head_data.get("format") != FORMAT:
        tag = head_data.get("format") if isinstance(head_data, dict) else None
        raise FilterFileError(
            f"{path}:1: not a dslib filter file (format {tag!r}, expected {FORMAT!r})"
        )
    if head_data.get("version") != FORMAT_VERSION:
        raise FilterFileError(
            f"{path}:1: unknown filter file version {head_data.get('version')!r} "
            f"(this dslib reads version {FORMAT_VERSION})"
        )
    try:
        header = _as_header(head_data)
        header.k, header.delta = _int(header.k), float(header.delta)
        if not isinstance(header.strict, bool):
            raise TypeError(f"strict must be true/false, got {header.strict!r}")
    except (TypeError, ValueError) as e:
        raise FilterFileError(f"{path}:1: bad header: {e}") from e
    records: list[FilterRecord] = []
    seen: set[str] = set()
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = _json_line(path, no, line)
        try:
            rec = FilterRecord(str(row["id"]), _int(row["successes"]), _int(row["k"]))
            kept = row["kept"]
        except (KeyError, TypeError, ValueError) as e:
            raise FilterFileError(f"{path}:{no}: bad record {line[:80]!r}: {e!r}") from e
        if rec.k != header.k:
            raise FilterFileError(f"{path}:{no}: k={rec.k} but the header says k={header.k}")
        if kept != keep(rec, header.delta, header.strict):
            raise FilterFileError(f"{path}:{no}: kept={kept!r} contradicts successes/k and the "
                                  f"header's delta={header.delta}, strict={header.strict}")
        if rec.id in seen:
            raise FilterFileError(f"{path}:{no}: duplicate id {rec.id!r}")
        seen.add(rec.id)
        records.append(rec)
    return header, records


def _json_line(path: Path, no: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise FilterFileError(f"{path}:{no}: corrupt line (not JSON: {e.msg})") from e


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
