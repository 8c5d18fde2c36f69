"""Optuna search over plasticity hyperparameters, the Optuna mirror of runs, and the dashboard.

Example:
    >>> from evo.search import load_space
    >>> sorted(load_space("search_spaces/plasticity.yaml").parameters)[:1]  # doctest: +SKIP
"""

import sys
from types import ModuleType
from typing import Any

from evo.search.dashboard import dashboard_server, dashboard_url, serve_dashboard
from evo.search.driver import PruningReporter, SearchResult, best_trial, export_best, search, summarize, task_objectives
from evo.search.mirror import OptunaMirror, architecture_params, changed_settings, run_study_name, setting_params
from evo.search.overrides import apply_params, check_space
from evo.search.space import CategoricalParam, FloatParam, FunctionSpace, IntParam, SearchSpace, YamlSpace, load_space, parse_space
from evo.search.study import DEFAULT_STORAGE, make_pruner, make_sampler, open_storage, open_study, recover_orphans

__all__ = [
    "DEFAULT_STORAGE",
    "CategoricalParam",
    "FloatParam",
    "FunctionSpace",
    "IntParam",
    "OptunaMirror",
    "PruningReporter",
    "SearchResult",
    "SearchSpace",
    "YamlSpace",
    "apply_params",
    "architecture_params",
    "best_trial",
    "changed_settings",
    "check_space",
    "dashboard_server",
    "dashboard_url",
    "export_best",
    "load_space",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_study",
    "parse_space",
    "recover_orphans",
    "run_study_name",
    "search",
    "serve_dashboard",
    "setting_params",
    "summarize",
    "task_objectives",
]


class _CallableModule(ModuleType):
    """``evo.search`` is this subpackage and also the function ``evo.search(config, space, ...)`` (:func:`evo.api.search`)."""

    def __call__(self, config: Any, space: Any, **kwargs: Any) -> SearchResult:
        from evo.api import search as api_search

        return api_search(config, space, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
