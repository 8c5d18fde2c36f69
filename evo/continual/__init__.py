"""Life-long learning: task streams, evo's plastic continual learner, baselines and metrics.

:class:`evo.continual.task.ContinualTask` puts them behind the Task interface,
so evolution searches the starting architecture and the learner's knobs with
the end-of-stream average accuracy as fitness.
"""

from __future__ import annotations

from evo.continual._base import Learner, StreamResult, run_stream
from evo.continual.baselines import FineTune, Joint, PackNet, Progressive
from evo.continual.config import METHODS, ContinualTaskConfig, LearnerConfig
from evo.continual.learner import PlasticLearner
from evo.continual.metrics import ContinualMetrics, continual_metrics
from evo.continual.streams import Stream, StreamTask, build_stream, even_splits, permuted_stream, split_stream
from evo.genome import Genome

__all__ = [
    "LEARNERS",
    "ContinualMetrics",
    "ContinualTaskConfig",
    "FineTune",
    "Joint",
    "Learner",
    "LearnerConfig",
    "METHODS",
    "PackNet",
    "PlasticLearner",
    "Progressive",
    "Stream",
    "StreamResult",
    "StreamTask",
    "build_stream",
    "continual_metrics",
    "even_splits",
    "make_learner",
    "permuted_stream",
    "run_stream",
    "split_stream",
]

#: method name (``LearnerConfig.method``) → learner class.
LEARNERS: dict[str, type[Learner]] = {
    "plastic": PlasticLearner,
    "finetune": FineTune,
    "packnet": PackNet,
    "progressive": Progressive,
    "joint": Joint,
}


def make_learner(genome: Genome, cfg: LearnerConfig, seed: int = 0) -> Learner:
    """The learner ``cfg.method`` names, starting from ``genome``."""
    return LEARNERS[cfg.method](genome, cfg, seed)
