"""The leak-check job on series planted in a real store: a day of per-minute samples each."""
from __future__ import annotations

import math
import random

import pytest

from ishowd import catalog
from ishowd.jobs import JobContext
from ishowd.jobs.leak_check import LeakCheck
from ishowd.metrics import Sample
from ishowd.process import Cancel
from ishowd.store.writer import Store

T0 = 1_767_225_600          # 2026-01-01T00:00:00Z: the day planted
END = T0 + 86400            # the run's now
MB = 1_000_000
RSS = catalog.metric("backend_rss_bytes")
GPU = catalog.metric("gpu_memory_used_bytes")
STARTS = catalog.metric("backend_starts_total")


def plant(tmp_path, ticks, *, seal=False):
    """``ticks``: {ts: [Sample, ...]}, written as the daemon writes ticks (``seal``: then sealed as
    ``maintain`` does, all but the last hour or two)."""
    store = Store(tmp_path / "ishowd.db")
    with store.transaction() as conn:
        for ts in sorted(ticks):
            store.write_in(conn, ts, ticks[ts])
    if seal:
        store.maintain(END)
    store.close()


def run_job(tmp_path, extra=""):
    config = catalog.loads_config(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[jobs]\ntimezone = "UTC"\n'
                                  + extra, "test.toml")
    return LeakCheck(config).run(JobContext(config, timeout=60, cancel=Cancel(), now=END))


def minutes(start=T0, end=END):
    return range(start, end, 60)


def rss_day(level, seed=1, noise=2 * MB):
    """{ts: [rss sample]} for every minute of the day, ``level(ts)`` plus normal noise."""
    rnd = random.Random(seed)
    return {t: [Sample(RSS, level(t) + rnd.gauss(0, noise))] for t in minutes()}


def series_result(outcome, metric="backend_rss_bytes", **labels):
    return next(s for s in outcome.result["series"] if s["metric"] == metric and s["labels"] == labels)


def test_a_steady_leak_fails_with_its_rate(tmp_path):
    plant(tmp_path, rss_day(lambda t: 1500 * MB + 60 * MB * (t - T0) / 86400), seal=True)
    out = run_job(tmp_path)
    assert out.status == "failed", out.detail
    rss = series_result(out)
    assert 57 * MB < rss["slope_bytes_per_day"] < 63 * MB
    assert rss["points"] >= 1400 and rss["span_s"] > 23 * 3600
    assert out.detail.startswith("leak: backend_rss_bytes grows +6")
    assert "MB/day over 23 h 59 min (1440 points, noise ±2." in out.detail
    assert out.detail.endswith("0 restarts")


def test_noise_alone_is_no_leak(tmp_path):
    rnd = random.Random(7)
    ticks = rss_day(lambda t: 1500 * MB, noise=8 * MB)
    for t in rnd.sample(sorted(ticks), 30):            # spikes: a large request's transient buffers
        ticks[t] = [Sample(RSS, 1500 * MB + rnd.uniform(100, 400) * MB)]
    plant(tmp_path, ticks)
    out = run_job(tmp_path)
    assert out.status == "ok", out.detail
    assert abs(series_result(out)["slope_bytes_per_day"]) < 10 * MB
    assert series_result(out)["step"] is None
    assert out.detail.startswith("no leak: backend_rss_bytes ")


def test_growth_the_noise_could_make_is_no_leak(tmp_path):
    """80 MB/day for 8 h is 27 MB: under a 15 MB noise that is no trend explaining anything."""
    rnd = random.Random(11)
    plant(tmp_path, {t: [Sample(RSS, 1500 * MB + 80 * MB * (t - T0) / 86400 + rnd.gauss(0, 15 * MB))]
                     for t in minutes(END - 8 * 3600)})
    out = run_job(tmp_path)
    assert out.status == "ok", out.detail
    assert series_result(out)["slope_bytes_per_day"] > 50 * MB
    assert out.detail.endswith(": within its noise; 0 restarts")


def restarting_day(segment_level, *, counter=True, gone=1, cold_start=True, loading=5, seed=3):
    """Restarts at 06:00, 12:00 and 18:00: the backend is gone for ``gone`` minutes, comes back
    small and loads its models over ``loading`` minutes (``cold_start``), and the log counts each
    start (``counter``). ``segment_level(k, seconds_since_start)`` is the k-th run's memory."""
    rnd = random.Random(seed)
    ticks, starts = {}, 0
    for t in minutes():
        k, into = divmod(t - T0, 6 * 3600)
        samples = []
        if counter:
            if k and into == 0:
                starts += 1
            samples.append(Sample(STARTS, starts))
        up = into - 60 * gone
        if k and up < 0:
            pass                                       # no process: no rss sample
        elif k and up < 60 * loading and cold_start:
            full = segment_level(k, 60 * loading)
            samples.append(Sample(RSS, 300 * MB + up / (60 * loading) * (full - 300 * MB)))
        else:
            samples.append(Sample(RSS, segment_level(k, into) + rnd.gauss(0, 2 * MB)))
        ticks[t] = samples
    return ticks


