"""The benchmark job: real HTTP on 127.0.0.1 against the stand-in backend (which really takes its
RTF's time), a real store on disk, the GPU and the backend's process from fixture trees."""
from __future__ import annotations

import json
import math
import re
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import entry_point, run
from hw_helpers import FIXTURES
from standin_backend import SAMPLE_RATE, StandinBackend
from standin_python import StandinPython
from test_daemon import wait_for

from ishowd import catalog
from ishowd.config import ConfigError
from ishowd.jobs import JobContext, Stopped
from ishowd.process import Cancel

JETSON = FIXTURES / "orin-jp6-locked"
PLAIN = FIXTURES / "x86-plain"           # no GPU: free memory can only come from the service's torch
PID = 4242
KB = 1024
RSS_KB = 900_000
MEMINFO = (JETSON / "proc" / "meminfo").read_text()
CLIENT_OVERHEAD = 0.05      # seconds the client may spend beyond the stand-in's synthesis (HTTP, JSON, base64)


class Rig:
    """A stand-in backend, a Jetson's sysfs (or a plain PC's), a procfs holding the backend's process,
    and a config tying them together."""

    def __init__(self, tmp: Path, *, board: Path = JETSON, seconds_per_char: float = 0.02):
        self.tmp, self.board = tmp, board
        self.proc = tmp / "proc"
        self.binary = tmp / "target" / "release" / "ishowtts-backend"
        process = self.proc / str(PID)
        process.mkdir(parents=True)
        (process / "exe").symlink_to(self.binary)
        (process / "cmdline").write_bytes(str(self.binary).encode() + b"\0")
        (process / "comm").write_bytes(b"ishowtts-backen\n")
        self.rss_kb, self.nvmap_kb, self.available_kb = RSS_KB, 1_847_296, 58_720_256
        self.write_proc()
        (tmp / "logs").mkdir()
        self.backend = StandinBackend(tmp / "logs" / "backend.log", seconds_per_char=seconds_per_char).start()
        self.url = self.backend.url          # kept when the stand-in stops answering
        self.python = "/nonexistent/python"
        self.db = tmp / "ishowd.db"
        self._store = None

    def write_proc(self) -> None:
        (self.proc / str(PID) / "status").write_text(f"Name:\tishowtts-backen\nVmRSS:\t {self.rss_kb} kB\n")
        meminfo = re.sub(r"MemAvailable: +\d+", f"MemAvailable:   {self.available_kb}", MEMINFO)
        (self.proc / "meminfo").write_text(re.sub(r"NvMapMemUsed: +\d+", f"NvMapMemUsed:   {self.nvmap_kb}", meminfo))

    def toml(self, keys: str = "") -> str:
        return f"""
[storage]
path = "{self.db}"
[exporter]
listen = ""
[sampling]
interval = "1s"
[host]
sysfs_root = "{self.board / 'sys'}"
procfs_root = "{self.proc}"
[gpu]
nvml = "off"
jtop_socket = "/nonexistent/jtop.sock"
nvpmodel_path = "/nonexistent/nvpmodel"
[rtf]
logs = ["{self.tmp / 'logs' / 'backend.log'}"]
interval = "1s"
[backend]
url = "{self.url}"
binary = "{self.binary}"
health_interval = "1s"
health_timeout = "1s"
[deployment]
root = "{self.tmp}"
python = "{self.python}"
[jobs.benchmark]
{keys}
"""

    def config(self, keys: str = ""):
        return catalog.loads_config(self.toml(keys), "test.toml")

    def run(self, keys: str = "", *, by: str = "operator", progress=None, cancel=None):
        """The job's run as the runner starts it: bounded by its timeout."""
        from ishowd.benchmark import run_benchmark
        config = self.config(keys)
        ctx = JobContext(config, timeout=config.sections["jobs.benchmark"].timeout, cancel=cancel or Cancel(),
                         by=by, progress=progress, collectors=catalog.collectors)
        return run_benchmark(config, ctx)

    def posts(self) -> list:
        return [r for r in self.backend.requests if r.method == "POST"]

    @property
    def store(self):
        from ishowd.store.writer import Store
        if self._store is None:
            self._store = Store(self.db)
        return self._store

    def synthesis_record(self, ts: float, source: str = "api") -> None:
        """A synthesis as the log ingestion stores it, finished at ``ts``."""
        from ishowd.store import sql
        with self.store.transaction() as conn:
            conn.execute(sql.RTF_INSERT, (int(ts * 1e6), source, "walter", 2100, 8.4, 0.25, "f5", 0,
                                          str(self.tmp / "logs" / "backend.log")))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self.backend.stop()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def p95(values: list) -> float:
    """Linear interpolation between the closest ranks, as numpy.percentile does by default."""
    vals = sorted(values)
    pos = 0.95 * (len(vals) - 1)
    lo = math.floor(pos)
    return vals[lo] + (vals[min(lo + 1, len(vals) - 1)] - vals[lo]) * (pos - lo)


