"""The ``backend`` section of a run config (:func:`evo.backends.make_backend` turns it into a backend).

The section's rules live here only: each backend is built from a validated section (``from_config``), and
one built from keywords (``RayBackend(workers=2)``) has them checked by this model (:meth:`BackendConfig.checked`).

Example:
    >>> BackendConfig(kind="serial").num_cpus
    1.0
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evo.errors import ConfigError

__all__ = ["BackendConfig"]

_ADDRESS = re.compile(r"^(auto|local|(ray://)?[\w.\-]+:\d+)$")


class BackendConfig(BaseModel):
    """Where evaluations run: serially in this process, or on Ray (this machine or a cluster)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ray", "serial"] = Field(
        "ray", description="ray: parallel evaluations on a local Ray instance or a cluster; serial: one after "
        "another in this process (debugging).")
    address: str | None = Field(
        None, description="Ray cluster to join: auto (the cluster this machine belongs to), HOST:6379 (the head's "
        "GCS) or ray://HOST:10001 (Ray Client). Unset: the RAY_ADDRESS environment variable, else a local instance.")
    workers: int = Field(
        0, ge=0, description="Local instance only: evaluations run at once (it gets workers × num_cpus CPUs); "
        "0 = one per core. A cluster's size is its own.")
    num_cpus: float = Field(1.0, gt=0, description="CPUs reserved per evaluation; each worker (and the serial "
                            "backend) also sets torch.set_num_threads(max(1, int(num_cpus))).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per evaluation; fractions let several small networks "
                            "share one GPU (0.25 = four at once). The evaluation runs on the GPU it was given.")
    max_retries: int = Field(3, ge=0, description="Resubmissions of an evaluation whose worker process or node "
                             "died; after that it is recorded as failed.")
    timeout_s: float = Field(0.0, ge=0, description="Cancel an evaluation running longer than this and record it "
                             "as failed ('timed out after N s'); 0 = no limit.")
    max_in_flight: int = Field(0, ge=0, description="Most evaluations submitted at once (bounds the object "
                               "store and queueing); 0 = two batches (evals_per_task) per evaluation slot.")
    evals_per_task: int | Literal["auto"] = Field(
        "auto", description="Ray only: evaluations sent to a worker together as one Ray task, so Ray's per-task "
        "cost (a few ms) is paid once per batch; a lost worker reruns its batch, and a batch times out after "
        "timeout_s per evaluation in it. auto: a generation's evaluations // (4 × evaluation slots; 2 with a single "
        "slot), at least 1 (1 when timeout_s is set). Raise it (e.g. 8) when evaluations take milliseconds "
        "(small control policies).")
    ship_code: Literal["auto", "always", "never"] = Field(
        "auto", description="Send the evo package to the workers as a Ray runtime environment (py_modules), so "
        "cluster nodes need only the dependencies installed. auto: when joining a cluster.")
    runtime_env: dict[str, Any] = Field(
        default_factory=dict, description="Extra Ray runtime_env entries for the workers, e.g. {pip: [...], "
        "env_vars: {...}, working_dir: ...}.")
    worker_logs: bool = Field(False, description="Forward the workers' stdout/stderr to this terminal.")
    device: str = Field("cpu", description="Serial backend only: the torch device evaluations run on.")

    @field_validator("evals_per_task", mode="before")
    @classmethod
    def _check_evals_per_task(cls, value: object) -> object:
        if value == "auto" or (type(value) is int and value >= 1):
            return value
        raise ValueError("must be an integer >= 1 or auto")

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError("must be auto, local, HOST:PORT or ray://HOST:PORT")
        return value

    @classmethod
    def checked(cls, owner: str, **options: Any) -> BackendConfig:
        """``options`` validated by this model's rules; the first problem is one :class:`ConfigError` naming
        ``owner`` and the field (``RayBackend num_cpus: ...``)."""
        try:
            return cls(**options)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "options"
            raise ConfigError(f"{owner} {field}: {first['msg']} (got {first.get('input')!r})") from None

