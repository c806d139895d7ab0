"""A new, randomly initialised Qwen2 causal LM from sizes alone (no download).

The tiny reasoner (:func:`dslib.tiny.build_model`) and the 1.5B preset's dry run start from
it: Qwen2 is the architecture family of the paper's 1.5B model. Its source is part of the tiny
build's cache key (``tiny.BUILD_MODULES``): a change here is a new build.
"""

from __future__ import annotations

from typing import Any

from transformers import Qwen2Config, Qwen2ForCausalLM


def new_qwen2(vocab_size: int, eos_token_id: int, pad_token_id: int, **sizes: Any) -> Any:
    """A ``Qwen2ForCausalLM`` with tied embeddings, no BOS, and the generation config's EOS
    and pad set; ``sizes`` are ``Qwen2Config`` fields (hidden_size, num_hidden_layers, ...).
    Initialised from torch's global generator: seed it first for a reproducible model."""
    config = Qwen2Config(vocab_size=vocab_size, tie_word_embeddings=True, bos_token_id=None,
                         eos_token_id=eos_token_id, pad_token_id=pad_token_id, **sizes)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = eos_token_id
    model.generation_config.pad_token_id = pad_token_id
    model.generation_config.bos_token_id = None
    return model
