"""What collectors, tasks and jobs share: a name, a small lifecycle, and a registry per kind.

A part is constructed with the config, then ``setup()`` either prepares it
(discover paths, open handles) or returns the reason it does not apply on
this host (no NVML driver, no devfreq GPU, no log configured): the daemon
then skips it and says so once. ``close()`` releases what ``setup()`` took.
Each kind's package keeps one ``Registry``; its modules ``register`` their
classes, and ``ishowd/catalog.py`` is the one place that imports them.
"""
from __future__ import annotations

from typing import Generic, Optional, TypeVar

T = TypeVar("T")


class Part:
    #: short stable name: the ``collector`` label of the daemon's own metrics, a task's or job's name
    name: str = ""
    #: what the daemon's log calls it ("collector", "task", "job")
    kind: str = "part"

    def setup(self) -> Optional[str]:
        """Prepare; return a reason to be skipped on this host, or None."""
        return None

    def close(self) -> None:
        pass


class Registry(Generic[T]):
    """The classes of one kind of part, by name."""

    def __init__(self, what: str):
        self.what = what
        self.classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        name = getattr(cls, "name", "")
        if not name:
            raise ValueError(f"{cls.__name__} has no name")
        if name in self.classes and self.classes[name] is not cls:
            raise ValueError(f"{self.what} {name!r} registered twice")
        self.classes[name] = cls
        return cls
