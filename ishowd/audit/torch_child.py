"""The service's interpreter, asked once: ``probe.py`` run by its path in ``[deployment] python``.

ishowd never imports torch; the audit wants the torch the backend runs anyway, with
its CUDA, in its environment. The child is bounded by ``[jobs.audit] probe_timeout``
(a stuck CUDA initialisation blocks forever) through ``ishowd/process.py``: its
whole process group is ended at the timeout. Every way it can fail is one line in
``ProbeFailed``.
"""
from __future__ import annotations

import os
from typing import Callable, Optional

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")
F5_SOURCE = os.path.join("third_party", "F5-TTS", "src")
# Kept from the child's output: torch's and F5-TTS's warnings come before the answer.
OUTPUT_BYTES = 1 << 20
STEP = "ishowd-probe: step "       # probe.py's announcement of each step, on stderr
CUDA_STEPS = ("torch.cuda.is_available()", "torch.cuda.get_device_name(0)", "torch.cuda.mem_get_info()")


class ProbeFailed(Exception):
    """The probe gave no answer; ``str()`` is the one-line reason."""


def _env(root: str) -> dict:
    """ishowd's environment without its Python settings (they are for ishowd's interpreter, not the
    service's), no bytecode written, and the deployment's own F5-TTS source first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    # importing f5_tts.api as root (sudo ishowctl audit) would leave root-owned __pycache__
    # folders in the deployment's tree
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    src = os.path.join(root, F5_SOURCE)
    if os.path.isdir(src):
        # the service runs F5-TTS from this checkout: the check must import the deployment's
        # api.py, the file the optimisation checks read, not another copy in site-packages
        env["PYTHONPATH"] = src
    return env


def _last_said(output: str) -> str:
    """The child's last line that is not a step announcement."""
    for line in reversed(output.splitlines()):
        if line.strip() and not line.startswith(STEP):
            return line.strip()[:300]
    return "no output"


def _last_step(output: str) -> Optional[str]:
    steps = [line[len(STEP):].strip() for line in output.splitlines() if line.startswith(STEP)]
    return steps[-1] if steps else None


def _answer(output: str) -> Optional[dict]:
    """The JSON object the probe printed: its last line that is one."""
    import json
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            if isinstance(answer, dict) and isinstance(answer.get("python"), str):
                return answer
    return None


def run_probe(config, *, timeout: float, run: Optional[Callable] = None) -> dict:
    """The probe's answer (see ``probe.py``), or ``ProbeFailed`` saying why there is none.

    ``run``: called as ``JobContext.run`` is (argv, timeout=, env=, cwd=, max_lines=,
    max_bytes=), so a job's probe is bounded by the job and ended when it is; None runs it
    through ``process.run_command`` directly.
    """
    python = config.deployment.python
    if not os.path.exists(python):
        raise ProbeFailed(f"[deployment] python {python} does not exist "
                          "(set [deployment] python to the service's interpreter)")
    if not os.path.isfile(python) or not os.access(python, os.X_OK):
        raise ProbeFailed(f"[deployment] python {python} is not an executable file "
                          "(set [deployment] python to the service's interpreter)")
    if run is None:
        from ..process import run_command

        def run(argv, *, timeout, env, cwd, max_lines, max_bytes):
            return run_command(argv, b"", env, timeout, cwd=cwd, max_lines=max_lines, max_bytes=max_bytes)
    res = run([python, PROBE], timeout=timeout, env=_env(config.deployment.root), cwd="/",
              max_lines=1_000_000, max_bytes=OUTPUT_BYTES)
    if res.status == "timeout":
        step = _last_step(res.output)
        where = f" in {step}" if step else ""
        if res.duration < timeout:     # ``run`` bounded it by less: what was left of the job's time
            raise ProbeFailed(f"cut short after {res.duration:.0f} s{where}: the run's own timeout came first")
        hint = " (CUDA initialisation stuck?)" if step in CUDA_STEPS or step == "import torch" else ""
        raise ProbeFailed(f"timed out after {timeout:g} s{where}{hint}")
    if res.status == "stopped":
        raise ProbeFailed("stopped: ishowd is stopping")
    if res.status == "error":
        raise ProbeFailed(res.output)
    if res.exit_code:
        if res.exit_code < 0:
            import signal
            try:
                how = f"killed by {signal.Signals(-res.exit_code).name}"
            except ValueError:
                how = f"killed by signal {-res.exit_code}"
        else:
            how = f"exited {res.exit_code}"
        raise ProbeFailed(f"{how}: {_last_said(res.output)}")
    answer = _answer(res.output)
    if answer is None:
        raise ProbeFailed(f"printed no JSON object: {_last_said(res.output)}")
    return answer
