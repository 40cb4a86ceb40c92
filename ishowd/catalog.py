"""The one place that knows every plug-in: it assembles the config schema and the metric
registry from the modules that declare them, and hands out the collector and task classes.

As telegraf's ``plugins/inputs/all`` does, this module lists each plug-in by an
import of its own; nothing below it (``config``, ``metrics``, the store, the
plug-in packages themselves) imports a plug-in. The declarations
(``settings``, ``ishowd/specs/``, ``alerts.rules``) are plain data and cheap to
import, so ``ishowctl`` gets the whole schema and registry without importing
the code that reads the hardware; only the daemon calls ``collectors()`` and
``tasks()``.

Adding a source: its metrics (and keys) in a module of ``ishowd/specs/``, its
collector in ``ishowd/collectors/``, and one line in each list below.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

from . import config as _config
from .metrics import Registry


def _declaring_modules() -> tuple:
    """Every module with ``KEYS``/``TABLES``/``CHECKS``/``METRICS`` declarations."""
    from . import settings
    from .alerts import rules
    from .specs import backend, clocks, cpufreq, daemon, deployment, engines, fan, gpu, host, power, procfs, thermal
    from . import jobs
    return (settings, host, procfs, thermal, fan, power, gpu, clocks, cpufreq, engines, backend, daemon, rules,
            deployment, jobs, *_job_modules())


def _job_modules() -> tuple:
    """Each maintenance job's module: it declares its keys beside its code (and imports only the
    standard library at the top, so reading the declarations stays cheap)."""
    from .jobs import audit, backup, benchmark, leak_check, outdated, rotate_logs
    return (audit, backup, benchmark, leak_check, outdated, rotate_logs)


@lru_cache(maxsize=None)
def schema() -> _config.Schema:
    """The config schema of every section, and the registry of every metric, assembled once."""
    registry = Registry()
    out = _config.Schema(metrics=registry)
    for module in _declaring_modules():
        where = module.__name__
        out.add(where, getattr(module, "KEYS", None), getattr(module, "TABLES", None),
                getattr(module, "CHECKS", ()))
        registry.add(getattr(module, "METRICS", ()), where)
    return out


def registry() -> Registry:
    """Every declared metric by name."""
    return schema().metrics


def metric(name: str):
    """One declared metric, or None."""
    return registry().get(name)


def load_config(explicit: Optional[str] = None) -> _config.Config:
    """Find and load the configuration against the whole schema (``ConfigError`` on a bad file)."""
    return _config.load(explicit, schema())


def loads_config(text: str, file: str = "<string>") -> _config.Config:
    return _config.loads(text, file, schema())


def collectors() -> dict:
    """Every collector class by name (imports the collector modules: the daemon's business)."""
    from .collectors import (REGISTRY, backend, cpufreq, engines, fan, gpu_memory, host, jetson_gpu,  # noqa: F401
                             jtop, nvml, nvpmodel, power, procfs, thermal)
    return dict(REGISTRY.classes)


def jobs() -> dict:
    """Every maintenance job class by name."""
    from .jobs import REGISTRY
    _job_modules()
    return dict(REGISTRY.classes)


def tasks() -> dict:
    """Every task class by name."""
    from .tasks import REGISTRY, alerts, log_ingest  # noqa: F401
    return dict(REGISTRY.classes)
