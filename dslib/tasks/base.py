"""Glue between a text task and the token-level search/trainer: prompts in, verdicts out.

``search.run`` and ``evaluate`` see problems only as :class:`Prompted` items (anything with
``prompt_ids``) and a verifier ``(item, response_ids) -> Verdict``; this module builds both
from a tokenizer with a chat template and a task's text-level ``verify(problem, text)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dslib.verify import Verdict


@dataclass
class Prompted:
    """A problem together with its tokenised chat prompt."""

    problem: Any
    prompt_ids: list[int]

    @property
    def id(self) -> str:
        return str(getattr(self.problem, "id", id(self.problem)))


def chat_prompt_ids(tokenizer: Any, user_text: str) -> list[int]:
    """Token ids of a one-turn chat prompt ending with the assistant header.

    The template is rendered to text and then encoded without extra special tokens, which
    behaves the same across transformers versions (``apply_chat_template(tokenize=True)``
    changed its return type in v5).
    """
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def prompt_all(
    tokenizer: Any, problems: Sequence[Any], prompt_text: Callable[[Any], str]
) -> list[Prompted]:
    """Wrap every problem with its chat prompt ids."""
    return [Prompted(p, chat_prompt_ids(tokenizer, prompt_text(p))) for p in problems]


class TokenVerifier:
    """Decode a response (special tokens dropped) and check it with a text-level verifier."""

    def __init__(self, tokenizer: Any, verify_text: Callable[[Any, str], Verdict]) -> None:
        self.tokenizer = tokenizer
        self.verify_text = verify_text

    def __call__(self, item: Prompted, response_ids: Sequence[int]) -> Verdict:
        text = self.tokenizer.decode(list(response_ids), skip_special_tokens=True)
        return self.verify_text(item.problem, text)
