"""The audit's 15 checks: declared once, as data, in the order they run and are shown.

Each check has a name, a group, the one thing it needs and a function that looks
and answers ``(passed, detail, output)``: the detail one line for people, the
output the whole of what it saw, kept with the run. What the checks need is
computed once, at the first check that asks, and shared (``Shared``):

- ``probe``: one child of ``[deployment] python`` (``torch_child.run_probe``) for
  python, cuda, f5-api-import and torch-compile (and gpu-memory where neither a
  Jetson nor NVML shows the GPU);
- ``gpu``: one reading of the GPU collectors (``gpu.read_gpu``);
- ``backend``, ``benchmark``: the benchmark's refusal (backend down, too little GPU
  memory) once, one synthesis for quick-performance, one benchmark run for both
  max-autotune-benchmark and rtf-target; a scheduled audit first waits for a quiet
  spell (``benchmark.wait_for_quiet``), once, before the first of them;
- ``files``: the service's config and F5-TTS's sources under ``[deployment] root``,
  each read and parsed once; the optimisation checks read the code with ``ast``, so a
  comment or a string naming an optimisation never passes for it.

Every check runs whatever the others found: one that could not look (no
interpreter, no backend, no file) has failed, with the reason as its detail; one
that breaks has failed with the exception as its detail, never the audit.
"""
from __future__ import annotations

import ast
import json
import os
import re
import time
from typing import Callable, NamedTuple, Optional

from .. import benchmark
from ..jobs import JobContext, Outcome, Stopped
from . import gpu
from .torch_child import ProbeFailed, run_probe

SERVICE_CONFIG = "config/ishowtts.toml"
F5_API = "third_party/F5-TTS/src/f5_tts/api.py"
UTILS_INFER = "third_party/F5-TTS/src/f5_tts/infer/utils_infer.py"
DEFAULT_REFERENCE = "data/voices/demo_reference.wav"   # the service's voice when the config lists none
CODE_DEFAULT_NFE = 16                                  # what F5 synthesises with when the config does not say
OUTPUT_CHARS = 16384                                   # of one check's output kept with the run


class CouldNotLook(Exception):
    """What a check needed is not there; ``str()`` is the reason, the check's detail."""


class Check(NamedTuple):
    name: str
    group: str
    needs: str                                           # probe | gpu | backend | benchmark | files
    look: Callable[["Shared"], tuple[bool, str, str]]


class Shared:
    """What the checks need, each got once at the first check asking, and its failure kept as well."""

    def __init__(self, config, ctx: JobContext):
        self.config = config
        self.ctx = ctx
        self.settings = config.sections["jobs.audit"]
        self.root = config.deployment.root
        self.quiet_problem: Optional[str] = None
        self._got: dict = {}

    def _once(self, key, get):
        if key not in self._got:
            try:
                self._got[key] = (True, get())
            except Stopped:
                raise
            except Exception as exc:
                self._got[key] = (False, exc)
        ok, value = self._got[key]
        if not ok:
            raise value
        return value

    def probe(self) -> dict:
        return self._once("probe", lambda: run_probe(self.config, timeout=self.settings.probe_timeout,
                                                     run=self.ctx.run))

    def gpu(self) -> gpu.GpuReading:
        return self._once("gpu", lambda: gpu.read_gpu(self.config, self.ctx.collectors()))

    def refusal(self) -> Optional[str]:
        """Why no synthesis may be sent, or None."""
        return self.quiet_problem or self._once(
            "refusal", lambda: benchmark.refusal(self.config, self.ctx.collectors(), probe=self.probe))

    def quick(self):
        timeout = max(0.001, min(benchmark.settings(self.config).request_timeout, self.ctx.remaining()))
        return self._once("quick", lambda: benchmark.synthesize(self.config, timeout=timeout))

    def benchmark(self) -> Outcome:
        return self._once("benchmark", lambda: benchmark.run_benchmark(self.config, self.ctx, refused_checked=True))

    def service_config(self) -> Optional[dict]:
        """``config/ishowtts.toml`` as data; None when there is none (the service runs on its defaults)."""
        return self._once("service-config", self._read_service_config)

    def _read_service_config(self) -> Optional[dict]:
        from ..config import tomllib
        path = os.path.join(self.root, SERVICE_CONFIG)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CouldNotLook(f"{SERVICE_CONFIG} cannot be read: {exc.strerror}") from None
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise CouldNotLook(f"{SERVICE_CONFIG} is not UTF-8 text (byte {exc.start})") from None
        except tomllib.TOMLDecodeError as exc:
            raise CouldNotLook(f"{SERVICE_CONFIG} is not valid TOML: {exc}") from None

    def source(self, rel: str) -> tuple[ast.Module, list[str]]:
        """A Python file of the deployment parsed, and its lines."""
        return self._once(("source", rel), lambda: self._parse(rel))

    def _parse(self, rel: str) -> tuple[ast.Module, list[str]]:
        path = os.path.join(self.root, rel)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise CouldNotLook(f"{rel} does not exist") from None
        except OSError as exc:
            raise CouldNotLook(f"{rel} cannot be read: {exc.strerror}") from None
        try:
            tree = ast.parse(raw, filename=rel)
        except SyntaxError as exc:
            raise CouldNotLook(f"{rel} does not parse: line {exc.lineno}: {exc.msg}") from None
        except ValueError as exc:       # a NUL byte
            raise CouldNotLook(f"{rel} does not parse: {exc}") from None
        return tree, raw.decode("utf-8", "replace").splitlines()


