"""vLLM backend tests: their own directory, so they run in their own process and venv.

Run them with ``.venv-vllm/bin/python -m pytest -q tests/vllm_backend`` (the venv of
``reference/vllm-on-cpu.md``). The main suite never collects this directory
(``collect_ignore`` in ``tests/conftest.py``): an in-process vLLM engine makes
``torch.set_num_threads`` a no-op and sets ``LD_PRELOAD`` for the rest of the process. Where
vLLM is not importable, every test here is skipped with the install command as the reason.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _vllm_installed() -> bool:
    spec = importlib.util.find_spec("vllm")
    # a bare directory named vllm on sys.path would be found as a namespace package (no origin)
    return spec is not None and spec.origin is not None


VLLM_MISSING = not _vllm_installed()
REASON = (
    "vLLM is not installed in this venv: build .venv-vllm (`make venv-vllm`, see "
    "reference/vllm-on-cpu.md) and run `.venv-vllm/bin/python -m pytest -q tests/vllm_backend`"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not VLLM_MISSING:
        return
    skip = pytest.mark.skip(reason=REASON)
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)
