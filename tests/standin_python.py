"""A stand-in for the service's interpreter (``[deployment] python``): a real venv holding a stub torch.

The venv is made by ``python -m venv --without-pip`` under the test's tmp_path
(about a tenth of a second), so the audit starts a real interpreter by its path,
in a real environment that has no ishowd. Its site-packages holds a ``torch``
package that answers as NVIDIA's build for the Jetson does
(``torch.__version__``, ``torch.version.cuda``, ``torch.cuda.is_available()``,
``get_device_name(0)``, ``mem_get_info()``, ``torch.compile``,
``torch.amp.autocast``), reading its answers at import from ``stub.json``
beside it, which a test changes with ``set()``:

- ``import_error``: importing torch raises ImportError with this text;
- ``cuda_available``, ``device``, ``cuda``, ``version``, ``mem_free``, ``mem_total``;
- ``compile``: false, a torch older than 2.0 (no ``torch.compile``);
- ``hang``: ``torch.cuda.is_available()`` blocks forever, as a stuck CUDA
  initialisation does, after starting a grandchild and writing both pids to
  ``hung.pids`` (so a test sees the whole group gone);
- ``noise``: importing torch prints to stdout, from Python and through file
  descriptor 1 directly, as torch's and CUDA's libraries do.

Each process importing it is counted (``imports()``).
"""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

HEALTHY = {"version": "2.5.0a0+872d972e41.nv24.08", "cuda": "12.6", "cuda_available": True, "device": "Orin",
           "mem_free": 40_000_000_000, "mem_total": 64_000_000_000, "compile": True, "hang": False,
           "import_error": None, "noise": True}

TORCH_INIT = '''\
import json as _json
import os as _os
import sys as _sys

_HERE = _os.path.dirname(_os.path.abspath(__file__))
with open(_os.path.join(_HERE, "stub.json")) as _f:
    _STUB = _json.load(_f)
with open(_os.path.join(_HERE, "imports.log"), "a") as _f:
    _f.write(f"{_os.getpid()}\\n")
if _STUB["import_error"]:
    raise ImportError(_STUB["import_error"])
if _STUB["noise"]:
    print("torch stub: a warning printed to stdout while importing")
    _sys.stdout.flush()
    _os.write(1, b"torch stub: a C library writing to file descriptor 1\\n")

__version__ = _STUB["version"]
float16, float32, bfloat16 = "torch.float16", "torch.float32", "torch.bfloat16"

from . import amp, cuda, version  # noqa: E402

if _STUB["compile"]:
    def compile(model, *, mode=None, fullgraph=False, dynamic=None, backend="inductor"):
        return model
'''

TORCH_VERSION = '''\
from . import _STUB
cuda = _STUB["cuda"]
'''

TORCH_CUDA = '''\
import os
import subprocess
import sys
import threading

from .. import _HERE, _STUB


def is_available():
    if _STUB["hang"]:
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        with open(os.path.join(_HERE, "hung.pids"), "w") as f:
            f.write(f"{os.getpid()} {sleeper.pid}\\n")
        threading.Event().wait()
    return bool(_STUB["cuda_available"])


def _need_device():
    if not _STUB["cuda_available"]:
        raise RuntimeError("No CUDA GPUs are available")


def get_device_name(device=None):
    _need_device()
    return _STUB["device"]


def mem_get_info(device=None):
    _need_device()
    return (_STUB["mem_free"], _STUB["mem_total"])
'''

TORCH_AMP = '''\
class autocast:
    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        self.device_type, self.dtype, self.enabled = device_type, dtype, enabled

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, func):
        return func
'''


class StandinPython:
    """A venv at ``root``; ``python`` is its interpreter; ``set(**answers)`` changes the stub's answers."""

    def __init__(self, root: Path):
        self.root = Path(root)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.root)], check=True,
                       capture_output=True)
        self.python = self.root / "bin" / "python"
        purelib = sysconfig.get_path("purelib", vars={"base": str(self.root), "platbase": str(self.root)})
        self.torch = Path(purelib) / "torch"
        for rel, text in (("__init__.py", TORCH_INIT), ("version.py", TORCH_VERSION),
                          ("cuda/__init__.py", TORCH_CUDA), ("amp/__init__.py", TORCH_AMP)):
            (self.torch / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.torch / rel).write_text(text)
        self.answers = dict(HEALTHY)
        self.set()

    def set(self, **answers) -> "StandinPython":
        unknown = set(answers) - set(HEALTHY)
        assert not unknown, f"the stub torch has no answer {unknown}"
        self.answers.update(answers)
        (self.torch / "stub.json").write_text(json.dumps(self.answers))
        return self

    def imports(self) -> int:
        """How many processes have imported the stub torch so far."""
        path = self.torch / "imports.log"
        return len(path.read_text().split()) if path.exists() else 0

    def hung_pids(self) -> list[int]:
        """The hung probe's pid and its grandchild's, once ``hang`` has made them."""
        path = self.torch / "hung.pids"
        return [int(p) for p in path.read_text().split()] if path.exists() else []


def gone(pid: int) -> bool:
    """No such process, or only its zombie (killed, waiting for a parent that is not ours to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def standin_python(tmp_path) -> StandinPython:
    return StandinPython(tmp_path / "service-env")