HIGHER_AFTER_EACH_RESTART = (1500, 1580, 1650, 1720)


@pytest.mark.parametrize("signs", [dict(counter=True, gone=1, cold_start=True),
                                   dict(counter=True, gone=0, cold_start=False),
                                   dict(counter=False, gone=0, cold_start=True),
                                   dict(counter=False, gone=10, cold_start=False)],
                         ids=["every-sign", "counter-only", "cold-start-only", "absent-only"])
def test_restarts_at_higher_levels_are_no_leak(tmp_path, signs):
    """Each run is flat (3 MB in 6 h: 12 MB/day); each restart comes back 70-80 MB higher. A line
    through the day would call that 220 MB/day; the pieces between restarts say flat."""
    plant(tmp_path, restarting_day(lambda k, into: HIGHER_AFTER_EACH_RESTART[k] * MB + 3 * MB * into / 21600,
                                   **signs))
    out = run_job(tmp_path)
    assert out.status == "ok", out.detail
    rss = series_result(out)
    assert abs(rss["slope_bytes_per_day"]) < 20 * MB, out.detail
    assert rss["pieces"] == 4
    # where the log does not tell, the restart is where the backend came back
    from datetime import datetime
    seen = [datetime.fromisoformat(r["at"]).timestamp() for r in out.result["restarts"]]
    assert [round((at - T0) / 3600) for at in seen] == [6, 12, 18]
    assert all(0 <= (at - T0) % 21600 <= 600 for at in seen)
    assert out.detail.endswith("; 3 restarts")


def test_the_models_loading_after_each_restart_are_left_out(tmp_path):
    """A restart every 2 h; each run starts 200 MB short of its level and closes in over minutes
    (time constant 5 min) as the models load: taken in, those climbs alone read as 57 MB/day."""
    rnd = random.Random(3)
    ticks, starts = {}, 0
    for t in minutes():
        k, into = divmod(t - T0, 7200)
        if k and into == 0:
            starts += 1
        level = 1500 * MB - (200 * MB * math.exp(-into / 300) if k else 0)
        rss = (300 * MB if k and into == 0 else level) + rnd.gauss(0, 2 * MB)
        ticks[t] = [Sample(STARTS, starts), Sample(RSS, rss)]
    plant(tmp_path, ticks)
    out = run_job(tmp_path)
    assert out.status == "ok", out.detail
    assert series_result(out)["slope_bytes_per_day"] < 35 * MB
    assert out.detail.endswith("; 11 restarts")


def test_a_leak_that_restarts_reset_still_fails(tmp_path):
    """80 MB/day within each run, reset by a restart every 6 h: never more than 20 MB above where it
    started, and a line through the day sees next to no growth."""
    plant(tmp_path, restarting_day(lambda k, into: 1500 * MB + 80 * MB * into / 86400))
    out = run_job(tmp_path)
    assert out.status == "failed", out.detail
    assert 75 * MB < series_result(out)["slope_bytes_per_day"] < 85 * MB
    assert series_result(out)["pieces"] == 4


def test_one_step_is_reported_as_a_step_not_a_leak(tmp_path):
    step_at = T0 + 14 * 3600 + 2 * 60
    plant(tmp_path, rss_day(lambda t: 1500 * MB + (120 * MB if t >= step_at else 0)))
    out = run_job(tmp_path)
    assert out.status == "ok", out.detail
    rss = series_result(out)
    assert rss["step"]["at"] == "2026-01-01T14:02:00+00:00"
    assert 119 * MB < rss["step"]["bytes"] < 121 * MB
    assert abs(rss["slope_bytes_per_day"]) < 5 * MB
    assert "backend_rss_bytes: one step of +120 MB at 14:02, flat before and after: +" in out.detail


