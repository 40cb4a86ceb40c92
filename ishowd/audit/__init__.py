"""The monthly audit: 15 health checks of the deployment, run by the ``audit`` job and ``ishowctl audit``.

- ``checks.py``: the checks as data (name, group, what each needs, how it looks), run in
  order, each timed, each failing alone; what they need is computed once and shared;
- ``torch_child.py``: the checks that need torch ask the service's own interpreter
  (``[deployment] python``) in one child process running ``probe.py``: ishowd never
  imports torch, and the answer is about the interpreter the backend runs, not ours;
- ``gpu.py``: the GPU's clock lock and free memory as the collectors read them now.

The job itself (keys, schedule) is ``ishowd/jobs/audit.py``; the command ``ishowd/cli/audit.py``.
"""
