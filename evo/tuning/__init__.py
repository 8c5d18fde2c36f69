"""Optuna over runs: the search of plasticity hyperparameters (one trial = one run, through
:class:`evo.runner.Runner`) and the dashboard. :func:`evo.search` is the notebook's way in; :func:`run_search`
the driver it calls. The mirror of runs and the storage both share are :mod:`evo.mirror`'s.

Example:
    >>> from evo.tuning import load_space
    >>> sorted(load_space("search_spaces/plasticity.yaml").parameters)[:1]  # doctest: +SKIP
"""

from evo.tuning.dashboard import dashboard_server, dashboard_url, serve_dashboard
from evo.tuning.driver import PruningReporter, SearchResult, best_trial, export_best, run_search, summarize, task_objectives
from evo.tuning.overrides import apply_params, check_space
from evo.tuning.space import CategoricalParam, FloatParam, FunctionSpace, IntParam, SearchSpace, YamlSpace, load_space, parse_space
from evo.tuning.study import make_pruner, make_sampler, open_study, recover_orphans

__all__ = [
    "CategoricalParam",
    "FloatParam",
    "FunctionSpace",
    "IntParam",
    "PruningReporter",
    "SearchResult",
    "SearchSpace",
    "YamlSpace",
    "apply_params",
    "best_trial",
    "check_space",
    "dashboard_server",
    "dashboard_url",
    "export_best",
    "load_space",
    "make_pruner",
    "make_sampler",
    "open_study",
    "parse_space",
    "recover_orphans",
    "run_search",
    "serve_dashboard",
    "summarize",
    "task_objectives",
]

