"""ishowctl by the conventions of the tools people already use: one set of output options on every
command that prints data, values as programs read them, errors that say what is wrong, status's
exit code and ages, the RTF list's page."""
from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import time
from datetime import datetime

import click
import pytest

from ishowd.catalog import metric as get
from ishowd.metrics import Sample
from ishowd.store.writer import Store

from conftest import entry_point, run, write_config

HOUR = 3600
DATA_COMMANDS = [("status",), ("history",), ("rtf", "list"), ("rtf", "weekly"), ("alerts",), ("jobs", "list"),
                 ("jobs", "history"), ("backups", "list"), ("audit",)]


def ctl(cfg, *args, env=None):
    return run(entry_point("ishowctl"), "--config", str(cfg), *args, env=env)


@pytest.fixture
def store(tmp_path):
    """A config and a store with three hours of readings up to now, one a minute."""
    cfg = write_config(tmp_path)
    now = int(time.time())
    start = now - now % HOUR - 3 * HOUR
    s = Store(tmp_path / "ishowd.db")
    mem, disk, temp = get("memory_used_bytes"), get("disk_free_bytes"), get("temperature_celsius")
    t = start
    while t <= now:
        s.write(t, [Sample(mem, float(1 << 30) + (t - start)), Sample(disk, 5e9, {"path": "/"}),
                    Sample(disk, 7e9, {"path": "/ssd"}),
                    # 0.1 + 0.2 and its like: a float mean that prints as 48.30000000000001
                    Sample(temp, 48.1 if (t // 60) % 2 else 48.5, {"zone": "cpu"})])
        s.maintain(t)
        t += 60
    s.close()
    return cfg, start, now


def _command(path: tuple[str, ...]) -> click.Command:
    from ishowd.cli import cli
    ctx = click.Context(cli)
    cmd = cli
    for name in path:
        cmd = cmd.get_command(ctx, name)
    return cmd


@pytest.mark.parametrize("path", DATA_COMMANDS, ids=" ".join)
def test_every_data_command_takes_json_csv_and_no_headers(path):
    opts = {o for p in _command(path).params for o in getattr(p, "opts", ())}
    assert {"--json", "--csv", "--no-headers"} <= opts, path


def test_config_is_taken_after_the_subcommand_too(store, tmp_path):
    cfg, _, _ = store
    proc = run(entry_point("ishowctl"), "status", "--config", str(cfg), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["daemon"]["store"] == str(tmp_path / "ishowd.db")
    proc = run(entry_point("ishowctl"), "rtf", "list", "--config", str(cfg), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == [], proc.stderr
    # after the subcommand wins over before it, as the last of a repeated option does
    (tmp_path / "elsewhere").mkdir()
    other = write_config(tmp_path / "elsewhere")   # a store that does not exist
    proc = run(entry_point("ishowctl"), "--config", str(other), "history", "memory_used_bytes", "--config", str(cfg),
               "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout), proc.stderr


def test_no_headers_drops_the_header_of_tables_and_csv(store):
    cfg, _, _ = store
    table = ctl(cfg, "history", "memory_used_bytes", "--since", "2h").stdout.splitlines()
    bare = ctl(cfg, "history", "memory_used_bytes", "--since", "2h", "--no-headers").stdout.splitlines()
    assert table[0].split()[:2] == ["time", "labels"] and set(table[1]) <= {"-", " "}
    assert len(bare) == len(table) - 2 and bare[0].split()[2:4] == table[2].split()[2:4]
    rows = ctl(cfg, "history", "memory_used_bytes", "--since", "2h", "--csv").stdout.splitlines()
    assert ctl(cfg, "history", "memory_used_bytes", "--since", "2h", "--csv", "--no-headers").stdout.splitlines() \
        == rows[1:]
    proc = ctl(cfg, "history", "memory_used_bytes", "--json", "--no-headers")
    assert proc.returncode == 2 and "--no-headers" in proc.stderr


def test_json_and_csv_values_are_rounded_to_what_the_sensor_resolves(store):
    cfg, _, _ = store
    out = ctl(cfg, "history", "temperature_celsius", "--since", "3h", "--step", "1h", "--json").stdout
    rows = json.loads(out)
    whole = [r for r in rows if r["count"] == 60]   # the hour in progress holds an odd count
    assert whole and all(r["mean"] == 48.3 for r in whole)
    # printed as a person would write them: no binary-float tail
    assert not re.search(r"\d\.\d{7,}", out), out
    assert not re.search(r"\d\.\d{7,}", ctl(cfg, "history", "temperature_celsius", "--since", "3h", "--csv").stdout)
    assert all(type(r["count"]) is int for r in rows)


def test_csv_labels_are_a_column_per_key_and_survive_commas_and_equals(tmp_path):
    cfg = write_config(tmp_path)
    now = int(time.time())
    s = Store(tmp_path / "ishowd.db")
    voice = 'walter,source=chat "2"'   # a voice id from the untrusted log
    s.write(now - 30, [Sample(get("tts_rtf_last"), 0.25, {"engine": "f5", "voice": voice, "source": "api"})])
    s.close()
    proc = ctl(cfg, "history", "tts_rtf_last", "--since", "1h", "--csv")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert list(rows[0]) == ["ts", "labels.engine", "labels.source", "labels.voice", "mean", "min", "max", "count"]
    assert (rows[0]["labels.voice"], rows[0]["labels.source"], rows[0]["count"]) == (voice, "api", "1")


def test_csv_booleans_are_true_and_false(tmp_path):
    cfg = write_config(tmp_path, "[jobs.backup]\nenabled = false\n")
    rows = list(csv.DictReader(io.StringIO(ctl(cfg, "jobs", "list", "--csv").stdout)))
    enabled = {r["job"]: r["enabled"] for r in rows}
    assert enabled["backup"] == "false" and set(enabled.values()) == {"true", "false"}


def test_a_table_column_has_one_scale_and_one_precision(tmp_path):
    cfg = write_config(tmp_path)
    now = int(time.time())
    start = now - now % HOUR - 2 * HOUR
    s = Store(tmp_path / "ishowd.db")
    s.write(start, [Sample(get("memory_used_bytes"), float(512 << 20))])
    s.write(start + HOUR, [Sample(get("memory_used_bytes"), float(3 << 30))])
    s.close()
    lines = ctl(cfg, "history", "memory_used_bytes", "--since", "3h", "--no-headers").stdout.splitlines()
    means = [line.split()[3:5] for line in lines]   # date, time, labels, then the mean
    assert means == [["0.5", "GiB"], ["3.0", "GiB"]], lines


def test_history_of_a_counter_is_its_increase_per_step(tmp_path):
    cfg = write_config(tmp_path)
    now = int(time.time())
    h0 = now - now % HOUR - 3 * HOUR
    starts = get("backend_starts_total")
    s = Store(tmp_path / "ishowd.db")
    # 0..5 in the hour before the range, 5..12 in the first hour of it, then a reset: 0..3
    for base, values in ((h0, range(0, 6)), (h0 + HOUR, range(5, 13)), (h0 + 2 * HOUR, range(0, 4))):
        for i, v in enumerate(values):
            s.write(base + 60 * i, [Sample(starts, float(v))])
    s.close()
    since = datetime.fromtimestamp(h0 + HOUR).astimezone().isoformat()
    rows = json.loads(ctl(cfg, "history", "backend_starts_total", "--since", since, "--json").stdout)
    assert [(r["increase"], r["count"]) for r in rows] == [(7.0, 8), (3.0, 4)]
    assert {"ts", "labels", "mean", "min", "max", "count"} <= set(rows[0])
    header = ctl(cfg, "history", "backend_starts_total", "--since", since).stdout.splitlines()[0].split()
    assert "increase" in header and "mean" not in header


@pytest.mark.parametrize("args,needles", [
    (["history", "disk_free_bytes", "--label", "pth=/"], ["--label", "no label 'pth'", "path"]),
    (["history", "disk_free_bytes", "--label", "path=/nope"], ["--label", "path=/nope", "/, /ssd"]),
    (["history", "memory_used_bytes", "--since", "ten"], ["--since", "'ten'"]),
    (["rtf", "list", "--until", "ten"], ["--until"]),
    (["jobs", "history", "--since", "ten"], ["--since"]),
    (["alerts", "--all", "--limit", "-1"], ["--limit", "-1"]),
    (["rtf", "list", "--limit", "-1"], ["--limit", "-1"]),
    (["rtf", "plot", "-o", "/no/such/dir/x.png"], ["--output", "/no/such/dir"]),
])
def test_what_is_wrong_is_said_in_one_line(store, args, needles):
    cfg, _, _ = store
    proc = ctl(cfg, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_since_before_the_first_sample_says_so_and_draws_no_1970_bucket(store):
    cfg, start, _ = store
    proc = ctl(cfg, "history", "memory_used_bytes", "--since", "1970-01-02T00:00:00Z", "--step", "30d", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "before the store's first sample" in proc.stderr
    stamps = [datetime.fromisoformat(r["ts"]).timestamp() for r in json.loads(proc.stdout)]
    assert stamps and min(stamps) > start - 30 * 86400
    # the default window of a young store reaches back before it too: nothing to say then
    proc = ctl(cfg, "history", "memory_used_bytes")
    assert proc.returncode == 0 and proc.stderr == "" and json.loads(ctl(cfg, "history", "memory_used_bytes",
                                                                          "--json").stdout)


def test_status_exits_3_when_the_daemon_is_not_writing_and_humanises_the_age(tmp_path):
    cfg = write_config(tmp_path)
    s = Store(tmp_path / "ishowd.db")
    s.write(time.time(), [Sample(get("memory_used_bytes"), 1e9)])
    s.close()
    with sqlite3.connect(tmp_path / "ishowd.db") as conn:   # written 7 minutes ago, wall and monotonic stamps
        conn.execute("UPDATE head SET ts = ts - 425, mono = mono - 425000")
    proc = ctl(cfg, "status")
    assert proc.returncode == 3, proc.stderr
    assert re.search(r"last sample 7m ago, every \S+: NOT WRITING", proc.stdout), proc.stdout
    proc = ctl(cfg, "status", "--json")
    assert proc.returncode == 3 and json.loads(proc.stdout)["daemon"]["writing"] is False


def test_status_is_0_while_the_daemon_writes(store):
    cfg, _, _ = store
    proc = ctl(cfg, "status")
    assert proc.returncode == 0 and re.search(r"last sample \d+s ago", proc.stdout), proc.stdout


def test_status_json_lists_pending_alerts_with_their_state(tmp_path):
    from alerts_helpers import make_config, open_store, sample
    from ishowd.alerts.evaluator import Evaluator
    cfg = make_config(tmp_path, """
[[alerts.rules]]
name = "mem-high"
metric = "memory_used_bytes"
op = ">"
threshold = 1e9
for = "10m"
""")
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    now = time.time()
    store.write(now - 1, [sample("memory_used_bytes", 2e9)])
    ev.run(now - 1)
    ev.close()
    store.close()
    data = json.loads(run(entry_point("ishowctl"), "--config", str(tmp_path / "ishowd.toml"), "status",
                          "--json").stdout)
    assert data["alerts"] == []   # what is firing, as before
    assert [(a["rule"], a["state"]) for a in data["pending"]] == [("mem-high", "pending")]
    assert {"rule", "severity", "since", "value", "labels"} <= set(data["pending"][0])


def test_status_shows_one_rtf_section(tmp_path):
    cfg = write_config(tmp_path)
    s = Store(tmp_path / "ishowd.db")
    s.write(time.time() - 1, [Sample(get("tts_rtf_last"), 0.27, {"engine": "f5", "voice": "w", "source": "api"})])
    s.close()
    out = ctl(cfg, "status").stdout
    headings = [line for line in out.splitlines() if line.startswith("RTF")]
    assert headings == ["RTF"], out
    after = out.split("\nRTF\n", 1)[1]
    assert "tts_rtf_last{" in after and "last hour:" in after


def _rtf_store(tmp_path, n: int):
    cfg = write_config(tmp_path)
    s = Store(tmp_path / "ishowd.db")
    now = time.time()
    rows = [(int((now - 3600 + i) * 1e6), "api", "walter", 2331 + i, 8.4, (2331 + i) / 8400, "f5", 0, "backend.log")
            for i in range(n)]
    with s.transaction() as conn:
        conn.executemany("INSERT INTO rtf_records (ts, source, voice, elapsed_ms, audio_seconds, rtf, engine, "
                         "first_after_start, log) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    s.close()
    return cfg


def test_rtf_list_table_is_a_page_newest_last_and_says_what_it_left_out(tmp_path):
    cfg = _rtf_store(tmp_path, 40)
    proc = ctl(cfg, "rtf", "list", "--no-headers", env={"LINES": "24"})
    lines = proc.stdout.splitlines()
    assert len(lines) == 20 and lines[-1].split()[3] == str(2331 + 39), proc.stdout
    assert "20 older records in the range left out" in proc.stderr
    assert len(ctl(cfg, "rtf", "list", "--no-headers", "--limit", "5").stdout.splitlines()) == 5
    assert len(ctl(cfg, "rtf", "list", "--no-headers", "--limit", "0").stdout.splitlines()) == 40
    # scripts get every record in the range, unless they ask for fewer
    assert len(json.loads(ctl(cfg, "rtf", "list", "--json", env={"LINES": "24"}).stdout)) == 40
    assert len(ctl(cfg, "rtf", "list", "--csv", "--no-headers").stdout.splitlines()) == 40
    assert [r["elapsed_ms"] for r in json.loads(ctl(cfg, "rtf", "list", "--json", "--limit", "2").stdout)] \
        == [2331 + 38, 2331 + 39]


def test_rtf_weekly_and_alerts_print_csv(tmp_path):
    cfg = _rtf_store(tmp_path, 3)
    rows = list(csv.DictReader(io.StringIO(ctl(cfg, "rtf", "weekly", "--weeks", "2", "--csv").stdout)))
    assert len(rows) == 2 and {"week", "count", "mean", "p95", "chat.count", "benchmark.runs"} <= set(rows[0])
    assert rows[-1]["count"] == "3" and rows[-1]["complete"] == "false"
    proc = ctl(cfg, "alerts", "--csv")
    assert proc.returncode == 0 and proc.stdout.splitlines()[0].startswith("rule,severity,state,since"), proc.stdout


def test_config_check_validates_without_starting_anything(tmp_path):
    good = write_config(tmp_path, '[sampling]\ninterval = "15s"\n')
    proc = run(entry_point("ishowctl"), "config", "check", str(good))
    assert (proc.returncode, proc.stdout) == (0, f"{good}: ok\n"), proc.stderr
    assert not (tmp_path / "ishowd.db").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text('[sampling]\ninterval = "10x"\n')
    proc = run(entry_point("ishowctl"), "config", "check", str(bad))
    assert proc.returncode == 78 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "bad.toml: [sampling] interval" in proc.stderr, proc.stderr
    # with no PATH, the config ishowctl reads, named before or after the subcommand
    assert run(entry_point("ishowctl"), "config", "check", "--config", str(bad)).returncode == 78


def test_config_check_show_prints_the_effective_config_which_loads_again(tmp_path):
    cfg = write_config(tmp_path, '[sampling]\ninterval = "15s"\n')
    shown = run(entry_point("ishowctl"), "config", "check", "--show", str(cfg))
    assert shown.returncode == 0 and '[sampling]\ninterval = "15s"\n' in shown.stdout, shown.stdout
    assert "[[alerts.rules]]" in shown.stdout   # the built-in rules, filled in
    again = tmp_path / "effective.toml"
    again.write_text(shown.stdout)
    proc = run(entry_point("ishowctl"), "config", "check", "--show", str(again))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == shown.stdout.splitlines()[1:]   # all but the line naming the file


def test_status_folds_the_series_of_one_metric_that_read_the_same():
    """Twelve cores at one clock are one line; a core that differs keeps its own."""
    from ishowd.cli.status import _folded
    rows = [("cpu_frequency_hz", {"cpu": str(i)}, "2.20 GHz") for i in range(11)]
    rows.append(("cpu_frequency_hz", {"cpu": "11"}, "1.73 GHz"))
    rows += [("network_receive_errors_total", {"interface": n}, "0") for n in ("eth0", "wlan0")]
    assert _folded(rows) == [["cpu_frequency_hz{cpu=×11}", "2.20 GHz"], ["cpu_frequency_hz{cpu=11}", "1.73 GHz"],
                             ["network_receive_errors_total{interface=eth0}", "0"],
                             ["network_receive_errors_total{interface=wlan0}", "0"]]


def test_an_uptime_reads_in_hours_and_days():
    from ishowd.units import humanize
    assert humanize(23267.44, "seconds") == "6h 27m"
    assert humanize(3 * 86400 + 7200, "seconds") == "3d 2h"
    assert humanize(404.57, "seconds") == "404.57 s"
