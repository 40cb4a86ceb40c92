"""The torch probe: probe.py in a real stand-in interpreter (a venv with a stub torch), and every way
the child can fail as one line."""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ishowd import catalog
from ishowd.audit import torch_child
from ishowd.audit.torch_child import ProbeFailed, run_probe
from ishowd.jobs import JobContext, Stopped
from ishowd.process import Cancel
from standin_python import gone, standin_python  # noqa: F401 - the fixture

DEPLOYMENT = Path(__file__).resolve().parent / "fixtures" / "deployment"
API = Path("third_party/F5-TTS/src/f5_tts/api.py")


def deployment(tmp_path) -> Path:
    root = tmp_path / "ishowtts"
    shutil.copytree(DEPLOYMENT, root)
    return root


def config(python, root, extra=""):
    return catalog.loads_config(f'[deployment]\npython = "{python}"\nroot = "{root}"\n{extra}', "test.toml")


def test_a_healthy_interpreter_answers_everything(tmp_path, standin_python):
    root = deployment(tmp_path)
    answer = run_probe(config(standin_python.python, root), timeout=30)
    assert answer == {
        "python": "%d.%d.%d" % sys.version_info[:3], "executable": str(standin_python.python),
        "torch": "2.5.0a0+872d972e41.nv24.08", "torch_error": None, "cuda_available": True, "cuda_version": "12.6",
        "cuda_error": None, "device_name": "Orin", "memory_free": 40_000_000_000, "memory_total": 64_000_000_000,
        "compile": True, "f5_api": True, "f5_api_error": None, "f5_api_file": str(root / API)}


def test_the_answer_is_the_only_line_on_stdout(tmp_path, standin_python):
    # the stub prints while torch imports, through sys.stdout and through fd 1 directly
    proc = subprocess.run([str(standin_python.python), torch_child.PROBE], capture_output=True, text=True,
                          timeout=30, cwd="/")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["torch"] == "2.5.0a0+872d972e41.nv24.08"
    assert "a warning printed to stdout" in proc.stderr and "writing to file descriptor 1" in proc.stderr
    assert "ishowd-probe: step import f5_tts.api" in proc.stderr


def test_probe_keeps_to_syntax_an_old_interpreter_reads():
    # an interpreter too old for the service must be reported with its version, not a SyntaxError
    ast.parse(Path(torch_child.PROBE).read_text(), feature_version=(3, 6))


def test_the_environment_has_no_ishowd(tmp_path, standin_python):
    proc = subprocess.run([str(standin_python.python), "-c", "import ishowd"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 1 and "No module named 'ishowd'" in proc.stderr


def test_torch_that_does_not_import_hides_nothing_else(tmp_path, standin_python):
    standin_python.set(import_error="libcudnn.so.9: cannot open shared object file: No such file or directory")
    answer = run_probe(config(standin_python.python, deployment(tmp_path)), timeout=30)
    assert answer["torch"] is None and answer["cuda_available"] is False and answer["compile"] is False
    assert answer["torch_error"] == "ImportError: libcudnn.so.9: cannot open shared object file: No such file or directory"
    # api.py imports torch: its own import fails, and says why
    assert answer["f5_api"] is False and answer["f5_api_error"].startswith("ImportError: libcudnn.so.9")


def test_no_cuda_device_and_no_compile(tmp_path, standin_python):
    standin_python.set(cuda_available=False, compile=False)
    answer = run_probe(config(standin_python.python, deployment(tmp_path)), timeout=30)
    assert (answer["torch"], answer["cuda_version"], answer["cuda_available"]) == (
        "2.5.0a0+872d972e41.nv24.08", "12.6", False)
    assert answer["device_name"] is None and answer["memory_free"] is None and answer["compile"] is False
    assert answer["f5_api"] is True          # torch.compile is called in a method, not at import


def test_an_f5_api_that_raises_leaves_torchs_answers(tmp_path, standin_python):
    root = deployment(tmp_path)
    with open(root / API, "a") as f:
        f.write("\nraise RuntimeError('vocos checkpoint missing\\n(see the logs)')\n")
    answer = run_probe(config(standin_python.python, root), timeout=30)
    assert answer["f5_api"] is False and answer["f5_api_error"] == "RuntimeError: (see the logs)"
    assert answer["cuda_available"] is True and answer["compile"] is True


def test_the_deployments_own_f5_source_is_imported(tmp_path, standin_python):
    # another F5-TTS installed in the environment (pip install f5-tts) is not the file the service runs
    other = standin_python.torch.parent / "f5_tts"
    other.mkdir()
    (other / "__init__.py").write_text("")
    (other / "api.py").write_text("raise ImportError('the site-packages copy, not the deployment')\n")
    root = deployment(tmp_path)
    answer = run_probe(config(standin_python.python, root), timeout=30)
    assert answer["f5_api"] is True and answer["f5_api_file"] == str(root / API)


def test_the_probes_folder_never_stands_in_for_the_services_modules(tmp_path, standin_python):
    # a service module named like one of ishowd's audit modules must be the service's own
    (standin_python.torch.parent / "checks.py").write_text("SERVICE = True\n")
    root = deployment(tmp_path)
    with open(root / API, "a") as f:
        f.write("\nimport checks\nassert checks.SERVICE\n")
    assert run_probe(config(standin_python.python, root), timeout=30)["f5_api"] is True


def test_ishowds_own_python_settings_never_reach_the_child(tmp_path, standin_python, monkeypatch):
    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "ishowd-home"))   # would break any other interpreter
    assert run_probe(config(standin_python.python, deployment(tmp_path)), timeout=30)["f5_api"] is True


