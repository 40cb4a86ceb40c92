"""The outdated job: a stand-in interpreter for pip's answers, and this venv's real pip against
indexes that refuse, that never answer, and a file:// index that does."""
from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import time
from importlib.metadata import version

import pytest

from ishowd import catalog
from ishowd.jobs import JobContext, Stopped
from ishowd.jobs.outdated import Outdated
from ishowd.process import Cancel

TORCH = {"name": "torch", "version": "2.5.0a0+872d972e41.nv24.08", "latest_version": "2.9.0",
         "latest_filetype": "wheel"}


def run_job(tmp_path, python, keys="", timeout=60.0, root=None):
    text = (f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n'
            f'[deployment]\npython = "{python}"\nroot = "{root or tmp_path}"\n[jobs.outdated]\n{keys}')
    config = catalog.loads_config(text, "test.toml")
    return Outdated(config).run(JobContext(config, timeout=timeout, cancel=Cancel()))


def stand_in(tmp_path, body: str):
    """An executable standing for ``[deployment] python``: it records each call's argv and the
    PIP_ variables it was given (calls.jsonl), checks it was asked ``-m pip list --outdated``,
    then runs ``body`` with ``probe`` true when asked about the one-package environment."""
    path = tmp_path / "python"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""\
        import json, os, sys, time
        args = sys.argv[1:]
        with open({str(tmp_path / "calls.jsonl")!r}, "a") as f:
            f.write(json.dumps({{"argv": args, "pip_env": {{k: v for k, v in os.environ.items()
                                                            if k.startswith("PIP_")}}}}) + "\\n")
        assert args[:4] == ["-m", "pip", "list", "--outdated"], args
        probe = "--path" in args
    """) + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def calls(tmp_path):
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


NEWER_PIP = [{"name": "pip", "version": "0", "latest_version": "25.2", "latest_filetype": "wheel"}]


def answers(outdated, probe=NEWER_PIP):
    return f"""
        print("WARNING: Location 'file:///idx/simple/ishowd/' is ignored: it is neither a file nor a directory.",
              file=sys.stderr, flush=True)
        print(json.dumps({list(probe)!r} if probe else {list(outdated)!r}))
    """


def test_upgrades_are_listed_and_a_vendor_build_is_never_one(tmp_path, monkeypatch):
    # ishowd's own environment must not steer the check
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "180")
    python = stand_in(tmp_path, answers([
        {"name": "requests", "version": "2.31.0", "latest_version": "2.32.3", "latest_filetype": "wheel"},
        TORCH,
        {"name": "numpy", "version": "1.26.4", "latest_version": "2.1.0", "latest_filetype": "wheel"},
    ]))
    out = run_job(tmp_path, python)
    assert out.status == "ok", out.detail
    assert out.detail == ("2 packages can be upgraded: numpy 1.26.4→2.1.0, requests 2.31.0→2.32.3; "
                          "vendor build, upgrade through JetPack, never pip: "
                          "torch 2.5.0a0+872d972e41.nv24.08 (the index has 2.9.0)")
    assert out.result["packages"] == [
        {"name": "numpy", "version": "1.26.4", "latest": "2.1.0", "vendor": False},
        {"name": "requests", "version": "2.31.0", "latest": "2.32.3", "vendor": False},
        {"name": "torch", "version": "2.5.0a0+872d972e41.nv24.08", "latest": "2.9.0", "vendor": True},
    ]
    probe, call = calls(tmp_path)
    assert "--path" in probe["argv"] and "--path" not in call["argv"]
    assert call["pip_env"] == probe["pip_env"] == {}
    argv = call["argv"]
    assert argv[3:6] == ["--outdated", "--format=json", "--disable-pip-version-check"]
    assert {"--no-input", "--no-cache-dir"} <= set(argv)
    assert argv[argv.index("--timeout") + 1] == "10" and argv[argv.index("--retries") + 1] == "1"
    assert "--index-url" not in argv


def test_index_and_pip_settings_are_keys(tmp_path):
    python = stand_in(tmp_path, answers([TORCH]))
    out = run_job(tmp_path, python, 'index_url = "https://pypi.jetson-ai-lab.io/simple"\n'
                  'pip_config = "/etc/ishowtts/pip.conf"\nnet_timeout = "3s"\nretries = 0\n')
    assert out.status == "ok"
    assert out.detail == ("vendor build, upgrade through JetPack, never pip: torch 2.5.0a0+872d972e41.nv24.08 "
                          "(the index has 2.9.0)")
    _, call = calls(tmp_path)
    argv = call["argv"]
    assert argv[argv.index("--index-url") + 1] == "https://pypi.jetson-ai-lab.io/simple"
    assert argv[argv.index("--timeout") + 1] == "3" and argv[argv.index("--retries") + 1] == "0"
    assert call["pip_env"] == {"PIP_CONFIG_FILE": "/etc/ishowtts/pip.conf"}


def test_a_long_list_is_read_whole_and_named_in_part(tmp_path):
    many = [{"name": f"package-{i:03}", "version": "1.0", "latest_version": "1.1", "latest_filetype": "wheel"}
            for i in range(300)]
    assert len(json.dumps(many)) > 8192 * 2       # more than a hook's output limit
    out = run_job(tmp_path, stand_in(tmp_path, answers(many)))
    assert out.status == "ok", out.detail
    assert len(out.result["packages"]) == 300
    assert out.detail.startswith("300 packages can be upgraded: package-000 1.0→1.1, package-001 1.0→1.1, ")
    assert out.detail.endswith("package-011 1.0→1.1, and 288 more")


def test_nothing_outdated_from_an_index_that_answers_is_up_to_date(tmp_path):
    out = run_job(tmp_path, stand_in(tmp_path, answers([])))
    assert (out.status, out.detail, out.result["packages"]) == ("ok", "every package is up to date", [])


def test_no_answer_about_the_one_package_environment_is_skipped(tmp_path):
    out = run_job(tmp_path, stand_in(tmp_path, 'print("[]" if probe else "[{}]".format(json.dumps(%r)))\n' % TORCH))
    assert (out.status, out.detail) == ("skipped", "no package index reachable: pip found no release of pip itself")
    assert len(calls(tmp_path)) == 1           # the service's packages were never looked up


def test_a_broken_pip_fails_with_its_message(tmp_path):
    python = stand_in(tmp_path, """
        print("ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied", file=sys.stderr)
        sys.exit(2)
    """)
    out = run_job(tmp_path, python)
    assert out.status == "failed"
    assert out.detail == ("pip list --outdated failed (exit status 2): ERROR: Could not install packages due "
                          "to an OSError: [Errno 13] Permission denied")


def test_an_answer_that_is_not_pips_fails(tmp_path):
    out = run_job(tmp_path, stand_in(tmp_path, 'print("[this is not json")\n'))
    assert out.status == "failed"
    assert out.detail == "pip list --outdated gave no JSON list: [this is not json"


def test_a_missing_interpreter_fails_naming_the_key(tmp_path):
    out = run_job(tmp_path, tmp_path / "envs" / "ishowtts" / "bin" / "python")
    assert out.status == "failed"
    assert out.detail == (f"[deployment] python {tmp_path}/envs/ishowtts/bin/python does not exist: the packages "
                          "could not be looked at (set [deployment] python to the service's interpreter)")


def test_an_interpreter_that_is_not_executable_fails(tmp_path):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\n")
    out = run_job(tmp_path, python)
    assert out.status == "failed"
    assert "is not an executable file" in out.detail


def test_no_deployment_at_all_is_skipped(tmp_path):
    out = run_job(tmp_path, tmp_path / "no-env" / "python", root=tmp_path / "no-root")
    assert out.status == "skipped"
    assert out.detail.startswith("no deployment here: neither [deployment] python (")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"     # ended, not yet reaped by its parent
    except FileNotFoundError:
        return True


def test_a_hanging_pip_is_ended_at_the_runs_timeout(tmp_path):
    python = stand_in(tmp_path, f"""
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open({str(tmp_path / "pids")!r}, "w") as f:
            f.write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(600)
    """)
    started = time.monotonic()
    with pytest.raises(Stopped):
        run_job(tmp_path, python, timeout=3)
    assert time.monotonic() - started < 3 + 10          # its timeout, then SIGTERM and the grace
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    deadline = time.monotonic() + 10
    while not all(map(_gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(map(_gone, pids)), pids


# --- the real pip of this venv ----------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _real_pip(tmp_path, url, **keys):
    text = f'index_url = "{url}"\npip_config = "{os.devnull}"\n' + "".join(f"{k} = {v}\n" for k, v in keys.items())
    started = time.monotonic()
    out = run_job(tmp_path, sys.executable, text)
    return out, time.monotonic() - started


def test_real_pip_with_the_index_refusing_is_skipped(tmp_path):
    """pip logs each failed lookup at debug level and prints [] with exit status 0: the job must
    still tell that apart from everything being current."""
    port = _closed_port()
    out, took = _real_pip(tmp_path, f"http://127.0.0.1:{port}/simple", net_timeout='"2s"', retries=0)
    assert out.status == "skipped", out.detail
    assert out.detail == f"no package index reachable: Connection refused (http://127.0.0.1:{port}/simple/pip/)"
    assert took < 30


def test_real_pip_with_an_index_that_never_answers_is_skipped_within_one_lookup(tmp_path):
    """Connections accepted, never answered: each lookup waits out --timeout, one after the other
    (this venv's 31 packages: 31 s at 1 s each). The one-package environment's lookup alone does."""
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(64)
        url = f"http://127.0.0.1:{mute.getsockname()[1]}/simple"
        out, took = _real_pip(tmp_path, url, net_timeout='"1s"', retries=0)
    assert out.status == "skipped", out.detail
    assert out.detail == f"no package index reachable: Read timed out ({url}/pip/)"
    assert took < 15


def test_real_pip_refusing_a_plain_http_index_says_why(tmp_path):
    out, _ = _real_pip(tmp_path, "http://no-such-host.invalid/simple")
    assert out.status == "skipped", out.detail
    assert out.detail.startswith("no package index reachable: WARNING: The repository located at "
                                 "no-such-host.invalid is not a trusted or secure host and is being ignored.")


def _file_index(tmp_path, **releases):
    for project, release in releases.items():
        page = tmp_path / "index" / "simple" / project
        page.mkdir(parents=True)
        wheel = f"{project}-{release}-py3-none-any.whl"
        page.joinpath("index.html").write_text(f'<html><body><a href="{wheel}">{wheel}</a></body></html>\n')
    return f"file://{tmp_path / 'index' / 'simple'}"


def test_real_pip_finds_a_newer_release_on_a_file_index(tmp_path):
    installed = version("pluggy")
    out, _ = _real_pip(tmp_path, _file_index(tmp_path, pip=version("pip"), pluggy="99.0.0"))
    assert out.status == "ok", out.detail
    assert out.detail == f"1 package can be upgraded: pluggy {installed}→99.0.0"
    assert out.result["packages"] == [{"name": "pluggy", "version": installed, "latest": "99.0.0", "vendor": False}]


def test_real_pip_with_everything_current_is_up_to_date(tmp_path):
    out, _ = _real_pip(tmp_path, _file_index(tmp_path, pip=version("pip"), pluggy=version("pluggy")))
    assert (out.status, out.detail) == ("ok", "every package is up to date")
