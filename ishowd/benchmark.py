"""The benchmark: timed syntheses through the backend's own API, judged by the regression rules.

What one run does (``run_benchmark``, the ``benchmark`` job's whole run):

1. A scheduled run first waits for a quiet spell (``wait_for_quiet``): F5
   synthesises one request at a time, so a benchmark while viewers are served
   delays their speech. Quiet means no synthesis record (any source but the
   benchmark's own) in the store for ``quiet``; it looks again every ``POLL``
   seconds at most, for up to ``quiet_window``, then gives up (``skipped``).
   An operator's ``ishowctl jobs run benchmark`` runs at once.
2. Refusals (``refusal``): no request is sent, and the run is ``skipped`` with
   the reason, when ``GET /api/health`` does not answer ok within ``[backend]
   health_timeout``, or when less than ``min_gpu_free`` of GPU memory is free
   (``audit.gpu.free_memory``: a Jetson's MemAvailable, NVML, else the
   service's torch). Free memory that cannot be read at all refuses too, with
   why: on a machine with no GPU ("no GPU found ...") a benchmark measures
   nothing worth keeping, and where the reading broke, 5 GB cannot be promised.
3. ``warmup`` requests (checked, not counted; a failed one ends the run
   ``failed``), then ``runs`` requests, one after the other: ``POST /api/tts``
   with ``text``, ``voice`` and ``nfe_step`` (``synthesize``). Per run, the
   client's wall time (``time.monotonic`` around the request and its answer:
   what a viewer waits) and the audio seconds, ``waveform_len / sample_rate``,
   which the WAV inside ``audio_base64`` must confirm (its rate, and its data
   chunk's length in frames). RTF = wall / audio.
4. Memory before (after the warm-up: loading and compiling are not a leak) and
   after the runs: the backend's resident memory (the process whose executable
   is ``[backend] binary``) and the GPU memory in use.

How it is judged (``_judge``): the run fails when any request failed (non-200,
timeout, an answer whose audio does not decode or disagrees), when the mean RTF
is above ``max_mean``, or the worst run above ``worst_factor x baseline``. A
spread (std / mean) above ``max_cv`` and memory growth above ``max_growth`` are
warnings in the detail, the first with the likely cause the store shows for the
minutes of the runs (GPU clock not locked, GPU hot; as ``rtf weekly`` says it).
"""
from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple, Optional

from .jobs import Outcome

SECTION = "jobs.benchmark"
STATS = ("mean", "median", "p95", "best", "worst", "std", "cv")
POLL = 10.0                 # seconds between two looks for a quiet spell, at most
PROBE_TIMEOUT = 120.0       # the service's torch asked for free memory: importing it and CUDA take a while
ANSWER_BYTES = 64 << 20     # the longest text (120 characters, ~30 s of audio) answers about 2 MB
SHOWN = 200                 # characters of the backend's error text kept in a reason
GB = 1e9
MB = 1e6


class Attempt(NamedTuple):
    """One request, verified: ``ok`` with its figures, or not with ``error`` saying why."""
    ok: bool
    wall: float                     # seconds, on the client
    audio_seconds: Optional[float]
    rtf: Optional[float]
    voice: str                      # the voice that answered ("" when none did)
    error: Optional[str]


class BadAnswer(Exception):
    """An answer to POST /api/tts that does not hold the audio it says; ``str()`` says how."""


def settings(config):
    return config.sections[SECTION]


# --- one request ----------------------------------------------------------------------------

