"""Shared by every test: one torch thread.

The networks under test are tiny; on a 2-core machine more threads only oversubscribe the
cores (training steps were measured 30–60× slower with the default).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    torch.set_num_threads(1)
