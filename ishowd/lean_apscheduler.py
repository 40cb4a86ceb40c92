"""APScheduler 3, imported without the parts of it the daemon does not use.

Importing APScheduler's scheduler brings asyncio, multiprocessing with the process pool, and
importlib.metadata: 3.2 MB of the idle daemon's 31, for a coroutine test, an executor and
plugin names the daemon never uses. ``import_apscheduler()`` imports it with stand-ins for
those (``_stand_ins()`` says what each is and why it answers as the real one would), then takes
them out of ``sys.modules``: a later import of any of those modules gets the real one.
``ishowd/schedule.py`` calls it before it imports APScheduler; nothing else imports APScheduler.
"""
from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping


class _Deferred(types.ModuleType):
    """Stands in for a module APScheduler imports for a part of it the daemon never uses: an
    attribute asked of it later is the real module's, imported then."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(importlib.import_module(self.__name__), name)


def _stand_ins() -> dict:
    """What APScheduler 3 imports that the daemon does not use, and what stands in for it during
    that import (the memory each costs the idle daemon, measured in the running daemon):

    - asyncio (1.5 MB with what it imports), before Python 3.14 for ``iscoroutinefunction`` alone.
      The stand-in answers as asyncio's function does: without asyncio loaded, no function can
      carry asyncio's coroutine marker, so ``inspect``'s answer is asyncio's; once asyncio is
      loaded for real, it asks asyncio.
    - importlib.metadata (1 MB: zipfile, csv, email's header parsing), for APScheduler's own
      version and its plugin tables (the names ``add_job(trigger="cron")`` and the like resolve),
      both read while it is imported. The daemon hands it objects, never names. The stand-in finds
      nothing; ``_defer_metadata`` then makes both read the real importlib.metadata when first
      asked, so they answer as they would have.
    - multiprocessing and concurrent.futures.process (0.8 MB, pickle among them), for its
      process-pool executor; the daemon runs its jobs in a thread pool (``JobPool``). An attribute
      of multiprocessing asked later (the process pool's start) imports the real one.
      ``BrokenProcessPool`` is only named in the process pool's ``except``: a class of the same
      standing (a broken executor) stands in, so that pool, were it used here, would report a
      broken pool instead of replacing it.
    """
    import concurrent.futures
    import inspect

    def iscoroutinefunction(func) -> bool:
        real = sys.modules.get("asyncio")
        if real is not None and real is not asyncio:
            return real.iscoroutinefunction(func)
        return inspect.iscoroutinefunction(func)

    asyncio = types.ModuleType("asyncio", "stands in for asyncio while APScheduler is imported")
    asyncio.iscoroutinefunction = iscoroutinefunction
    process = types.ModuleType("concurrent.futures.process", "stands in while APScheduler is imported")
    process.BrokenProcessPool = type("BrokenProcessPool", (concurrent.futures.BrokenExecutor,),
                                     {"__module__": process.__name__})
    metadata = types.ModuleType("importlib.metadata", "stands in while APScheduler is imported")
    metadata.PackageNotFoundError = not_found = type("PackageNotFoundError", (ModuleNotFoundError,), {})

    def version(name: str) -> str:
        raise not_found(name)

    metadata.version = version
    metadata.entry_points = lambda **params: ()
    out = {"concurrent.futures.process": process, "multiprocessing": _Deferred("multiprocessing"),
           "importlib.metadata": metadata}
    if sys.version_info < (3, 14):
        out["asyncio"] = asyncio
    return out


class _Plugins(Mapping):
    """One of APScheduler's plugin tables (name: entry point), read from importlib.metadata when
    first asked."""

    def __init__(self, group: str):
        self.group, self._table = group, None

    def _read(self) -> dict:
        if self._table is None:
            from importlib.metadata import entry_points
            self._table = {ep.name: ep for ep in entry_points(group=self.group)}
        return self._table

    def __getitem__(self, name):
        return self._read()[name]

    def __iter__(self):
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


def _version_attribute(name: str):
    """APScheduler's ``version``, ``__version__``, ``version_info`` and ``release``, from its
    distribution's metadata, as its ``__init__`` reckons them."""
    if name not in ("version", "__version__", "version_info", "release"):
        raise AttributeError(f"module 'apscheduler' has no attribute {name!r}")
    from importlib import metadata
    try:
        release = metadata.version("APScheduler").split("-")[0]
    except metadata.PackageNotFoundError:
        release = "3.5.0"
    info = tuple(int(x) if x.isdigit() else x for x in release.split("."))
    return {"release": release, "version_info": info}.get(name, ".".join(str(x) for x in info[:3]))


def _defer_metadata() -> None:
    """After an import under the importlib.metadata stand-in: what APScheduler read from it is
    read from the real module when first asked (module ``__getattr__``, lazy plugin tables)."""
    import apscheduler
    from apscheduler.schedulers.base import BaseScheduler
    tables = ("_trigger_plugins", "_executor_plugins", "_jobstore_plugins")
    if not all(isinstance(vars(BaseScheduler).get(t), dict) for t in tables):
        raise AttributeError("APScheduler's plugin tables are not where they were")
    for table, group in zip(tables, ("apscheduler.triggers", "apscheduler.executors", "apscheduler.jobstores")):
        setattr(BaseScheduler, table, _Plugins(group))
    for name in ("version", "__version__", "version_info", "release"):
        vars(apscheduler).pop(name, None)
    apscheduler.__getattr__ = _version_attribute


def import_apscheduler() -> None:
    """Import APScheduler with ``_stand_ins()`` in ``sys.modules`` for the modules it would bring
    and the daemon does not use. They are there during that import only: any later import of
    those modules gets the real ones. One already imported for real is left as it is; should an
    APScheduler release want more of them at import, it is imported again the ordinary way."""
    if "apscheduler" in sys.modules:
        return
    placed = {name: mod for name, mod in _stand_ins().items() if name not in sys.modules}
    sys.modules.update(placed)
    try:
        import apscheduler.executors.pool  # noqa: F401
        import apscheduler.schedulers.blocking  # noqa: F401
        import apscheduler.util  # noqa: F401
        if "importlib.metadata" in placed:
            _defer_metadata()
    except (ImportError, AttributeError):
        for name in [n for n in sys.modules if n == "apscheduler" or n.startswith("apscheduler.")]:
            del sys.modules[name]
    finally:
        for name, mod in placed.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]
