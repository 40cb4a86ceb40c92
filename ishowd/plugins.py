"""Plug-in registries: a package whose modules register classes by their ``name``.

Collectors (``ishowd.collectors``) and tasks (``ishowd.tasks``) both work this
way, as node_exporter's collectors do: adding a source is adding a module.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, package: str, what: str):
        self.package, self.what = package, what
        self.classes: dict[str, type[T]] = {}
        self._loaded = False

    def register(self, cls: type[T]) -> type[T]:
        name = getattr(cls, "name", "")
        if not name:
            raise ValueError(f"{cls.__name__} has no name")
        if name in self.classes and self.classes[name] is not cls:
            raise ValueError(f"{self.what} {name!r} registered twice")
        self.classes[name] = cls
        return cls

    def load_all(self) -> dict[str, type[T]]:
        """Import every module of the package not starting with "_" (they register themselves)."""
        if not self._loaded:
            pkg = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(pkg.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")
            self._loaded = True
        return self.classes
