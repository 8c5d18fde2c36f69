"""The Ray backend on a two-node cluster on localhost: spread over nodes, lost workers and a lost node."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from evo.backends import RayBackend
from evo.testing import CrashOnceTask, ToyTask, make_jobs

pytestmark = pytest.mark.ray

#: Fast failure detection so a removed node is noticed in about a second, not half a minute.
_FAST_DETECTION = {"health_check_period_ms": 200, "health_check_failure_threshold": 3,
                   "health_check_initial_delay_ms": 0}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head and a worker node, one CPU each, joined through the head's address (as on a real cluster)."""
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": _FAST_DETECTION})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def backend(cluster: Cluster) -> Iterator[RayBackend]:
    backend = RayBackend(address=cluster.address, max_retries=2)  # ships the evo package (ship_code auto)
    yield backend
    backend.close()


def test_evaluations_spread_over_both_nodes(backend: RayBackend) -> None:
    evaluations = list(backend.map(ToyTask(sleep_s=0.3), make_jobs(6, seed=20)))
    assert sorted(e.individual_id for e in evaluations) == list(range(6))
    assert all(e.ok for e in evaluations)
    assert len(backend.stats().nodes) == 2


def test_killed_worker_is_retried_and_yielded_once(backend: RayBackend, tmp_path: Path) -> None:
    retries = backend.stats().retries
    jobs = make_jobs(2, seed=21)
    evaluations = list(backend.map(CrashOnceTask(tmp_path), jobs))  # every first attempt kills its worker
    assert sorted(e.individual_id for e in evaluations) == [j.individual_id for j in jobs]
    assert all(e.ok for e in evaluations)
    assert backend.stats().retries - retries == 2
    assert len(list(tmp_path.iterdir())) == 2


def _wait_until_running(running: Path, pids: set[int], timeout_s: float = 5.0) -> set[int]:
    """Those of ``pids`` that are mid-evaluation (hold a marker in ``running``, see ToyTask), once there are
    any; an empty set after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if busy := {int(marker.name.split("-")[1]) for marker in running.iterdir()} & pids:
            return busy
        time.sleep(0.02)
    return set()


def test_removed_node_mid_map_jobs_finish_once(cluster: Cluster, backend: RayBackend, tmp_path: Path) -> None:
    worker_node = next(n for n in cluster.list_all_nodes() if n is not cluster.head_node)
    counts, retries = dict(backend.stats().nodes), backend.stats().retries
    jobs = make_jobs(10, seed=22)
    done: set[int] = set()
    worker_pids: set[int] = set()
    removed = False
    for evaluation in backend.map(ToyTask(sleep_s=0.5, running_dir=tmp_path), jobs):
        assert evaluation.ok, evaluation.error
        done.add(jobs[evaluation.individual_id].seed)
        now = dict(backend.stats().nodes)
        if now.get(worker_node.node_id, 0) > counts.get(worker_node.node_id, 0):  # this one ran on the worker node
            worker_pids.add(int(evaluation.metrics["pid"]))
        counts = now
        if not removed and worker_pids and (busy := _wait_until_running(tmp_path, worker_pids)):
            cluster.remove_node(worker_node, allow_graceful=False)
            for pid in busy:  # a dead node's processes die with it; a worker left alone may finish and report
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            removed = True
    assert removed
    assert sorted(done) == sorted(j.seed for j in jobs) and len(done) == 10
    assert backend.stats().retries - retries >= 1