# --- what it measures ------------------------------------------------------------------------

def test_figures_are_the_client_side_timings_of_a_known_rtf_schedule(tmp_path):
    r = Rig(tmp_path, seconds_per_char=0.04)
    try:
        schedule = [0.20, 0.25, 0.30, 0.22, 0.28]
        r.backend.rtfs = [0.60] + list(schedule)              # the warm-up: slow, as a first request compiles
        out = r.run()
    finally:
        r.close()
    assert out.status == "ok", out.detail
    res = out.result
    text = catalog.loads_config("", "-").sections["jobs.benchmark"].text
    # one warm-up and five runs, each the configured sentence at NFE 8, the backend's default voice
    assert [(p.path, p.body) for p in r.posts()] == [("/api/tts", {"text": text, "nfe_step": 8})] * 6
    assert (res["runs"], res["warmup"], res["text"], res["voice"], res["nfe_step"]) == (5, 1, text, "walter", 8)
    served = r.backend.syntheses[1:]                          # the warm-up is not counted
    assert [s.rtf for s in served] == schedule
    for run_, s in zip(res["per_run"], served, strict=True):
        # audio seconds are waveform_len / sample_rate, exactly
        assert run_["audio_seconds"] == round(SAMPLE_RATE * 0.04 * len(text)) / SAMPLE_RATE == s.audio_seconds
        # the client waited at least as long as the stand-in synthesised, and not much longer
        assert s.seconds <= run_["wall"] <= s.seconds + CLIENT_OVERHEAD
        assert run_["rtf"] == pytest.approx(run_["wall"] / run_["audio_seconds"], abs=1e-6)
        assert run_["rtf"] >= s.measured_rtf
    rtfs = [p["rtf"] for p in res["per_run"]]
    mean, std = statistics.fmean(rtfs), statistics.pstdev(rtfs)
    expected = {"mean": mean, "median": statistics.median(rtfs), "p95": p95(rtfs), "best": min(rtfs),
                "worst": max(rtfs), "std": std, "cv": std / mean}
    assert res["rtf"] == pytest.approx(expected, abs=2e-6)
    # and they are the schedule's, within what the client adds
    slack = CLIENT_OVERHEAD / served[0].audio_seconds
    assert statistics.fmean(schedule) <= res["rtf"]["mean"] <= statistics.fmean(schedule) + slack
    assert 0.20 <= res["rtf"]["best"] <= 0.20 + slack and 0.30 <= res["rtf"]["worst"] <= 0.30 + slack
    assert res["failed_runs"] == [] and res["warnings"] == []
    m = res["memory"]
    assert m["backend_rss_before"] == m["backend_rss_after"] == RSS_KB * KB
    assert m["gpu_used_before"] == m["gpu_used_after"] == 1_847_296 * KB
    assert m["growth"] == {"backend_rss": 0, "gpu_used": 0}
    st = res["rtf"]
    assert out.detail == (f"mean RTF {st['mean']:.3f} (median {st['median']:.3f}, p95 {st['p95']:.3f}, "
                          f"best {st['best']:.3f}, cv {st['cv']:.1%}) over 5 runs")


def test_a_voice_and_nfe_step_are_sent_as_configured(rig):
    out = rig.run('voice = "demo"\nnfe_step = 16\nwarmup = 0\nruns = 2\n')
    assert out.status == "ok", out.detail
    assert [p.body["voice_id"] for p in rig.posts()] == ["demo", "demo"]
    assert [s.nfe_step for s in rig.backend.syntheses] == [16, 16]
    assert out.result["voice"] == "demo" and len(out.result["per_run"]) == 2


# --- how it is judged -------------------------------------------------------------------------

def test_a_mean_above_max_mean_fails(rig):
    rig.backend.rtfs = [0.40] * 6
    out = rig.run()
    assert out.status == "failed"
    assert re.search(r"; FAILED: mean RTF 0\.4\d\d > 0\.35 \(max_mean\)", out.detail), out.detail
    assert "worst run" not in out.detail          # 0.40 is within 1.5 x 0.30


