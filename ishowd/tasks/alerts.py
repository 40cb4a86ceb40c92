"""Alert evaluation: after every sampling tick (see ishowd/alerts).

The engine and the hook runner load in ``setup``, so importing the task costs nothing.
"""
from __future__ import annotations

from typing import Optional

from ..alerts import rules
from . import Task, register


@register
class AlertsTask(Task):
    name = "alerts"
    order = 90
    after_tick = True

    evaluator = None

    def setup(self) -> Optional[str]:
        from ..alerts.evaluator import Evaluator
        if not rules.rules_of(self.config):
            return "no [[alerts.rules]] configured"
        self.evaluator = Evaluator(self.config, self.store)
        return None

    def run(self, now: float) -> None:
        self.evaluator.run(now)

    def settle(self) -> None:
        self.evaluator.runner.wait_idle()

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()
