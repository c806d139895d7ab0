"""Dataclass configs. One dataclass per component, a docstring line per field (CleanRL style).

Defaults are the released code's / the paper's 1.5B recipe (reference file §6). Where the paper
and the code disagree (reference §11), the field's default is the CODE and the paper's variant
is the other value of the switch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

_GAMMA = ("code", "paper")
_BACKUP_RULE = ("constrained", "vanilla")
_BACKUP_TERMINALS = ("one", "all_correct")
_NEGATIVE_CHOICE = ("most_confident", "random", "least_confident")
_ENTROPY = ("sampled_nll", "shannon")
_BACKTRACE = ("global", "uct")
_DEPTH_BONUS = ("sqrt", "log", "linear")
#: names accepted for ``SearchConfig.step_boundary`` (the CLI cannot easily type a newline)
STEP_BOUNDARIES = {"line": "\n", "paragraph": "\n\n"}


def parse_assignment(item: str) -> tuple[str, Any]:
    """``"search.width=8"`` -> ``("search.width", 8)``: the value parsed as JSON (numbers,
    true/false, null, lists), else kept as a string. Used by every ``--set`` option."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {item!r}: expected KEY=VALUE")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"SearchConfig.{name} must be one of {allowed}, got {value!r}")


@dataclass
class SearchConfig:
    """Everything the tree search (``dslib.search.run``) needs; see reference §2-§3 and §6."""

    step_tokens: int = 256
    """tokens per node (one fixed-length chunk, not a semantic step; §2); with
    ``step_boundary``, the most a node may hold"""
    step_boundary: str | None = None
    """where a node ends early: None = fixed chunks of ``step_tokens`` (the released code,
    §2: a node is 256 sampled tokens, not a semantic step), "\\n" = at the end of a line
    (a countdown step), "\\n\\n" = at a paragraph break (math); the names "line" and
    "paragraph" are accepted. A node that stops there is not terminal (only EOS is)"""
    max_depth: int = 64
    """d_T: a child at this depth is terminal; the root is depth 0 (§2, §3.2)"""
    width: int = 8
    """expansion width: children generated per expansion (§3.2)"""
    n_trajectories: int = 8
    """stop a tree once this many backed-up trajectories are recorded (terminate_num, §3.9)"""
    temperature: float = 1.0
    """sampling temperature of the search's policy calls (§6)"""
    top_p: float = 1.0
    """nucleus sampling threshold of the search's policy calls (§6)"""
    incomplete_score: float = -1.0
    """terminal score of a depth-limit leaf without EOS and without an answer (§3.3, v4 Eq. 4)"""
    gamma_min: float = 0.1
    """floor of the depth-decay weight gamma(i, l) (backup_threshold; §3.6, v4 Eq. 3)"""
    gamma: str = "code"
    """depth-decay weight: "code" (d+1)/(L+1) or "paper" d/L (§3.6, §11 item 4)"""
    backup_rule: str = "constrained"
    """q update: "constrained" sign rule (v4 Eq. 5) or the Table-4 "vanilla" rule (§4.2)"""
    backup_terminals: str = "one"
    """back up "one" terminal per expansion (code) or "all_correct" (paper; §3.4, §11 item 2)"""
    negative_choice: str = "most_confident"
    """which wrong terminal is backed up: most_confident | random | least_confident (Table 5)"""
    entropy: str = "sampled_nll"
    """trajectory entropy: mean sampled-token NLL (code) or mean Shannon entropy (paper; §3.5)"""
    uct_c: float = 2.0
    """UCT exploration constant lambda (lambda_puct; §3.7)"""
    uct_deterministic: bool = True
    """UCT pick: argmax, first on ties (code) or sampling from softmax(UCT) (§3.7)"""
    backtrace: str = "global"
    """after a backup: "global" frontier (v4 Eq. 6-7) or "uct" one UCT step from the root (§3.8)"""
    lambda1: float = 0.4
    """frontier weight of tanh(Q(parent)), the quality potential (v4 Eq. 7)"""
    lambda2: float = 0.4
    """frontier weight of the chunk's mean NLL; used only when entropy_bonus is on (v4 Eq. 7)"""
    entropy_bonus: bool = False
    """add the uncertainty term lambda2 * H(chunk) to the frontier score (code default off; §3.8)"""
    lambda3: float = 0.01
    """frontier weight of the depth bonus D(d) (v4 Eq. 7)"""
    lambda4: float = 0.0
    """frontier weight of tanh(Q(s)) of the node itself; code only, applied when > 0 (§3.8)"""
    depth_bonus: str = "sqrt"
    """D(d): "sqrt" sqrt(d/d_T) (default), "log" log(d+1), "linear" d (the code's "constant")"""
    dynamic_width: tuple[int, int] | None = None
    """(min_width, decay_factor): width shrinks with depth (code only, off by default; §3.2)"""
    max_iterations: int = 10_000
    """safety cap on batched policy calls; hitting it flags the live trees exhausted"""
    seed: int = 0
    """seed of the driver's random.Random (softmax UCT, random negative choice)"""

    def __post_init__(self) -> None:
        if self.depth_bonus == "constant":  # the released code's name for the linear bonus
            self.depth_bonus = "linear"
        if isinstance(self.step_boundary, str):
            self.step_boundary = STEP_BOUNDARIES.get(self.step_boundary, self.step_boundary)
        if self.step_boundary is not None and (
            not isinstance(self.step_boundary, str) or not self.step_boundary
        ):
            raise ValueError(
                "SearchConfig.step_boundary must be None, a non-empty string or one of "
                f"{sorted(STEP_BOUNDARIES)}, got {self.step_boundary!r}"
            )
        _check_choice("gamma", self.gamma, _GAMMA)
        _check_choice("backup_rule", self.backup_rule, _BACKUP_RULE)
        _check_choice("backup_terminals", self.backup_terminals, _BACKUP_TERMINALS)
        _check_choice("negative_choice", self.negative_choice, _NEGATIVE_CHOICE)
        _check_choice("entropy", self.entropy, _ENTROPY)
        _check_choice("backtrace", self.backtrace, _BACKTRACE)
        _check_choice("depth_bonus", self.depth_bonus, _DEPTH_BONUS)
        for name in ("step_tokens", "max_depth", "width", "n_trajectories", "max_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SearchConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= self.gamma_min <= 1.0:
            raise ValueError(f"SearchConfig.gamma_min must be in [0, 1], got {self.gamma_min!r}")
        if self.temperature < 0.0:
            raise ValueError(f"SearchConfig.temperature must be >= 0, got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SearchConfig.top_p must be in (0, 1], got {self.top_p!r}")
        if self.dynamic_width is not None:
            if len(self.dynamic_width) != 2:
                raise ValueError(
                    "SearchConfig.dynamic_width must be None or (min_width, decay_factor), "
                    f"got {self.dynamic_width!r}"
                )
            min_width, decay = (int(v) for v in self.dynamic_width)
            if min_width < 1 or decay < 0:
                raise ValueError(
                    "SearchConfig.dynamic_width needs min_width >= 1 and decay_factor >= 0, "
                    f"got {self.dynamic_width!r}"
                )
            self.dynamic_width = (min_width, decay)  # lists from JSON/CLI become a tuple

    @classmethod
    def tiny(cls, **overrides: object) -> SearchConfig:
        """CPU preset: 8-token steps, depth 10, width 4, 4 trajectories; the rest default."""
        base = cls(step_tokens=8, max_depth=10, width=4, n_trajectories=4)
        return replace(base, **overrides) if overrides else base
