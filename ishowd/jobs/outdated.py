"""The ``outdated`` job: which packages of the service's interpreter have newer releases.

Weekly, ``<[deployment] python> -m pip list --outdated --format=json``, bounded:

- pip's own network bounds on its command line (``--timeout``, ``--retries``:
  they win over any configuration), ``--disable-pip-version-check``,
  ``--no-input`` and ``--no-cache-dir`` (the daemon's home is not the service's);
- none of ishowd's own ``PIP_*`` variables reach it: the answer is what the
  pip configuration files on the machine say, the same whether the schedule or
  an operator's shell started the run (``index_url`` and ``pip_config`` choose
  otherwise, explicitly).

pip says nothing when no index answers: it logs each failed lookup at debug
level and prints ``[]`` with exit status 0, as when everything is current; and
it looks packages up one after the other, each waiting out ``--timeout`` where
an index drops the connection. So pip is first asked the same about a made-up
environment (``--path``) holding one package, pip 0: an index that answers
lists a newer pip. No answer is ``skipped`` (no index reachable) within one
lookup's time, with the reason pip logged (``--log``); only then is the
service's environment looked up.

A version with a local label (``2.5.0a0+872d972e41.nv24.08``) is a vendor
build: NVIDIA's torch for the Jetson, which ``pip install -U`` would replace
with PyPI's build without CUDA there. It is reported apart, to be upgraded
through JetPack, never as an upgrade.
"""
from __future__ import annotations

import os
from typing import Optional

from ..config import Key
from . import Job, JobContext, Outcome, WEEK, job_keys, register

ANSWER_BYTES = 4 << 20      # pip's JSON: about 100 bytes a package, and its warnings besides
NAMED = 12                  # upgrades named in the detail; all of them are in the result


def _index_problem(url: str) -> Optional[str]:
    if url and not url.startswith(("http://", "https://", "file://")):
        return 'an http://, https:// or file:// URL such as "https://pypi.org/simple", or "" for pip\'s own'
    return None


KEYS = job_keys("outdated", "0 6 * * 1", "15m", {
    "index_url": Key("str", "", "the package index to compare with (pip --index-url); empty: the one pip is "
                     "configured with", check=_index_problem),
    "pip_config": Key("path", "", "a pip configuration file read instead of the daemon user's own (pip's "
                      "PIP_CONFIG_FILE; /etc/pip.conf and the environment's pip.conf are still read; "
                      "/dev/null: no file at all); empty: pip's usual files"),
    "net_timeout": Key("duration", "10s", "how long pip waits for each answer from the index (pip --timeout)",
                       min=1, max=300),
    "retries": Key("int", 1, "how often pip retries a lookup that failed (pip --retries)", min=0, max=10),
})


def is_vendor(version: str) -> bool:
    """A local version label (PEP 440 ``+...``): built by someone other than the index's uploader."""
    return "+" in version


