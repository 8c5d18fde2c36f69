"""The serial backend passes the backend contract."""

from __future__ import annotations

import pytest

from evo.backends import SerialBackend
from evo.testing import BackendContract


class TestSerialContract(BackendContract):
    @pytest.fixture
    def backend(self) -> SerialBackend:
        return SerialBackend()