def test_a_leak_besides_a_step_still_fails(tmp_path):
    step_at = T0 + 9 * 3600
    plant(tmp_path, rss_day(lambda t: 1500 * MB + 70 * MB * (t - T0) / 86400 + (200 * MB if t >= step_at else 0)))
    out = run_job(tmp_path)
    assert out.status == "failed", out.detail
    rss = series_result(out)
    assert rss["step"]["at"] == "2026-01-01T09:00:00+00:00"
    assert 65 * MB < rss["slope_bytes_per_day"] < 75 * MB
    assert "besides one step of +200 MB at 09:00" in out.detail


def test_too_little_data_is_skipped_with_how_much_there_was(tmp_path):
    plant(tmp_path, {t: [Sample(RSS, 1500 * MB + 200 * MB * (t - T0) / 86400)] for t in minutes(END - 4 * 3600)})
    out = run_job(tmp_path)
    assert out.status == "skipped"
    assert out.detail == ("too little data in the last 24 h: backend_rss_bytes: 3 h 59 min (240 points) "
                          "(needs 6 h)")


def test_min_span_is_a_key(tmp_path):
    plant(tmp_path, {t: [Sample(RSS, 1500 * MB + 200 * MB * (t - T0) / 86400)] for t in minutes(END - 4 * 3600)})
    out = run_job(tmp_path, '[jobs.leak-check]\nmin_span = "3h"\n')
    assert out.status == "failed", out.detail


def test_a_gpu_memory_leak_on_one_of_two_gpus_names_it(tmp_path):
    rnd = random.Random(5)
    ticks = {}
    for t in minutes():
        grown = 70 * MB * (t - T0) / 86400
        ticks[t] = [Sample(RSS, 1500 * MB + rnd.gauss(0, 2 * MB)),
                    Sample(GPU, 4000 * MB + rnd.gauss(0, 4 * MB), {"gpu": "0"}),
                    Sample(GPU, 2000 * MB + grown + rnd.gauss(0, 4 * MB), {"gpu": "1"})]
    plant(tmp_path, ticks, seal=True)
    out = run_job(tmp_path)
    assert out.status == "failed", out.detail
    assert out.detail.startswith("leak: gpu_memory_used_bytes{gpu=1} grows +")
    assert "; gpu_memory_used_bytes{gpu=0} " in out.detail and "; backend_rss_bytes " in out.detail
    assert series_result(out, "gpu_memory_used_bytes", gpu="1")["verdict"] == "leak"
    assert series_result(out, "gpu_memory_used_bytes", gpu="0")["verdict"] == "ok"
    assert series_result(out)["verdict"] == "ok"


def test_a_gpu_holding_next_to_nothing_is_not_cut_at_each_halving(tmp_path):
    """An idle GPU going between 5 and 12 MB every 20 min halves 72 times a day: no process ended."""
    plant(tmp_path, {t: [Sample(GPU, (12 if (t - T0) // 1200 % 2 else 5) * MB, {"gpu": "1"})] for t in minutes()})
    out = run_job(tmp_path)
    assert out.status == "ok", out.detail
    gpu = series_result(out, "gpu_memory_used_bytes", gpu="1")
    assert (gpu["verdict"], gpu["pieces"]) == ("ok", 1)


def test_no_store_is_skipped(tmp_path):
    out = run_job(tmp_path)
    assert out.status == "skipped"
    assert "no store at" in out.detail


def test_the_best_step_is_the_one_a_brute_force_search_finds():
    """trend.best_step's closed form against trying every cut of every segment directly."""
    from ishowd.jobs import trend
    rnd = random.Random(2)
    for _ in range(20):
        segments = []
        for _ in range(rnd.randint(1, 3)):
            n = rnd.randint(2 * trend.MIN_SIDE, 80)
            jump = rnd.randint(0, n - 1)
            segments.append(trend.Segment(list(range(n)), [rnd.gauss(0, 1) + (rnd.uniform(-5, 5) if i >= jump else 0)
                                                            for i in range(n)]))

        def sse(values):
            mean = sum(values) / len(values)
            return sum((v - mean) ** 2 for v in values)

        flat = [sse(s.values) for s in segments]
        best = min((sum(flat) - flat[si] + sse(s.values[:k]) + sse(s.values[k:]), si, k,
                    sum(s.values[k:]) / (len(s.values) - k) - sum(s.values[:k]) / k)
                   for si, s in enumerate(segments)
                   for k in range(trend.MIN_SIDE, len(s.values) - trend.MIN_SIDE + 1))
        left, si, k, height = trend.best_step(segments)
        assert (si, k) == best[1:3]
        assert left == pytest.approx(best[0], rel=1e-9, abs=1e-9)
        assert height == pytest.approx(best[3], rel=1e-9)
