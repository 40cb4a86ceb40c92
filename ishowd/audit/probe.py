"""What the service's interpreter says about itself, its torch and F5-TTS: one JSON object on stdout.

Run by its path with ``[deployment] python`` (``torch_child.run_probe``); that
environment has no ishowd, so this script uses the standard library alone, and
keeps to Python 3.6 syntax so that an interpreter too old for the service is
reported with its version rather than failing on a SyntaxError.

Each step is guarded on its own (a broken ``f5_tts.api`` never hides what torch
said) and announced on stderr first (``ishowd-probe: step ...``), so a child
killed at its timeout still tells which step hung. Whatever torch, CUDA or F5-TTS
print, from Python or from C, goes to stderr: file descriptor 1 is pointed at
stderr while they run, and the answer is written to the real stdout at the end,
the only line there. The exit status is 0 whenever the answer could be written.
"""
import json
import os
import platform
import sys

STEP = "ishowd-probe: step "


def _step(name):
    sys.stderr.write(STEP + name + "\n")
    sys.stderr.flush()


def _error(exc):
    """An exception as the last line of its traceback says it: ``ModuleNotFoundError: No module named 'x'``."""
    text = str(exc).strip().splitlines()
    return type(exc).__name__ + (": " + text[-1] if text else "")


def probe():
    answer = {"python": platform.python_version(), "executable": sys.executable,
              "torch": None, "torch_error": None, "cuda_available": False, "cuda_version": None,
              "cuda_error": None, "device_name": None, "memory_free": None, "memory_total": None, "compile": False,
              "f5_api": False, "f5_api_error": None, "f5_api_file": None}
    _step("import torch")
    try:
        import torch
    except (Exception, SystemExit) as exc:
        answer["torch_error"] = _error(exc)
        torch = None
    if torch is not None:
        answer["torch"] = str(getattr(torch, "__version__", "unknown"))
        version = getattr(torch, "version", None)
        cuda = getattr(version, "cuda", None)
        answer["cuda_version"] = None if cuda is None else str(cuda)
        answer["compile"] = callable(getattr(torch, "compile", None))
        _step("torch.cuda.is_available()")
        try:
            answer["cuda_available"] = bool(torch.cuda.is_available())
        except Exception as exc:
            answer["cuda_error"] = _error(exc)
        if answer["cuda_available"]:
            _step("torch.cuda.get_device_name(0)")
            try:
                answer["device_name"] = str(torch.cuda.get_device_name(0))
            except Exception as exc:
                answer["cuda_error"] = _error(exc)
            _step("torch.cuda.mem_get_info()")
            try:
                free, total = torch.cuda.mem_get_info()
                answer["memory_free"], answer["memory_total"] = int(free), int(total)
            except Exception as exc:
                answer["cuda_error"] = _error(exc)
    _step("import f5_tts.api")
    try:
        import f5_tts.api
        answer["f5_api"] = True
        answer["f5_api_file"] = getattr(f5_tts.api, "__file__", None)
    except (Exception, SystemExit) as exc:
        answer["f5_api_error"] = _error(exc)
    return answer


def main():
    # Run by path, Python puts this script's folder (ishowd/audit) first on sys.path: its
    # modules must never stand in for the service's own.
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == here:
        del sys.path[0]
    sys.stdout.flush()
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        answer = probe()
    finally:
        sys.stdout = real_stdout
        sys.stderr.flush()
    with os.fdopen(answer_fd, "w") as out:
        out.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