def test_importing_f5_writes_no_bytecode_into_the_deployment(tmp_path, standin_python):
    root = deployment(tmp_path)
    assert run_probe(config(standin_python.python, root), timeout=30)["f5_api"] is True
    assert not list(root.rglob("__pycache__"))


def test_a_hung_cuda_initialisation_is_killed_at_the_timeout_with_its_group(tmp_path, standin_python):
    standin_python.set(hang=True)
    start = time.monotonic()
    with pytest.raises(ProbeFailed) as failed:
        run_probe(config(standin_python.python, deployment(tmp_path)), timeout=2)
    took = time.monotonic() - start
    assert str(failed.value) == "timed out after 2 s in torch.cuda.is_available() (CUDA initialisation stuck?)"
    assert 2 <= took < 10
    pids = standin_python.hung_pids()
    assert len(pids) == 2 and all(gone(pid) for pid in pids)


def test_a_jobs_probe_is_bounded_by_the_job(tmp_path, standin_python):
    standin_python.set(hang=True)
    ctx = JobContext(config(standin_python.python, deployment(tmp_path)), timeout=2, cancel=Cancel())
    start = time.monotonic()
    with pytest.raises(ProbeFailed, match=r"^cut short after \d+ s in torch\.cuda\.is_available\(\): "
                                          r"the run's own timeout came first$"):
        run_probe(ctx.config, timeout=120, run=ctx.run)
    assert time.monotonic() - start < 10
    with pytest.raises(Stopped):
        ctx.check()
    assert all(gone(pid) for pid in standin_python.hung_pids())


def test_a_stopping_daemon_ends_the_probe(tmp_path, standin_python):
    import threading
    standin_python.set(hang=True)
    cancel = Cancel()
    ctx = JobContext(config(standin_python.python, deployment(tmp_path)), timeout=60, cancel=cancel)

    def stop_once_hung():
        deadline = time.monotonic() + 30
        while not standin_python.hung_pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        cancel.set()
    threading.Thread(target=stop_once_hung, daemon=True).start()
    with pytest.raises(ProbeFailed, match="^stopped: ishowd is stopping$"):
        run_probe(ctx.config, timeout=120, run=ctx.run)
    with pytest.raises(Stopped):
        ctx.check()
    assert all(gone(pid) for pid in standin_python.hung_pids())


def test_a_missing_interpreter_says_which_key(tmp_path):
    with pytest.raises(ProbeFailed) as failed:
        run_probe(config(tmp_path / "envs/ishowtts/bin/python", tmp_path), timeout=30)
    assert str(failed.value) == (f"[deployment] python {tmp_path / 'envs/ishowtts/bin/python'} does not exist "
                                 "(set [deployment] python to the service's interpreter)")


def test_an_interpreter_that_is_not_executable(tmp_path):
    python = tmp_path / "python"
    python.write_text("not a program\n")
    with pytest.raises(ProbeFailed) as failed:
        run_probe(config(python, tmp_path), timeout=30)
    assert str(failed.value) == (f"[deployment] python {python} is not an executable file "
                                 "(set [deployment] python to the service's interpreter)")
    python.chmod(0o755)
    with pytest.raises(ProbeFailed, match=r"^cannot start .*python: \[Errno 8\] Exec format error"):
        run_probe(config(python, tmp_path), timeout=30)


def fake_python(tmp_path, body: str) -> Path:
    path = tmp_path / "python"
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(0o755)
    return path


def test_a_failing_interpreter_gives_its_last_line(tmp_path):
    python = fake_python(tmp_path, 'print("ishowd-probe: step import torch", file=sys.stderr)\n'
                                   'print("Fatal Python error: init_import_site: Failed to import the site module",'
                                   ' file=sys.stderr)\nsys.exit(1)')
    with pytest.raises(ProbeFailed) as failed:
        run_probe(config(python, tmp_path), timeout=30)
    assert str(failed.value) == "exited 1: Fatal Python error: init_import_site: Failed to import the site module"


def test_a_crashed_interpreter_names_the_signal(tmp_path):
    python = fake_python(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(ProbeFailed, match=r"^killed by SIGSEGV: no output$"):
        run_probe(config(python, tmp_path), timeout=30)


@pytest.mark.parametrize("said", ["hello", '{"not": "the probe"}', '{"python": "3.10.12",'])
def test_an_answer_that_is_not_the_probes(tmp_path, said):
    python = fake_python(tmp_path, f"print({said!r})")
    with pytest.raises(ProbeFailed) as failed:
        run_probe(config(python, tmp_path), timeout=30)
    assert str(failed.value) == f"printed no JSON object: {said}"