def test_one_slow_run_fails_on_the_worst_rule_while_the_mean_passes(rig):
    rig.backend.rtfs = [0.2, 0.2, 0.2, 0.2, 0.2, 0.7]
    out = rig.run()
    assert out.status == "failed"
    assert out.result["rtf"]["mean"] < 0.35
    assert re.search(r"FAILED: worst run RTF 0\.7\d\d > 0\.450 \(1\.5 x baseline 0\.3\)", out.detail), out.detail
    assert "max_mean" not in out.detail


def test_unsteady_runs_are_a_warning_not_a_failure(rig):
    rig.backend.rtfs = [0.15, 0.15, 0.30, 0.15, 0.30, 0.15]
    out = rig.run()
    assert out.status == "ok", out.detail
    assert out.result["rtf"]["cv"] > 0.20
    assert re.search(r"; warning: cv \d\d\.\d% > 20%: the runs were unsteady; ", out.detail), out.detail


@pytest.mark.parametrize("locked, celsius, cause", [
    (0.0, 50.0, "likely cause: GPU not locked during 5 of 5 runs"),
    (1.0, 91.0, "likely cause: GPU hot (up to 91 °C, thermal throttling likely) during 5 of 5 runs"),
    (1.0, 50.0, "GPU locked and below 80 °C while the runs ran: not the usual causes"),
    (None, None, "no GPU readings stored for the minutes of the runs"),
], ids=["unlocked", "hot", "neither", "no-readings"])
def test_unsteady_runs_name_the_likely_cause_the_store_shows(rig, locked, celsius, cause):
    from ishowd.metrics import Sample
    now = int(time.time())
    for ts in range(now - 120, now + 180, 10):          # the daemon's ticks around the runs
        batch = []
        if locked is not None:
            batch = [Sample(catalog.metric("gpu_frequency_locked"), locked, {"gpu": "gpu"}),
                     Sample(catalog.metric("gpu_temperature_celsius"), celsius, {"gpu": "gpu"})]
        rig.store.write(ts, batch)
    rig.backend.rtfs = [0.15, 0.15, 0.30, 0.15, 0.30, 0.15]
    out = rig.run()
    assert out.status == "ok"
    assert out.detail.endswith("the runs were unsteady; " + cause), out.detail
    assert out.result["cause"] == cause


def test_memory_growth_over_the_runs_is_a_warning(rig):
    step_kb = 20_000

    def leaking(seconds: float) -> None:      # each synthesis keeps 20 MB more, host and GPU side
        time.sleep(seconds)
        rig.rss_kb += step_kb
        rig.nvmap_kb += step_kb
        rig.write_proc()

    rig.backend.synth_work = leaking
    out = rig.run()
    assert out.status == "ok", out.detail
    m = out.result["memory"]
    # measured after the warm-up (loading is not a leak) and after the five runs
    assert m["backend_rss_before"] == (RSS_KB + step_kb) * KB
    assert m["backend_rss_after"] == (RSS_KB + 6 * step_kb) * KB
    assert m["growth"] == {"backend_rss": 5 * step_kb * KB, "gpu_used": 5 * step_kb * KB}
    grew = f"{5 * step_kb * KB / 1e6:.1f}"
    assert out.detail.endswith(f"; warning: backend RSS grew {grew} MB over the runs (more than 50 MB: a leak?); "
                               f"GPU memory in use grew {grew} MB over the runs (more than 50 MB: a leak?)")
    assert rig.run("max_growth = 200000000").result["warnings"] == []


@pytest.mark.parametrize("mode, reason", [
    ("bad_wav", r"run 3: the WAV holds 2400 samples, the answer's waveform_len says 4800"),
    ("broken_audio", r"run 3: the audio is not a WAV file \(it starts b'ID3\\x04.*, not RIFF\.\.\.\.WAVE\)"),
    ("not_base64", r"run 3: the answer's audio_base64 is not base64"),
    ("fail", r"run 3: HTTP 502: synthesis failed: CUDA error: an illegal memory access was encountered"),
])
def test_an_answer_without_the_audio_it_claims_is_a_failed_run(rig, mode, reason):
    rig.backend.modes = [None, None, None, mode]          # the warm-up, runs 1 and 2, then run 3
    out = rig.run('text = "一二三四五六七八九十"')         # 10 characters: 0.2 s, 4800 samples
    assert out.status == "failed"
    assert re.search(r" over 4 runs; FAILED: 1 of 5 runs failed \(" + reason + r"\)$", out.detail), out.detail
    assert len(out.result["failed_runs"]) == 1 and len(out.result["per_run"]) == 4


