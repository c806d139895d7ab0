"""Shared fixtures: the tiny reasoner is built once per machine and cached (see dslib.tiny)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# The vLLM backend's tests run in their own process and venv
# (`.venv-vllm/bin/python -m pytest -q tests/vllm_backend`): an in-process vLLM engine makes
# torch.set_num_threads a no-op for the rest of the process. `pytest tests` skips the
# directory; naming it explicitly still collects it.
collect_ignore = ["vllm_backend"]


@pytest.fixture(scope="session")
def tiny_reasoner():
    """The default tiny reasoner (built on first use, ~2 minutes; cached afterwards).

    ``DSLIB_TINY_SET='seed=1'`` swaps in another build (:func:`dslib.tiny.default_config`):
    the tests must pass on any sane build, not only on the one they were written with.
    """
    from dslib import tiny

    return tiny.build(progress=False)


@pytest.fixture(scope="session")
def quick_reasoner(tmp_path_factory):
    """A deliberately under-trained tiny reasoner for mechanics tests (seconds to build)."""
    from dataclasses import replace

    from dslib import tiny

    cfg = replace(tiny.default_config(), sft_steps=60, problems_per_level=400)
    return tiny.build(
        cfg, evaluate=False, progress=False, cache_dir=tmp_path_factory.mktemp("cache")
    )
