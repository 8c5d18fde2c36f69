"""BackendConfig validation, make_backend, and the Ray backend's settings (no Ray started here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import evo
from evo.backends import BackendConfig, RayBackend, SerialBackend, make_backend
from evo.backends.ray import worker_device
from evo.backends.stats import StatsMeter


def test_defaults_serve_a_first_run() -> None:
    cfg = BackendConfig()
    assert (cfg.kind, cfg.address, cfg.workers, cfg.num_cpus, cfg.num_gpus) == ("ray", None, 0, 1.0, 0.0)
    assert cfg.max_retries > 0 and cfg.timeout_s == 0 and cfg.ship_code == "auto" and cfg.evals_per_task == "auto"
    assert BackendConfig(evals_per_task=8).evals_per_task == 8


@pytest.mark.parametrize("bad", [{"kind": "dask"}, {"num_cpus": 0}, {"num_gpus": -0.5}, {"workres": 2},
                                 {"address": "http://head"}, {"ship_code": "sometimes"},
                                 {"evals_per_task": 0}, {"evals_per_task": "many"}])
def test_bad_values_fail(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BackendConfig(**bad)


@pytest.mark.parametrize("address", ["auto", "local", "10.0.0.1:6379", "head-node:6379", "ray://head.example:10001"])
def test_addresses_accepted(address: str) -> None:
    assert BackendConfig(address=address).address == address


def test_make_backend_builds_without_starting_ray() -> None:
    assert isinstance(make_backend(BackendConfig(kind="serial")), SerialBackend)
    backend = make_backend(BackendConfig(workers=3, num_gpus=0.25, timeout_s=5, max_retries=1, evals_per_task=4))
    assert isinstance(backend, RayBackend)
    assert (backend.workers, backend.num_gpus, backend.timeout_s, backend.max_retries) == (3, 0.25, 5, 1)
    assert backend.evals_per_task == 4
    assert not ray.is_initialized()


def test_local_instance_is_sized_from_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    kwargs = RayBackend(workers=3, num_cpus=0.5).init_kwargs()
    assert kwargs["address"] == "local" and kwargs["num_cpus"] == 2 and kwargs["include_dashboard"] is False
    assert kwargs["log_to_driver"] is False and kwargs["runtime_env"] is None  # local workers import evo themselves


def test_cluster_address_ships_the_evo_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    backend = RayBackend(runtime_env={"env_vars": {"A": "1"}, "py_modules": ["/x"]})
    kwargs = backend.init_kwargs()
    assert kwargs["address"] == "head:6379" and "num_cpus" not in kwargs
    assert kwargs["runtime_env"]["env_vars"] == {"A": "1"}
    assert kwargs["runtime_env"]["py_modules"] == ["/x", str(Path(evo.__file__).resolve().parent)]
    assert "py_modules" not in RayBackend(ship_code="never").worker_env()
    assert RayBackend(address="local", ship_code="always").worker_env()["py_modules"]


@pytest.mark.parametrize("bad", [{"num_cpus": 0}, {"workers": -1}, {"timeout_s": -1}, {"ship_code": "maybe"},
                                 {"evals_per_task": 0}, {"evals_per_task": "many"}])
def test_ray_backend_rejects_bad_arguments(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="RayBackend"):
        RayBackend(**bad)  # type: ignore[arg-type]


def test_keywords_are_checked_by_the_config_rules() -> None:
    options = {"workers": 3, "num_cpus": 0.5, "timeout_s": 2.0, "evals_per_task": 4, "runtime_env": {"pip": ["x"]}}
    direct, built = RayBackend(**options), RayBackend.from_config(BackendConfig(**options))
    assert vars(direct).keys() == vars(built).keys()
    assert all(getattr(direct, k) == getattr(built, k) for k in ("workers", "num_cpus", "timeout_s", "evals_per_task",
                                                                  "runtime_env", "max_retries", "ship_code"))
    with pytest.raises(ValueError, match="RayBackend workres: Extra inputs"):  # a misspelt option is named
        RayBackend(workres=2)
    assert SerialBackend.from_config(BackendConfig(kind="serial", num_cpus=2.5, device="cpu")).threads == 2


@settings(max_examples=30, deadline=None)
@given(st.permutations(["0", "1", "2", "3"]), st.integers(0, 3))
def test_worker_device_is_the_position_among_visible_gpus(visible: list[str], pos: int) -> None:
    assert worker_device([int(visible[pos])], ",".join(visible)) == f"cuda:{pos}"


def test_worker_device_without_gpus_or_visibility() -> None:
    assert worker_device([], "0,1") == "cpu"
    assert worker_device([2], None) == "cuda:2"


def test_stats_meter_counts() -> None:
    meter = StatsMeter()
    meter.begin()
    meter.in_flight, meter.queued = 2, 3
    meter.finished(True, "node-a")
    assert meter.snapshot().in_flight == 1
    meter.finished(False, "node-a")
    meter.end()
    snap = meter.snapshot()
    assert (snap.in_flight, snap.queued, snap.completed, snap.failed) == (0, 0, 2, 1)
    assert dict(snap.nodes) == {"node-a": 2}
    assert snap.evaluations_per_second > 0


def test_fractional_gpus_share_one_gpu_and_reach_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    from evo.backends import ray as ray_module

    backend = make_backend(BackendConfig(workers=4, num_gpus=0.25))
    assert isinstance(backend, RayBackend)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 1.0})
    assert backend._slots() == 4  # four evaluations at once on the one GPU
    submitted: list[dict[str, object]] = []

    class Options:
        def __init__(self, **options: object) -> None:
            submitted.append(options)

        def remote(self, *args: object) -> list[object]:
            return [object() for _ in range(int(submitted[-1]["num_returns"]))]  # type: ignore[call-overload]

    monkeypatch.setattr(ray_module._remote_evaluate, "options", Options)
    running: dict[object, object] = {}
    backend._submit(object(), (), running)  # type: ignore[arg-type]
    assert submitted[0]["num_gpus"] == 0.25 and submitted[0]["num_cpus"] == 1.0 and len(running) == 1
    assert ray_module._remote_evaluate._max_calls == 0  # workers are reused: their data stays on their GPU