# --- pre-flight --------------------------------------------------------------------------

def _version(text: str) -> tuple:
    found = re.match(r"([0-9]+)\.([0-9]+)", text)
    return (int(found.group(1)), int(found.group(2))) if found else ()


def _probe_output(answer: dict) -> str:
    return json.dumps(answer, indent=2, ensure_ascii=False)


def check_python(s: Shared):
    a = s.probe()
    said = f"Python {a['python']} ({a['executable']})"
    need = s.settings.min_python
    if _version(a["python"]) < _version(need):
        return False, f"{said} is older than {need} ([jobs.audit] min_python): the service's torch and F5-TTS " \
                      f"need {need}", _probe_output(a)
    return True, said, _probe_output(a)


def _torch_missing(a: dict) -> Optional[str]:
    if a["torch"] is None:
        return f"torch does not import in the service's interpreter: {a['torch_error']}"
    return None


def check_cuda(s: Shared):
    a = s.probe()
    missing = _torch_missing(a)
    if missing:
        return False, missing, _probe_output(a)
    if a["cuda_available"]:
        return True, f"CUDA {a['cuda_version']}, {a['device_name']}", _probe_output(a)
    if a["cuda_version"] is None:
        return False, (f"torch {a['torch']} is a build without CUDA (torch.version.cuda is None): install "
                       "NVIDIA's build for this JetPack"), _probe_output(a)
    why = f": {a['cuda_error']}" if a.get("cuda_error") else ""
    return False, (f"torch {a['torch']} (CUDA {a['cuda_version']}) sees no CUDA device "
                   f"(torch.cuda.is_available() is False{why})"), _probe_output(a)


def _mhz(hz) -> str:
    return "?" if hz is None else f"{hz / 1e6:.1f} MHz"


def check_gpu_locked(s: Shared):
    r = s.gpu()
    output = repr(r)
    if r.kind == "none":
        return False, r.problem, output
    if not r.locked:
        return False, f"the GPU's clock lock could not be read ({r.kind})", output
    parts = []
    for label in sorted(r.locked):
        cur, top = r.clocks.get(label, (None, None))
        state = "locked at" if r.locked[label] else "NOT LOCKED:"
        parts.append(f"{label} {state} {_mhz(cur)} of {_mhz(top)}")
    if all(r.locked.values()):
        return True, "; ".join(parts), output
    hint = ("run `sudo jetson_clocks` (after `sudo nvpmodel -m 0` where the power mode caps the clock)"
            if r.kind == "jetson" else "`sudo nvidia-smi -lgc <max MHz>` holds the clock")
    return False, "; ".join(parts) + f" — {hint}", output