@register
class Outdated(Job):
    name = "outdated"
    period = WEEK

    def run(self, ctx: JobContext) -> Outcome:
        python = self.config.deployment.python
        root = self.config.deployment.root
        if not os.path.exists(python) and not os.path.isdir(root):
            return Outcome("skipped", f"no deployment here: neither [deployment] python ({python}) nor "
                           f"[deployment] root ({root}) exists", {"python": python})
        if not os.path.isfile(python) or not os.access(python, os.X_OK):
            why = "does not exist" if not os.path.exists(python) else "is not an executable file"
            return Outcome("failed", f"[deployment] python {python} {why}: the packages could not be looked "
                           "at (set [deployment] python to the service's interpreter)", {"python": python})
        import tempfile
        with tempfile.TemporaryDirectory(prefix="ishowd-outdated-") as tmp:
            log_path = os.path.join(tmp, "pip.log")
            probe, failure, said = self._pip(ctx, python, log_path, ("--path", _one_package_env(tmp)))
            if failure is not None:
                return failure
            if not probe:
                warned = [line[:300] for line in said.splitlines() if line.startswith(("WARNING:", "ERROR:"))]
                reason = _fetch_failure(log_path) or (warned[0] if warned else "pip found no release of pip itself")
                return Outcome("skipped", "no package index reachable: " + reason, {"python": python})
            answer, failure, _ = self._pip(ctx, python, log_path)
            if failure is not None:
                return failure
        packages = [{"name": p["name"], "version": p["version"], "latest": p["latest_version"],
                     "vendor": is_vendor(p["version"])} for p in answer]
        packages.sort(key=lambda p: p["name"].lower())
        return Outcome("ok", _detail(packages), {"python": python, "packages": packages})

    def _pip(self, ctx: JobContext, python: str, log_path: str, extra: tuple = ()):
        """(pip's list of outdated packages or None, an Outcome saying why there is none, what pip said)."""
        import json
        s = self.settings
        argv = [python, "-m", "pip", "list", "--outdated", "--format=json", "--disable-pip-version-check",
                "--no-input", "--no-cache-dir", "--timeout", f"{s.net_timeout:g}", "--retries", str(s.retries),
                "--log", log_path, *extra]
        if s.index_url:
            argv += ["--index-url", s.index_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        if s.pip_config:
            env["PIP_CONFIG_FILE"] = s.pip_config
        res = ctx.run(argv, env=env, max_lines=1_000_000, max_bytes=ANSWER_BYTES)
        if res.status in ("timeout", "stopped"):
            ctx.check()                       # past the run's timeout or ishowd stopping: Stopped
        last = res.output.strip().splitlines()[-1:] or ["no output"]
        if res.status != "ok":
            how = f"exit status {res.exit_code}" if res.exit_code is not None else res.status
            return None, Outcome("failed", f"pip list --outdated failed ({how}): {last[0]}",
                                 {"python": python, "exit_code": res.exit_code}), res.output
        # pip's warnings share the stream; the answer is its one line of JSON
        for line in reversed(res.output.splitlines()):
            if line.startswith("["):
                try:
                    listed = json.loads(line)
                except ValueError:
                    break
                if isinstance(listed, list) and all(
                        isinstance(p, dict) and all(isinstance(p.get(k), str) for k in ("name", "version",
                                                                                         "latest_version"))
                        for p in listed):
                    return listed, None, res.output
                break
        return None, Outcome("failed", f"pip list --outdated gave no JSON list: {last[0]}",
                             {"python": python}), res.output


def _one_package_env(tmp: str) -> str:
    """A folder that pip reads as an environment holding pip 0 alone: any index serving pip has newer."""
    path = os.path.join(tmp, "probe")
    os.makedirs(os.path.join(path, "pip-0.dist-info"))
    with open(os.path.join(path, "pip-0.dist-info", "METADATA"), "w", encoding="utf-8") as f:
        f.write("Metadata-Version: 2.1\nName: pip\nVersion: 0\n")
    return path


# What a failed lookup's reason comes down to, innermost first: an OS error, a TLS failure, a timeout
_CAUSES = (r"\[Errno -?\d+\] ([^'\"()]+)", r"\[SSL: \w+\] ([^'\"(]+)", r"((?:Read|Connect) timed out)")


def _fetch_failure(log_path: str) -> Optional[str]:
    """The first lookup pip's log says failed, as "Connection refused (URL)"."""
    import re
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                found = re.search(r"Could not fetch URL (\S+?): (.*?) - skipping", line)
                if found:
                    url, reason = found.groups()
                    causes = (re.search(c, reason) for c in _CAUSES)
                    cause = next((c.group(1).strip() for c in causes if c), reason[:200])
                    return f"{cause} ({url})"
    except OSError:
        return None
    return None


def _detail(packages: list[dict]) -> str:
    plain = [p for p in packages if not p["vendor"]]
    vendor = [p for p in packages if p["vendor"]]
    parts = []
    if plain:
        named = ", ".join(f"{p['name']} {p['version']}→{p['latest']}" for p in plain[:NAMED])
        more = f", and {len(plain) - NAMED} more" if len(plain) > NAMED else ""
        parts.append(f"{len(plain)} package{'' if len(plain) == 1 else 's'} can be upgraded: {named}{more}")
    if vendor:
        named = ", ".join(f"{p['name']} {p['version']} (the index has {p['latest']})" for p in vendor)
        parts.append(f"vendor build{'' if len(vendor) == 1 else 's'}, upgrade through JetPack, never pip: {named}")
    return "; ".join(parts) if parts else "every package is up to date"
