"""Optuna over runs: the search of plasticity hyperparameters (one trial = one run), the Optuna mirror of
runs, and the dashboard. :func:`evo.search` is the notebook's way in; :func:`run_search` the driver it calls.

Example:
    >>> from evo.tuning import load_space
    >>> sorted(load_space("search_spaces/plasticity.yaml").parameters)[:1]  # doctest: +SKIP
"""

from evo.tuning.dashboard import dashboard_server, dashboard_url, serve_dashboard
from evo.tuning.driver import PruningReporter, SearchResult, best_trial, export_best, run_search, summarize, task_objectives
from evo.tuning.mirror import OptunaMirror, architecture_params, changed_settings, run_study_name, setting_params
from evo.tuning.overrides import apply_params, check_space
from evo.tuning.space import CategoricalParam, FloatParam, FunctionSpace, IntParam, SearchSpace, YamlSpace, load_space, parse_space
from evo.tuning.study import DEFAULT_STORAGE, make_pruner, make_sampler, open_storage, open_study, recover_orphans

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
    "run_search",
    "run_study_name",
    "serve_dashboard",
    "setting_params",
    "summarize",
    "task_objectives",
]