def synthesize(config, *, timeout: float, text: Optional[str] = None, voice: Optional[str] = None,
               nfe_step: Optional[int] = None) -> Attempt:
    """One ``POST /api/tts`` (the ``[jobs.benchmark]`` text, voice and NFE unless given), timed and
    verified. Never raises for the backend's faults: they are a failed ``Attempt``."""
    import json
    import urllib.error
    import urllib.request
    s = settings(config)
    body = {"text": s.text if text is None else text, "nfe_step": s.nfe_step if nfe_step is None else nfe_step}
    voice = s.voice if voice is None else voice
    if voice:
        body["voice_id"] = voice
    request = urllib.request.Request(config.backend.url.rstrip("/") + "/api/tts", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    started = time.monotonic()

    def failed(why: str) -> Attempt:
        return Attempt(False, time.monotonic() - started, None, None, "", why)

    try:
        with opener.open(request, timeout=timeout) as resp:
            raw = _read(resp, started + timeout)
    except urllib.error.HTTPError as exc:
        said = exc.read(4096).decode("utf-8", "replace").strip()
        return failed(f"HTTP {exc.code}: {_shorten(said) or exc.reason}")
    except urllib.error.URLError as exc:
        return failed(_why(exc.reason, timeout))
    except Exception as exc:  # timed out or reset while the answer came, a broken status line
        return failed(_why(exc, timeout))
    wall = time.monotonic() - started
    try:
        audio, answered = audio_of(raw)
    except BadAnswer as exc:
        return Attempt(False, wall, None, None, "", str(exc))
    if voice and answered != voice:
        return Attempt(False, wall, audio, None, answered, f"asked for voice {voice!r}, {answered!r} answered")
    return Attempt(True, wall, audio, wall / audio, answered, None)


def _read(resp, deadline: float) -> bytes:
    """The whole answer, within the deadline (a socket timeout bounds each read, not their sum)."""
    parts, size = [], 0
    while True:
        chunk = resp.read(1 << 16)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > ANSWER_BYTES:
            raise BadAnswer(f"the answer is larger than {ANSWER_BYTES >> 20} MiB")
        if time.monotonic() > deadline:
            raise TimeoutError
        parts.append(chunk)


def _why(exc, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, BadAnswer):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"


def audio_of(raw: bytes) -> tuple[float, str]:
    """(audio seconds, voice) of a POST /api/tts answer, once its WAV agrees with what the answer
    says about it; raises ``BadAnswer`` saying what disagrees."""
    import base64
    import binascii
    import json
    try:
        answer = json.loads(raw)
    except ValueError:
        raise BadAnswer(f"the answer is not JSON: {_shorten(raw[:100].decode('utf-8', 'replace'))}") from None
    if not isinstance(answer, dict):
        raise BadAnswer("the answer is not a JSON object")
    rate, frames = answer.get("sample_rate"), answer.get("waveform_len")
    for key, value in (("sample_rate", rate), ("waveform_len", frames)):
        if type(value) is not int or value <= 0:
            raise BadAnswer(f"the answer's {key} is {value!r}, not a positive integer")
    try:
        wav = base64.b64decode(answer.get("audio_base64") or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise BadAnswer("the answer's audio_base64 is not base64") from None
    wav_rate, wav_frames = wav_format(wav)
    if wav_rate != rate:
        raise BadAnswer(f"the WAV says {wav_rate} Hz, the answer's sample_rate {rate}")
    if wav_frames != frames:
        raise BadAnswer(f"the WAV holds {wav_frames} samples, the answer's waveform_len says {frames}")
    voice = answer.get("voice_id")
    return frames / rate, voice if isinstance(voice, str) else ""


def wav_format(data: bytes) -> tuple[int, int]:
    """(sample rate, frames) of a PCM WAV, from its fmt chunk and the length of its data chunk."""
    import struct
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BadAnswer(f"the audio is not a WAV file (it starts {data[:12]!r}, not RIFF....WAVE)")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        start = pos + 8
        if chunk == b"fmt ":
            if size < 16 or start + 16 > len(data):
                raise BadAnswer("the WAV's fmt chunk is cut short")
            _tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", data, start)
            if channels < 1 or bits < 8 or bits % 8:
                raise BadAnswer(f"the WAV's format is not PCM as written: {channels} channels, {bits} bits")
            fmt = (rate, channels * bits // 8)
        elif chunk == b"data":
            if fmt is None:
                raise BadAnswer("the WAV's data chunk comes before its fmt chunk")
            if start + size > len(data):
                raise BadAnswer(f"the WAV is cut short: its data chunk says {size} bytes, {len(data) - start} follow")
            rate, frame = fmt
            if size % frame:
                raise BadAnswer(f"the WAV's data chunk ({size} bytes) is not whole frames of {frame} bytes")
            return rate, size // frame
        pos = start + size + (size & 1)     # chunks are padded to an even length
    raise BadAnswer("the WAV has no data chunk")


# --- before a run -----------------------------------------------------------------------------

def refusal(config, classes: dict, *, probe: Optional[Callable[[], dict]] = None) -> Optional[str]:
    """None, or why no request may be sent now: the backend is down, or too little GPU memory is
    free. ``classes``: the collector classes the GPU is read through (``ctx.collectors()``). ``probe``: asks the service's torch (``torch_child.run_probe``'s answer), used only where
    neither a Jetson nor NVML shows the GPU; None runs the probe unbounded by any job."""
    from .audit.gpu import free_memory, read_gpu
    from .backend.running import Down, health
    url = config.backend.url
    try:
        health(url, config.backend.health_timeout)
    except Down as exc:
        return f"the backend at {url} is down: {exc}"
    if probe is None:
        def probe() -> dict:
            from .audit.torch_child import run_probe
            return run_probe(config, timeout=PROBE_TIMEOUT)
    reading = read_gpu(config, classes)
    free, how = free_memory(config, reading, probe=probe)
    if free is None:
        return how if reading.kind == "none" else f"free GPU memory could not be read: {how}"
    need = settings(config).min_gpu_free
    if free < need:
        return f"only {free / GB:.1f} GB of GPU memory free ({how}); {need / GB:.1f} GB needed"
    return None


def wait_for_quiet(config, ctx) -> Optional[str]:
    """None once no synthesis but the benchmark's own is stored for ``quiet``; else, after
    ``quiet_window`` of looking (or what the run's timeout leaves once its requests are counted),
    the reason to skip. Ends at once when the run is stopped."""
    import select

    from .backend.report import NoRecords, records
    from .config import format_duration
    from .paths import store_path
    from .store.errors import NoStore
    from .store.reader import Reader
    from .timefmt import local_time
    s = settings(config)
    try:
        reader = Reader(store_path(config))
    except NoStore:
        return None                 # nothing recorded, nothing to wait for
    # the requests after the wait may each take request_timeout: the wait gets what is left
    window = max(0, int(min(s.quiet_window, ctx.remaining() - (s.warmup + s.runs) * s.request_timeout)))
    give_up = time.monotonic() + window
    last_seen = None
    try:
        while True:
            ctx.check()
            now = time.time()
            try:
                # (a record stamped ahead of this clock counts too: the backend logs in its own time)
                recent = [r["ts"] for r in records(reader, now - s.quiet, now + s.quiet)
                          if r["source"] != "benchmark"]
            except NoRecords:
                return None
            if not recent:
                return None
            latest = max(recent)
            if last_seen is None:
                ctx.progress(f"waiting for a quiet spell of {format_duration(s.quiet)} "
                             f"(last synthesis {local_time(latest)})")
            last_seen = latest if last_seen is None else max(last_seen, latest)
            left = give_up - time.monotonic()
            if left <= 0:
                cut = "" if window == s.quiet_window else (
                    ": that is all [jobs.benchmark] timeout leaves after (warmup + runs) x request_timeout")
                return (f"no quiet spell of {format_duration(s.quiet)} within {format_duration(window)} "
                        f"(last synthesis {local_time(last_seen)}){cut}")
            # the spell can come no sooner than when the newest record has aged out of it
            wait = min(POLL, left, max(0.0, latest + s.quiet - now) + 0.01)
            select.select([ctx.cancel], [], [], min(wait, ctx.remaining()))
    finally:
        reader.close()


# --- the run ------------------------------------------------------------------------------------

def run_benchmark(config, ctx, *, refused_checked: bool = False) -> Outcome:
    """The benchmark job's whole run (see the module's docstring); ``refused_checked``: the caller
    (the audit) has just waited for a quiet spell and asked ``refusal`` itself."""
    s = settings(config)
    if not refused_checked:
        if ctx.by != "operator":
            why = wait_for_quiet(config, ctx)
            if why:
                return Outcome("skipped", why, {})
        from .audit.torch_child import run_probe
        why = refusal(config, ctx.collectors(),
                      probe=lambda: run_probe(config, timeout=PROBE_TIMEOUT, run=ctx.run))
        if why:
            return Outcome("skipped", why, {})
    result = {"runs": s.runs, "warmup": s.warmup, "text": s.text, "voice": s.voice, "nfe_step": s.nfe_step}
    for i in range(s.warmup):
        ctx.progress(f"warm-up request {i + 1} of {s.warmup}")
        attempt = _send(config, ctx)
        if not attempt.ok:
            return Outcome("failed", f"the warm-up request failed: {attempt.error}",
                           dict(result, rtf=dict.fromkeys(STATS), per_run=[],
                                failed_runs=[f"warm-up: {attempt.error}"]))
    classes = ctx.collectors()
    before = _memory(config, classes)
    attempts, times = [], []
    for i in range(s.runs):
        ctx.progress(f"run {i + 1} of {s.runs}")
        attempts.append(_send(config, ctx))
        times.append(time.time())
    return _judge(config, result, attempts, times, before, _memory(config, classes))


def _send(config, ctx) -> Attempt:
    ctx.check()
    return synthesize(config, timeout=max(0.001, min(settings(config).request_timeout, ctx.remaining())))


def _memory(config, classes: dict) -> dict:
    """The backend's resident memory and the GPU memory in use now (None: not known)."""
    from .audit.gpu import read_gpu
    from .backend.running import BackendProcess
    rss = BackendProcess(config).rss(time.time())
    return {"backend_rss": None if rss is None else int(rss), "gpu_used": read_gpu(config, classes).used_bytes}


def figures(rtfs: list) -> dict:
    """The statistics judged, over the runs' RTFs (at least one)."""
    from .backend.report import quantile
    vals = sorted(rtfs)
    n = len(vals)
    mean = sum(vals) / n
    # the population std (divide by n, numpy's default): the runs are the whole set judged, not a
    # sample of a larger one whose spread is estimated
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / n)
    out = {"mean": mean, "median": quantile(vals, 0.5), "p95": quantile(vals, 0.95), "best": vals[0],
           "worst": vals[-1], "std": std, "cv": std / mean}
    return {k: round(v, 6) for k, v in out.items()}


def _judge(config, result: dict, attempts: list, times: list, before: dict, after: dict) -> Outcome:
    s = settings(config)
    good = [a for a in attempts if a.ok]
    failed_runs = [f"run {i}: {a.error}" for i, a in enumerate(attempts, 1) if not a.ok]
    growth = {k: after[k] - before[k] if after[k] is not None and before[k] is not None else None
              for k in ("backend_rss", "gpu_used")}
    result = dict(result, voice=good[0].voice if good else result["voice"],
                  rtf=figures([a.rtf for a in good]) if good else dict.fromkeys(STATS),
                  per_run=[{"wall": round(a.wall, 6), "audio_seconds": a.audio_seconds, "rtf": round(a.rtf, 6)}
                           for a in good],
                  failed_runs=failed_runs,
                  memory={"backend_rss_before": before["backend_rss"], "backend_rss_after": after["backend_rss"],
                          "gpu_used_before": before["gpu_used"], "gpu_used_after": after["gpu_used"],
                          "growth": growth},
                  warnings=[], cause=None)
    failures, warnings = [], result["warnings"]
    if failed_runs:
        failures.append(f"{len(failed_runs)} of {len(attempts)} runs failed ({'; '.join(failed_runs)})")
    if not good:
        return Outcome("failed", "no figures: " + failures[0], result)
    st = result["rtf"]
    if st["mean"] > s.max_mean:
        failures.append(f"mean RTF {st['mean']:.3f} > {s.max_mean:g} (max_mean)")
    limit = s.worst_factor * s.baseline
    if st["worst"] > limit:
        failures.append(f"worst run RTF {st['worst']:.3f} > {limit:.3f} "
                        f"({s.worst_factor:g} x baseline {s.baseline:g})")
    unsteady = st["cv"] > s.max_cv
    if unsteady:
        warnings.append(f"cv {st['cv']:.1%} > {s.max_cv:.0%}: the runs were unsteady")
    # the GPU's state explains slow or unsteady runs (not failed requests, nor memory)
    slow = st["mean"] > s.max_mean or st["worst"] > limit
    cause = _cause(config, times) if slow or unsteady else None
    for key, what in (("backend_rss", "backend RSS"), ("gpu_used", "GPU memory in use")):
        if growth[key] is not None and growth[key] > s.max_growth:
            warnings.append(f"{what} grew {growth[key] / MB:.1f} MB over the runs (more than "
                            f"{s.max_growth / MB:g} MB: a leak?)")
    result["cause"] = cause
    detail = (f"mean RTF {st['mean']:.3f} (median {st['median']:.3f}, p95 {st['p95']:.3f}, best {st['best']:.3f}, "
              f"cv {st['cv']:.1%}) over {len(good)} runs")
    if failures:
        detail += "; FAILED: " + "; ".join(failures)
    if warnings:
        detail += "; warning: " + "; ".join(warnings)
    if cause:
        detail += "; " + cause
    return Outcome("failed" if failures else "ok", detail, result)


def _cause(config, times: list) -> str:
    """What the store saw in the minutes of the runs, as the weekly report says it."""
    from .backend.report import likely_cause
    from .paths import store_path
    from .store.errors import NoStore
    from .store.reader import Reader
    try:
        reader = Reader(store_path(config))
    except NoStore:
        return "no GPU readings stored for the minutes of the runs (no store)"
    try:
        return likely_cause(reader, times, since=int(min(times)) - 60, until=int(max(times)) + 60,
                            hot_celsius=config.rtf.hot_celsius, per="minute", what="runs")
    finally:
        reader.close()
