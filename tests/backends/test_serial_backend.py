"""The serial backend passes the backend contract."""

from __future__ import annotations

import pytest

from evo.backends import SerialBackend
from evo.testing import BackendContract


class TestSerialContract(BackendContract):
    @pytest.fixture
    def backend(self) -> SerialBackend:
        return SerialBackend()


def test_serial_backend_uses_its_thread_share_and_restores_torch() -> None:
    import torch

    from evo.backends import SerialBackend
    from evo.testing import ToyTask, make_jobs

    before = torch.get_num_threads()
    evaluations = list(SerialBackend(threads=1).map(ToyTask(), make_jobs(2)))
    assert [e.metrics["threads"] for e in evaluations] == [1.0, 1.0]
    assert torch.get_num_threads() == before