def test_a_failed_warm_up_ends_the_run(rig):
    rig.backend.modes = ["fail"]
    out = rig.run()
    assert (out.status, out.detail) == ("failed", "the warm-up request failed: HTTP 502: synthesis failed: "
                                                  "CUDA error: an illegal memory access was encountered")
    assert len(rig.posts()) == 1          # the runs were never sent at a broken backend


def test_a_request_past_request_timeout_is_a_failed_run(rig):
    audio = round(SAMPLE_RATE * 0.02 * 24) / SAMPLE_RATE
    rig.backend.rtfs = [0.2, 0.2, 1.6 / audio]            # run 2 takes 1.6 s
    out = rig.run('request_timeout = "1s"')
    assert out.status == "failed"
    assert "FAILED: 1 of 5 runs failed (run 2: no answer within 1 s)" in out.detail, out.detail
    assert len(out.result["per_run"]) == 4


# --- refusals: nothing is sent --------------------------------------------------------------

def test_a_backend_that_is_down_is_skipped_with_no_request_sent(rig):
    rig.backend.stop_http()
    out = rig.run()
    assert (out.status, out.detail) == ("skipped", f"the backend at {rig.url} is down: Connection refused")
    assert rig.backend.requests == []


def test_too_little_free_memory_on_a_jetson_is_skipped_with_no_request_sent(rig):
    rig.available_kb = 3_000_000           # MemAvailable: the Jetson's GPU shares the RAM
    rig.write_proc()
    out = rig.run()
    assert (out.status, out.detail) == ("skipped", "only 3.1 GB of GPU memory free (MemAvailable (the Jetson GPU "
                                                   "shares the RAM)); 5.0 GB needed")
    assert [(r.method, r.path) for r in rig.backend.requests] == [("GET", "/api/health")]
    assert rig.run("min_gpu_free = 3000000000").status == "ok"


@pytest.fixture
def plain(tmp_path):
    """A PC with no GPU the collectors see: free memory comes from the service's torch."""
    r = Rig(tmp_path, board=PLAIN)
    service = StandinPython(tmp_path / "service-env")
    r.python = str(service.python)
    yield r, service
    r.close()


def test_too_little_free_memory_by_the_services_torch_is_skipped_with_no_request_sent(plain):
    r, service = plain
    service.set(mem_free=3_200_000_000)
    out = r.run()
    assert (out.status, out.detail) == ("skipped", "only 3.2 GB of GPU memory free (torch.cuda.mem_get_info in the "
                                                   "service's interpreter); 5.0 GB needed")
    assert r.posts() == []
    service.set(mem_free=40_000_000_000)
    assert r.run().status == "ok"


def test_no_gpu_at_all_is_skipped(plain):
    r, service = plain
    service.set(cuda_available=False)
    out = r.run()
    assert out.status == "skipped"
    assert out.detail.startswith("no GPU found (") and out.detail.endswith("; the service's torch sees no CUDA device")
    assert r.posts() == []


# --- the quiet spell ---------------------------------------------------------------------------

def test_a_scheduled_run_waits_for_a_quiet_spell(rig):
    said = []
    rig.store                                     # made first: its schema takes a moment
    now = time.time()
    rig.synthesis_record(now - 2.5, source="chat")          # a viewer's request a moment ago...
    rig.synthesis_record(now - 0.5)                          # ...and one just now
    out = rig.run('quiet = "2s"\nquiet_window = "10s"', by="schedule", progress=said.append)
    assert out.status == "ok", out.detail
    # nothing was sent until two whole seconds had passed without a synthesis
    assert min(r.at for r in rig.backend.requests) >= now - 0.5 + 2
    assert said[0].startswith("waiting for a quiet spell of 2s (last synthesis ")


def test_the_benchmarks_own_records_are_no_reason_to_wait(rig):
    rig.synthesis_record(time.time(), source="benchmark")    # the last run's, told apart by the log ingestion
    said = []
    out = rig.run('quiet = "1h"\nquiet_window = "1s"', by="schedule", progress=said.append)
    assert out.status == "ok", out.detail
    assert not [line for line in said if "quiet spell" in line]


def test_a_scheduled_run_with_no_quiet_spell_is_skipped(rig):
    from ishowd.timefmt import local_time
    last = time.time()
    rig.synthesis_record(last - 5)
    rig.synthesis_record(last)
    started = time.monotonic()
    out = rig.run('quiet = "1m"\nquiet_window = "1s"', by="schedule")
    assert (out.status, out.detail) == ("skipped", f"no quiet spell of 1m within 1s (last synthesis "
                                                   f"{local_time(last)})")
    assert 1.0 <= time.monotonic() - started < 3
    assert rig.backend.requests == []


