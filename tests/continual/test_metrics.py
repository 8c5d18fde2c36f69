"""ACC, BWT and forgetting on constructed accuracy matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.continual.metrics import continual_metrics


def test_metrics_of_a_constructed_matrix() -> None:
    r = np.array([
        [0.9, np.nan, np.nan],
        [0.6, 0.8, np.nan],
        [0.7, 0.5, 1.0],
    ])
    m = continual_metrics(r)
    assert m.acc == pytest.approx((0.7 + 0.5 + 1.0) / 3)
    assert m.bwt == pytest.approx(((0.7 - 0.9) + (0.5 - 0.8)) / 2)
    # forgetting uses the best earlier accuracy: task 0 peaked at 0.9, task 1 at 0.8
    assert m.forgetting == pytest.approx((0.2 + 0.3) / 2)
    assert m.max_forgetting == pytest.approx(0.3)
    assert m.as_dict("task_")["task_bwt"] == pytest.approx(-0.25)


def test_single_task_has_no_backward_transfer() -> None:
    m = continual_metrics(np.array([[0.75]]))
    assert m.acc == 0.75 and math.isnan(m.bwt) and math.isnan(m.max_forgetting)


def test_non_square_matrix_is_rejected() -> None:
    with pytest.raises(ValueError, match="square"):
        continual_metrics(np.zeros((2, 3)))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6).flatmap(lambda n: st.lists(st.floats(0, 1), min_size=n * n, max_size=n * n)))
def test_forgetting_bounds_backward_transfer(values: list[float]) -> None:
    n = int(round(math.sqrt(len(values))))
    m = continual_metrics(np.array(values).reshape(n, n))
    assert m.forgetting >= -m.bwt - 1e-12  # best earlier accuracy >= accuracy right after learning
    assert m.forgetting <= m.max_forgetting + 1e-12 <= 1.0 + 1e-12  # negative: later tasks helped
    assert 0.0 <= m.acc <= 1.0