# --- performance -------------------------------------------------------------------------

def check_quick_performance(s: Shared):
    refused = s.refusal()
    if refused:
        return False, f"not run: {refused}", ""
    a = s.quick()
    output = json.dumps(a._asdict(), indent=2, ensure_ascii=False)
    if not a.ok:
        return False, f"one synthesis failed: {a.error}", output
    return True, f"RTF {a.rtf:.2f} ({a.wall:.1f} s for {a.audio_seconds:.1f} s of audio, voice {a.voice})", output


def _benchmark_output(o: Outcome) -> str:
    return f"{o.status}: {o.detail}\n" + json.dumps(o.result, indent=2, ensure_ascii=False, default=str)


def check_benchmark(s: Shared):
    refused = s.refusal()
    if refused:
        return False, f"not run: {refused}", ""
    o = s.benchmark()
    if o.status == "ok":
        return True, o.detail, _benchmark_output(o)
    return False, f"benchmark {o.status}: {o.detail}", _benchmark_output(o)


def check_rtf_target(s: Shared):
    refused = s.refusal()
    if refused:
        return False, f"not run: {refused}", ""
    o = s.benchmark()
    rtf = (o.result or {}).get("rtf") or {}
    mean, limit = rtf.get("mean"), s.settings.max_rtf
    if not isinstance(mean, (int, float)):
        return False, f"no mean RTF: the benchmark {o.status}: {o.detail}", _benchmark_output(o)
    runs = (o.result or {}).get("runs")
    over = f" over {runs} runs" if isinstance(runs, int) else ""
    if mean < limit:
        return True, f"mean RTF {mean:.3f}{over}, below {limit:g}", _benchmark_output(o)
    return False, f"mean RTF {mean:.3f}{over} is not below {limit:g} ([jobs.audit] max_rtf)", _benchmark_output(o)


# --- functional --------------------------------------------------------------------------

def check_f5_api_import(s: Shared):
    a = s.probe()
    if a["f5_api"]:
        return True, f"f5_tts.api imports ({a.get('f5_api_file')})", _probe_output(a)
    return False, f"import f5_tts.api failed: {a['f5_api_error']}", _probe_output(a)


def check_torch_compile(s: Shared):
    a = s.probe()
    missing = _torch_missing(a)
    if missing:
        return False, missing, _probe_output(a)
    if a["compile"]:
        return True, f"torch.compile is there (torch {a['torch']})", _probe_output(a)
    return False, f"torch {a['torch']} has no torch.compile (PyTorch 2.0 and newer have it)", _probe_output(a)


# --- system ------------------------------------------------------------------------------

def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def check_gpu_memory(s: Shared):
    reading = s.gpu()
    free, how = gpu.free_memory(s.config, reading, probe=s.probe)
    need = s.settings.min_gpu_free
    output = f"free: {free}\nread from: {how}\nneeded: more than {need}"
    if free is None:
        return False, how, output
    if free > need:
        return True, f"{_gb(free)} free, read as {how}; more than {_gb(need)} needed", output
    return False, (f"only {_gb(free)} free, read as {how}; more than {_gb(need)} needed "
                   "([jobs.audit] min_gpu_free)"), output


def _voice_ids(data: dict) -> set:
    """Every voice id the service knows, of every engine (``[[f5.voices]]``, and any other engine's)."""
    ids = set()
    for table in data.values():
        voices = table.get("voices") if isinstance(table, dict) else None
        if isinstance(voices, list):
            ids |= {v["id"] for v in voices if isinstance(v, dict) and isinstance(v.get("id"), str)}
    return ids


def _f5_voices(data: dict) -> list:
    f5 = data.get("f5")
    voices = f5.get("voices", []) if isinstance(f5, dict) else []
    return voices if isinstance(voices, list) else [voices]