def test_the_wait_leaves_the_requests_their_time_within_the_runs_timeout(rig):
    rig.synthesis_record(time.time())
    started = time.monotonic()
    out = rig.run('quiet = "1h"\nquiet_window = "1h"\ntimeout = "4s"\nrequest_timeout = "1s"\nwarmup = 0\nruns = 2',
                  by="schedule")
    assert out.status == "skipped"
    assert re.fullmatch(r"no quiet spell of 1h within 1s \(last synthesis .*\): that is all \[jobs\.benchmark\] "
                        r"timeout leaves after \(warmup \+ runs\) x request_timeout", out.detail), out.detail
    assert time.monotonic() - started < 3


def test_an_operators_run_does_not_wait(rig):
    rig.synthesis_record(time.time())
    started = time.monotonic()
    out = rig.run('quiet = "1h"\nquiet_window = "1h"', by="operator")
    assert out.status == "ok" and time.monotonic() - started < 10


def test_stopping_ends_the_wait_at_once(rig):
    rig.synthesis_record(time.time())
    cancel = Cancel()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        rig.run('quiet = "1h"\nquiet_window = "1h"', by="schedule", cancel=cancel)
    assert time.monotonic() - started < 2           # not the next look, POLL seconds on
    assert rig.backend.requests == []


# --- the metric, and the job as operators see it ----------------------------------------------

def _benchmark_samples(runner, now: float) -> dict:
    return {s.labels["stat"]: s.value for s in runner.samples(now) if s.metric.name == "benchmark_rtf"}


def test_the_latest_figures_are_reported_and_survive_a_restart(rig):
    from ishowd.jobs.runner import JobRunner, set_up
    from ishowd.store.writer import Store
    config = rig.config()
    store = Store(rig.db)
    try:
        runner = JobRunner(config, store, *set_up(config))
        assert _benchmark_samples(runner, time.time()) == {}           # no run yet: absent, not zero
        ran = runner.run("benchmark")
        assert ran.status == "ok", ran.detail
        expected = {k: ran.result["rtf"][k] for k in ("mean", "median", "p95", "best", "worst", "std", "cv")}
        assert _benchmark_samples(runner, time.time()) == expected
        rig.backend.stop_http()
        assert runner.run("benchmark").status == "skipped"             # no figures: the last ones stand
        assert _benchmark_samples(runner, time.time() + 61) == expected
        restarted = JobRunner(config, store, *set_up(config))           # its last run is the skipped one
        assert restarted.last["benchmark"].status == "skipped"
        assert _benchmark_samples(restarted, time.time()) == expected
    finally:
        store.close()


def test_jobs_run_benchmark_through_the_daemon(rig):
    config_path = rig.tmp / "ishowd.toml"
    config_path.write_text(rig.toml())
    daemon = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(config_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for((rig.tmp / "ishowd.sock").exists, what="the control socket")
        proc = run(entry_point("ishowctl"), "--config", str(config_path), "jobs", "run", "benchmark", "--json")
        assert proc.returncode == 0, proc.stderr
        record = json.loads(proc.stdout)
        assert set(record) == {"job", "started", "finished", "status", "detail", "result"}
        assert (record["job"], record["status"]) == ("benchmark", "ok")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", record["started"])
        result = record["result"]
        assert (result["runs"], result["warmup"]) == (5, 1)
        assert {"mean", "median", "p95", "best", "std"} <= set(result["rtf"])
        assert "run 5 of 5" in proc.stderr and "running it in this process" not in proc.stderr

        def reported():
            status = json.loads(run(entry_point("ishowctl"), "--config", str(config_path), "status", "--json").stdout)
            stats = {m["labels"]["stat"]: m["value"] for m in status["metrics"] if m["name"] == "benchmark_rtf"}
            return stats if len(stats) == 7 else None
        got = wait_for(reported, what="benchmark_rtf in ishowctl status")
        # status prints a ratio to what an RTF resolves (ishowd.units.DECIMALS)
        assert got == pytest.approx({k: result["rtf"][k] for k in got}, rel=0, abs=0.5e-4 + 1e-12)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "job benchmark: ok in " in err


# --- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   ", "一" * 121, "第一行\n第二行", "tab\there"])
def test_a_text_the_log_would_not_keep_whole_is_refused_at_load(text):
    with pytest.raises(ConfigError, match=r"\[jobs\.benchmark\] text: expected one line of text of 1 to 120 "):
        catalog.loads_config(f"[jobs.benchmark]\ntext = {json.dumps(text, ensure_ascii=False)}\n", "t.toml")
    catalog.loads_config(f'[jobs.benchmark]\ntext = "{"一" * 120}"\n', "t.toml")
