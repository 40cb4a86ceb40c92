"""The ``audit`` job: the deployment's 15 health checks, monthly and on ``ishowctl audit``.

The checks themselves are ``ishowd/audit/checks.py`` (imported when a run starts:
they pull in the benchmark and the GPU readers, which ``ishowctl`` need not load to
read these keys). The run is ``ok`` when all 15 passed, else ``failed`` naming the
ones that did not; each check's detail, time and full output are in the result.
It sends synthesis requests, as the benchmark does, so the two never run at once.
"""
from __future__ import annotations

import os
import re
from typing import Optional

from ..config import Key
from ..metrics import declare
from . import DAY, Job, JobContext, Outcome, job_keys, register


def _version_problem(text: str) -> Optional[str]:
    if not re.fullmatch(r"[0-9]+\.[0-9]+", text):
        return 'a Python version as major.minor, such as "3.10"'
    return None


KEYS = job_keys("audit", "0 5 1 * *", "2h", {
    "probe_timeout": Key("duration", "120s", "how long the service's interpreter may take to import torch, "
                         "initialise CUDA and import f5_tts.api (seconds on a Jetson; a stuck CUDA "
                         "initialisation never returns)", min=1, max=1800),
    "min_python": Key("str", "3.10", "the oldest Python the service's interpreter may be (F5-TTS and "
                      "NVIDIA's torch for JetPack 6 are built for 3.10)", check=_version_problem),
    "max_rtf": Key("float", 0.35, "the benchmark's mean RTF must be below this (rtf-target)", min=0.01, max=10),
    "min_gpu_free": Key("int", 5_000_000_000, "GPU memory in bytes that must be free (gpu-memory; "
                        "5000000000: 5 GB)", min=0, max=1 << 50),
    "nfe_step": Key("int", 8, "the [f5] default_nfe_step the service's config must set (nfe-step)",
                    min=1, max=128),
})

AUDIT_CHECK_PASSED = declare("ishowd_audit_check_passed", "boolean",
                             "1 when the check passed in the latest audit that ran it, else 0 (check, group: as "
                             "`ishowctl audit` lists them).", ("check", "group"), group="jobs")
METRICS = (AUDIT_CHECK_PASSED,)


def checks_of(result) -> Optional[list]:
    """A run's check results as (check, group, passed) when it has any, else None."""
    checks = result.get("checks") if isinstance(result, dict) else None
    if not isinstance(checks, list):
        return None
    found = [(c["check"], c["group"], bool(c["passed"])) for c in checks
             if isinstance(c, dict) and isinstance(c.get("check"), str) and isinstance(c.get("group"), str)
             and isinstance(c.get("passed"), bool)]
    return found or None


@register
class Audit(Job):
    name = "audit"
    period = 31 * DAY
    touches = frozenset({"synthesis"})

    def setup(self) -> Optional[str]:
        python, root = self.config.deployment.python, self.config.deployment.root
        if not os.path.exists(python) and not os.path.isdir(root):
            return (f"no deployment here: neither [deployment] python ({python}) nor [deployment] root "
                    f"({root}) exists")
        return None

    def run(self, ctx: JobContext) -> Outcome:
        from ..audit.checks import run_checks
        return run_checks(self.config, ctx)

    def samples(self, last) -> list:
        from ..metrics import Sample
        checks = self.latest_result(last, checks_of)
        return [Sample(AUDIT_CHECK_PASSED, 1.0 if passed else 0.0, {"check": check, "group": group})
                for check, group, passed in checks or ()]