def check_config_file(s: Shared):
    data = s.service_config()
    if data is None:
        return False, f"{SERVICE_CONFIG} does not exist", ""
    problems = []
    if "bind_addr" in data and not isinstance(data["bind_addr"], str):
        problems.append("bind_addr is not a string")
    api = data.get("api", {})
    if not isinstance(api, dict):
        problems.append("[api] is not a table")
    elif "max_parallel" in api and not (isinstance(api["max_parallel"], int) and api["max_parallel"] >= 1):
        problems.append(f"[api] max_parallel = {api['max_parallel']!r} is not a whole number of at least 1")
    if "f5" in data and not isinstance(data["f5"], dict):
        problems.append("[f5] is not a table")
    voices = _f5_voices(data)
    seen = set()
    for i, voice in enumerate(voices, 1):
        if not isinstance(voice, dict):
            problems.append(f"[[f5.voices]] entry {i} is not a table")
            continue
        vid = voice.get("id")
        if not isinstance(vid, str) or not vid:
            problems.append(f"[[f5.voices]] entry {i} has no id")
            vid = f"entry {i}"
        elif vid in seen:
            problems.append(f"voice id {vid!r} is listed twice")
        seen.add(vid)
        for key in ("reference_audio", "reference_text"):
            if not isinstance(voice.get(key), str):
                problems.append(f"voice {vid} has no {key}")
    default = data.get("default_voice")
    known = _voice_ids(data)
    if default is not None and (not isinstance(default, str) or (known and default not in known)):
        problems.append(f"default_voice {default!r} is none of the voices ({', '.join(sorted(known))})")
    output = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if problems:
        return False, f"{SERVICE_CONFIG}: " + "; ".join(problems), output
    return True, (f"{SERVICE_CONFIG}: {len(voices)} F5 voice{'' if len(voices) == 1 else 's'} "
                  f"({', '.join(sorted(seen))}), default voice {default or '(not set)'}"), output


def _wav_problem(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except FileNotFoundError:
        return "does not exist"
    except IsADirectoryError:
        return "is a folder, not a file"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if not head:
        return "is empty, not a WAV file"
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return f"is not a WAV file (starts with {head!r})"
    return None


def check_reference_audio(s: Shared):
    try:
        data = s.service_config()
    except CouldNotLook as exc:
        raise CouldNotLook(f"the voices could not be read: {exc}") from None
    voices = [v for v in _f5_voices(data or {}) if isinstance(v, dict)]
    listed = [(str(v.get("id", f"entry {i}")), v.get("reference_audio")) for i, v in enumerate(voices, 1)]
    if not listed:
        listed = [("default", DEFAULT_REFERENCE)]
    problems, lines = [], []
    for vid, rel in listed:
        if not isinstance(rel, str) or not rel:
            problems.append(f"{vid}: no reference_audio")
            continue
        path = rel if os.path.isabs(rel) else os.path.join(s.root, rel)
        problem = _wav_problem(path)
        lines.append(f"{vid}: {path}: {problem or 'RIFF/WAVE'}")
        if problem:
            problems.append(f"{vid}: {rel} {problem}")
    if problems:
        return False, "; ".join(problems), "\n".join(lines)
    return True, f"{len(listed)} reference WAV{'' if len(listed) == 1 else 's'}: " + ", ".join(
        f"{vid} ({rel})" for vid, rel in listed), "\n".join(lines)


# --- optimisation ------------------------------------------------------------------------

def _imported_names(tree: ast.Module) -> dict:
    """Each name the file binds by an import, to the dotted name it stands for (``T`` -> ``torch``,
    ``compile`` -> ``torch.compile``); relative imports are the file's own package, never torch."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, names: dict) -> Optional[str]:
    """``torch.amp.autocast`` for an expression naming it through the file's imports, else None."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, names)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _calls(tree: ast.Module, wanted: tuple) -> list:
    """(dotted name, call) for every call of one of ``wanted`` (a ``with`` item and a decorator are calls)."""
    names = _imported_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func, names)
            if name in wanted:
                found.append((name, node))
    return sorted(found, key=lambda f: (f[1].lineno, f[1].col_offset))


