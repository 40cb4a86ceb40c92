"""The outdated job: a stand-in interpreter for pip's answers, and this venv's real pip against
an index that does not answer and a file:// index that does."""
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
    PIP_ variables it was given (calls.jsonl), checks it was asked ``-m pip list``, then runs
    ``body`` with ``which`` set to ``--outdated`` or ``--uptodate``."""
    path = tmp_path / "python"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""\
        import json, os, sys, time
        args = sys.argv[1:]
        with open({str(tmp_path / "calls.jsonl")!r}, "a") as f:
            f.write(json.dumps({{"argv": args, "pip_env": {{k: v for k, v in os.environ.items()
                                                            if k.startswith("PIP_")}}}}) + "\\n")
        assert args[:3] == ["-m", "pip", "list"], args
        which = "--outdated" if "--outdated" in args else "--uptodate"
    """) + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def calls(tmp_path):
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def answers(outdated, uptodate=()):
    return f"""
        print("WARNING: Location 'file:///idx/simple/ishowd/' is ignored: it is neither a file nor a directory.",
              file=sys.stderr, flush=True)
        print(json.dumps({list(outdated)!r} if which == "--outdated" else {list(uptodate)!r}))
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
    (call,) = calls(tmp_path)
    assert call["pip_env"] == {}
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
    (call,) = calls(tmp_path)
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


def test_nothing_outdated_but_something_current_is_up_to_date(tmp_path):
    python = stand_in(tmp_path, answers([], [{"name": "numpy", "version": "2.1.0"}]))
    out = run_job(tmp_path, python)
    assert (out.status, out.detail, out.result["packages"]) == ("ok", "every package is up to date", [])
    assert [c["argv"][3] for c in calls(tmp_path)] == ["--outdated", "--uptodate"]


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


def test_real_pip_with_no_index_answering_is_skipped(tmp_path):
    """pip logs each failed lookup at debug level and prints [] with exit status 0: the job must
    still tell that apart from everything being current."""
    port = _closed_port()
    started = time.monotonic()
    out = run_job(tmp_path, sys.executable, f'index_url = "http://127.0.0.1:{port}/simple"\n'
                  f'pip_config = "{os.devnull}"\nnet_timeout = "2s"\nretries = 0\n')
    took = time.monotonic() - started
    assert out.status == "skipped", out.detail
    assert out.detail.startswith("no package index reachable: Connection refused (http://127.0.0.1:"
                                 f"{port}/simple/"), out.detail
    assert took < 30


def _file_index(tmp_path, project: str, release: str):
    page = tmp_path / "index" / "simple" / project
    page.mkdir(parents=True)
    wheel = f"{project}-{release}-py3-none-any.whl"
    page.joinpath("index.html").write_text(f'<html><body><a href="{wheel}">{wheel}</a></body></html>\n')
    return f"file://{tmp_path / 'index' / 'simple'}"


def test_real_pip_finds_a_newer_release_on_a_file_index(tmp_path):
    installed = version("pluggy")
    url = _file_index(tmp_path, "pluggy", "99.0.0")
    out = run_job(tmp_path, sys.executable, f'index_url = "{url}"\npip_config = "{os.devnull}"\n')
    assert out.status == "ok", out.detail
    assert out.detail == f"1 package can be upgraded: pluggy {installed}→99.0.0"
    assert out.result["packages"] == [{"name": "pluggy", "version": installed, "latest": "99.0.0", "vendor": False}]


def test_real_pip_with_everything_current_is_up_to_date(tmp_path):
    url = _file_index(tmp_path, "pluggy", version("pluggy"))
    out = run_job(tmp_path, sys.executable, f'index_url = "{url}"\npip_config = "{os.devnull}"\n')
    assert (out.status, out.detail) == ("ok", "every package is up to date")