def _lines(lines: list, nodes) -> str:
    return "\n".join(f"{n.lineno}: {lines[n.lineno - 1].strip()}" for n in nodes)


def _mode(call: ast.Call) -> Optional[ast.expr]:
    return next((kw.value for kw in call.keywords if kw.arg == "mode"), None)


def _mode_said(call: ast.Call) -> str:
    mode = _mode(call)
    if mode is None:
        return f"line {call.lineno}: no mode"
    if isinstance(mode, ast.Constant):
        return f"line {call.lineno}: mode={mode.value!r}"
    return f"line {call.lineno}: mode={ast.unparse(mode)}, not a constant"


def check_compile_max_autotune(s: Shared):
    tree, lines = s.source(F5_API)
    calls = [call for _, call in _calls(tree, ("torch.compile",))]
    tuned = [c for c in calls if isinstance(_mode(c), ast.Constant) and _mode(c).value == "max-autotune"]
    output = _lines(lines, calls)
    if tuned:
        return True, f'torch.compile(..., mode="max-autotune") at {F5_API}:{tuned[0].lineno}', output
    if calls:
        said = ", ".join(_mode_said(c) for c in calls)
        return False, f'torch.compile without mode="max-autotune" in {F5_API} ({said})', output
    return False, f"no torch.compile call in {F5_API} (a comment or a string does not count)", output


AUTOCAST = ("torch.amp.autocast", "torch.autocast")     # one class: torch.autocast is torch.amp.autocast
DEPRECATED_AUTOCAST = ("torch.cuda.amp.autocast",)


def check_amp_autocast(s: Shared):
    tree, lines = s.source(UTILS_INFER)
    found = _calls(tree, AUTOCAST + DEPRECATED_AUTOCAST)
    output = _lines(lines, [call for _, call in found])
    current = [(name, call) for name, call in found if name in AUTOCAST]
    if current:
        name, call = current[0]
        return True, f"{name} at {UTILS_INFER}:{call.lineno}", output
    if found:
        return False, (f"only the deprecated torch.cuda.amp.autocast at {UTILS_INFER}:{found[0][1].lineno} "
                       "(torch 2.4 and newer warn at every call): use torch.amp.autocast(\"cuda\", ...)"), output
    return False, f"no torch.amp.autocast in {UTILS_INFER} (a comment or a string does not count)", output


REF_AUDIO_CACHE = "_ref_audio_tensor_cache"


def check_ref_audio_cache(s: Shared):
    tree, lines = s.source(UTILS_INFER)
    stored, loaded = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == REF_AUDIO_CACHE or (
                isinstance(node, ast.Attribute) and node.attr == REF_AUDIO_CACHE):
            (stored if isinstance(node.ctx, ast.Store) else loaded).append(node)
    stored.sort(key=lambda n: n.lineno)
    loaded.sort(key=lambda n: n.lineno)
    output = _lines(lines, stored + loaded)
    if stored and loaded:
        return True, (f"{REF_AUDIO_CACHE} assigned at {UTILS_INFER}:{stored[0].lineno}, read at line"
                      f"{'s' if len(loaded) > 1 else ''} {', '.join(str(n.lineno) for n in loaded)}"), output
    if stored:
        return False, f"{REF_AUDIO_CACHE} is assigned at {UTILS_INFER}:{stored[0].lineno} but never read", output
    if loaded:
        return False, f"{REF_AUDIO_CACHE} is read at {UTILS_INFER}:{loaded[0].lineno} but never assigned", output
    return False, f"no {REF_AUDIO_CACHE} in {UTILS_INFER} (a comment or a string does not count)", output


def check_nfe_step(s: Shared):
    data = s.service_config()
    want = s.settings.nfe_step
    f5 = (data or {}).get("f5")
    value = f5.get("default_nfe_step") if isinstance(f5, dict) else None
    if value is None:
        where = f"{SERVICE_CONFIG} does not exist" if data is None else "[f5] default_nfe_step is not set"
        said = f"{where}: the code default {CODE_DEFAULT_NFE} applies"
        if want == CODE_DEFAULT_NFE:
            return True, said, ""
        return False, f"{said}, {want} expected ([jobs.audit] nfe_step)", ""
    if not isinstance(value, int) or isinstance(value, bool):
        return False, f"[f5] default_nfe_step = {value!r} is not a whole number", ""
    if value == want:
        return True, f"[f5] default_nfe_step = {value}", ""
    return False, f"[f5] default_nfe_step = {value}, {want} expected ([jobs.audit] nfe_step)", ""


CHECKS = (
    Check("python", "pre-flight", "probe", check_python),
    Check("cuda", "pre-flight", "probe", check_cuda),
    Check("gpu-locked", "pre-flight", "gpu", check_gpu_locked),
    Check("quick-performance", "performance", "backend", check_quick_performance),
    Check("max-autotune-benchmark", "performance", "benchmark", check_benchmark),
    Check("rtf-target", "performance", "benchmark", check_rtf_target),
    Check("f5-api-import", "functional", "probe", check_f5_api_import),
    Check("torch-compile", "functional", "probe", check_torch_compile),
    Check("gpu-memory", "system", "gpu", check_gpu_memory),
    Check("config-file", "system", "files", check_config_file),
    Check("reference-audio", "system", "files", check_reference_audio),
    Check("compile-max-autotune", "optimisation", "files", check_compile_max_autotune),
    Check("amp-autocast", "optimisation", "files", check_amp_autocast),
    Check("nfe-step", "optimisation", "files", check_nfe_step),
    Check("ref-audio-cache", "optimisation", "files", check_ref_audio_cache),
)
SYNTHESIS_NEEDS = ("backend", "benchmark")


def _one(check: Check, shared: Shared) -> dict:
    start = time.monotonic()
    try:
        passed, detail, output = check.look(shared)
    except Stopped:
        raise
    except (CouldNotLook, ProbeFailed) as exc:
        passed, detail, output = False, str(exc), ""
    except Exception as exc:         # a check that breaks fails alone, never the audit
        import traceback
        passed, detail, output = False, f"broke: {type(exc).__name__}: {exc}", traceback.format_exc()
    detail = " ".join(str(detail).split())
    return {"check": check.name, "group": check.group, "passed": bool(passed), "detail": detail,
            "seconds": round(time.monotonic() - start, 3), "output": str(output)[:OUTPUT_CHARS]}


def run_checks(config, ctx: JobContext) -> Outcome:
    """All the checks, in order; the run's outcome with each one's result."""
    shared = Shared(config, ctx)
    done: list[dict] = []
    waited = False
    try:
        for check in CHECKS:
            ctx.check()
            if check.needs in SYNTHESIS_NEEDS and not waited:
                waited = True
                if ctx.by != "operator":      # a person asking wants the answer now
                    shared.quiet_problem = _wait_for_quiet(config, ctx)
            result = _one(check, shared)
            done.append(result)
            mark = "✓" if result["passed"] else "✗"
            ctx.progress(f"{mark} {check.name} ({result['seconds']:.1f}s): {result['detail']}")
    except Stopped:
        return Outcome("timeout", f"stopped after {len(done)} of {len(CHECKS)} checks",
                       _result(done))
    passed = sum(r["passed"] for r in done)
    failed = [r["check"] for r in done if not r["passed"]]
    if not failed:
        return Outcome("ok", f"{passed}/{len(CHECKS)} passed", _result(done))
    return Outcome("failed", f"{passed}/{len(CHECKS)} passed; failed: {', '.join(failed)}", _result(done))


def _wait_for_quiet(config, ctx: JobContext) -> Optional[str]:
    try:
        return benchmark.wait_for_quiet(config, ctx)
    except Stopped:
        raise
    except Exception as exc:         # the store could not be read: no synthesis is sent blind
        return f"could not look for a quiet spell: {type(exc).__name__}: {exc}"


def _result(done: list) -> dict:
    return {"checks": done, "passed": sum(r["passed"] for r in done), "total": len(CHECKS)}
