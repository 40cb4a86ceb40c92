"""Every declared key, fed out-of-range, wrong-type and absurd values: each loads (and then holds a
value the code can use) or is a ConfigError naming the file and the key, never another exception;
the daemon started on a sample of what loads exits 0 or 78, one line, no traceback.

The keys come from the catalog, so a key declared later is walked too. ``ISHOWD_BOUNDS_SAMPLE=all``
runs the daemon once per loading value (the torture variant; by default a spread of them).
"""
from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ishowd import catalog, config
from ishowd.config import ConfigError, Key

from conftest import entry_point, run
from test_daemon import ticks, wait_for

FILE = "/etc/ishowd/probe.toml"
NUMERIC = ("int", "float", "duration")


class Raw(str):
    """A TOML literal written as is (dates and times)."""


def toml(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)   # JSON's escapes are TOML's (no DEL below)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


LONGEST_NAME = ".".join(["h" * 63] * 3 + ["h" * 61])                       # 253: a host name's limit
LONGEST_PATH = ("/" + "p" * 255) * 15 + "/" + "p" * 254                 # 4095 bytes, parts of 255
assert len(LONGEST_PATH.encode()) == config.PATH_MAX_BYTES

# What each key is tried with, whatever its kind: the wrong types are the point.
ABSURD = [
    0, -1, 1, 3, -(2 ** 63), 2 ** 63 - 1, 10 ** 30,
    0.5, -0.0, 1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf,
    True, False,
    "", " ", "0s", "-5s", "1ms", "10s", "1h", "90d", "500000w", "9" * 400 + "s", "1e3s", "1h30m", "٣s",
    "nan", "inf", "forever", "10", "80",
    "127.0.0.1:9733", "127.0.0.1:99999", ":9733", "[::1]:0", "999.1.1.1:9733", "010.0.0.1:9733", "::1:9733",
    f"{LONGEST_NAME}:9733", f"{LONGEST_NAME}h:9733", "a..b:9733", "127.0.0.1:٩٧٣٣",
    "http://127.0.0.1:27121", "http://127.0.0.1:99999", "http://[::1]:1/x", "http://:80", "https://",
    "a" * 5000, "ü" * config.MAX_TEXT, "x\0y", "ü/∞/🙂", "line\nbreak", "tab\there", "\u2028",
    "(" * 600 + ")" * 600, ["(" * 900 + ")" * 900], "a{99999999999}", ["a{99999999999}"], "[",
    "info", "auto", "==", "mean", "critical", "backend_up",
    "/", "/" + "a" * 300, LONGEST_PATH, LONGEST_PATH + "p",
    [], [""], [" "], ["a" * 5000], ["x\0y"], [1], [[]], ["ok", 2], ["/bin/true"], ["warning"], ["probe"],
    ["*"], ["ü/∞/🙂"], [LONGEST_PATH], ["/tmp/a", "/tmp/a"], ["x"] * 300,
    {}, {"a": 1}, {"source": "api"}, {"x\0": "y"}, {"a": {"b": "c"}},
    Raw("1979-05-27T07:32:00Z"), Raw("1979-05-27"), Raw("07:32:00"),
]

# Items of each array of tables that load as they are; the walk swaps in one key at a time.
BASE_ITEMS = {
    "alerts.rules": {"name": "probe", "metric": "backend_up", "op": "==", "threshold": 0,
                     "window": "1h", "aggregate": "mean"},
    "alerts.hooks": {"name": "probe", "command": ["/bin/true"]},
}
# Keys a cross-key check orders (raw <= minute <= hour retention): tried together, one value.
TIED = {("storage", "raw_retention"), ("storage", "minute_retention"), ("storage", "hour_retention")}
# What a key's bounds need of other keys to be reached: a rule's window is judged from raw samples.
ROOM = {("alerts.rules", "window"): '[storage]\nraw_retention = "3650d"\nminute_retention = "3650d"\n'}


def declared():
    schema = catalog.schema()
    for section, keys in schema.sections.items():
        for name, key in keys.items():
            yield ("section", section), name, key
    for array, keys in schema.arrays.items():
        for name, key in keys.items():
            yield ("array", array), name, key


def key_id(where, name) -> str:
    return f"[{where[1]}] {name}" if where[0] == "section" else f"[[{where[1]}]] {name}"


def document(where, name, value, *, tied: bool = False) -> str:
    """A config file that gives ``value`` to the key (``tied``: and to the keys a cross check
    orders it with), with what it needs to load otherwise."""
    kind, place = where
    if kind == "section":
        if not (tied and (place, name) in TIED):
            return f"[{place}]\n{json.dumps(name)} = {toml(value)}\n"
        # the default rules' windows (up to a day) need raw samples that long: none here
        return (f"[{place}]\n" + "".join(f"{json.dumps(n)} = {toml(value)}\n" for s, n in sorted(TIED) if s == place)
                + "[alerts]\nrules = []\n")
    text = ROOM.get((place, name), "") if tied else ""
    text += "".join(f"[[{a}]]\n" + "".join(f"{json.dumps(k)} = {toml(v)}\n" for k, v in item.items())
                    for a, item in BASE_ITEMS.items() if a != place)
    item = dict(BASE_ITEMS[place], **{name: value})
    return text + f"[[{place}]]\n" + "".join(f"{json.dumps(k)} = {toml(v)}\n" for k, v in item.items())


def names_the_key(err: ConfigError, where, name, *, tied: bool = False) -> bool:
    kind, place = where
    if kind == "section":
        prefix = f"[{place}] "
        names = {n for s, n in TIED if s == place} if tied and (place, name) in TIED else {name}
        # or another key's check that says what this one limits ("longer than [storage] raw_retention")
        return (err.key.startswith(prefix) and bool(names & set(err.key[len(prefix):].split("/")))
                or any(f"{prefix}{n}" in str(err) for n in names))
    return err.key.startswith(f"[[{place}]] ") and err.key.endswith(f": {name}")


def loaded_value(cfg, where, name):
    kind, place = where
    return cfg.sections[place][name] if kind == "section" else cfg.array(place)[0][name]


def usable(key: Key, value) -> bool:
    """What the code may be handed: finite numbers within the declared bounds, strings the OS takes."""
    if value is None:
        return not key.required
    if key.kind in NUMERIC:
        return (not isinstance(value, bool) and math.isfinite(value)
                and (key.min is None or value >= key.min) and (key.max is None or value <= key.max))
    if isinstance(value, list):
        return all(usable(Key("path" if key.kind == "pathlist" else "str"), v) for v in value)
    if isinstance(value, str):
        raw = value.encode()
        return "\0" not in value and len(value) <= config.MAX_TEXT and (
            key.kind != "path" or (len(raw) <= config.PATH_MAX_BYTES
                                   and all(len(part) <= config.NAME_MAX_BYTES for part in raw.split(b"/"))))
    return True


@lru_cache(maxsize=None)
def walk() -> dict:
    """key id -> [(value, the Config or the ConfigError)], every declared key against ABSURD."""
    out = {}
    for where, name, key in declared():
        results = []
        for value in ABSURD + ([key.default] if key.default is not None else []):
            try:
                results.append((value, catalog.loads_config(document(where, name, value), FILE)))
            except ConfigError as err:
                results.append((value, err))
        out[key_id(where, name)] = (where, name, key, results)
    return out


KEY_IDS = [key_id(w, n) for w, n, _ in declared()]


@pytest.mark.parametrize("kid", KEY_IDS)
def test_every_value_loads_usable_or_is_a_config_error_naming_file_and_key(kid):
    where, name, key, results = walk()[kid]
    rejected = 0
    for value, outcome in results:
        if isinstance(outcome, ConfigError):
            rejected += 1
            msg = str(outcome)
            assert msg.startswith(FILE + ": ") and names_the_key(outcome, where, name), (value, msg)
            assert msg.isprintable(), (value, msg)
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str) and len(text) > config.SHOWN_CHARS:
                    assert text[:config.SHOWN_CHARS] not in msg, f"a long value echoed whole: {msg[:300]}"
        else:
            got = loaded_value(outcome, where, name)
            assert usable(key, got), (value, got)
    assert rejected, f"{kid}: nothing at all was refused"


def test_every_array_of_tables_has_a_base_item_for_the_walk():
    assert set(catalog.schema().arrays) == set(BASE_ITEMS)


BOUNDED = [(w, n, k) for w, n, k in declared() if k.kind in NUMERIC and (k.min is not None or k.max is not None)]


def test_every_integer_and_duration_is_bounded_within_what_its_users_take():
    """Durations end up in datetime arithmetic (the scheduler), threading waits and select();
    integers in SQLite and sizes: a bound past any of those is no bound."""
    now = datetime.now(timezone.utc)
    for where, name, key in declared():
        if key.kind not in ("int", "duration"):
            continue
        assert key.min is not None and key.max is not None, f"{key_id(where, name)} has no bounds"
        if key.kind == "duration":
            assert key.max <= threading.TIMEOUT_MAX
            now + timedelta(seconds=key.max)    # no OverflowError
        else:
            assert -(2 ** 63) <= key.min and key.max < 2 ** 63
    # a failed hook's retry waits hook_retry_delay doubled for each earlier retry
    schema = catalog.schema()
    longest_retry = schema.sections["alerts"]["hook_retry_delay"].max * 2 ** (
        schema.arrays["alerts.hooks"]["retries"].max - 1)
    assert longest_retry <= threading.TIMEOUT_MAX
    now + timedelta(seconds=longest_retry)


def _as_value(key: Key, number: float):
    if key.kind == "duration":
        text = repr(float(number))
        return None if "e" in text or number < 0 else text + "s"
    return int(number) if key.kind == "int" else float(number)


@pytest.mark.parametrize("where,name,key", BOUNDED, ids=[key_id(w, n) for w, n, _ in BOUNDED])
def test_the_bounds_are_inclusive_and_a_hair_past_them_is_refused(where, name, key):
    inside = [b for b in (key.min, key.max) if b is not None]
    for bound in inside:
        cfg = catalog.loads_config(document(where, name, _as_value(key, bound), tied=True), FILE)
        assert loaded_value(cfg, where, name) == bound
    step = 1 if key.kind == "int" else None
    outside = []
    if key.min is not None:
        outside.append(key.min - 1 if step else math.nextafter(key.min, -math.inf))
    if key.max is not None:
        outside.append(key.max + 1 if step else math.nextafter(key.max, math.inf))
    for number in outside:
        value = _as_value(key, number)
        if value is None:           # below a zero minimum: no duration is written that way
            continue
        with pytest.raises(ConfigError) as err:
            catalog.loads_config(document(where, name, value, tied=True), FILE)
        assert names_the_key(err.value, where, name, tied=True) and key.bounds() in str(err.value), str(err.value)


# --- whole files the TOML reader itself chokes on -------------------------------------------

@pytest.mark.parametrize("text,words", [
    ("[rtf]\nmin_requests = " + "9" * 5000 + "\n", "integer too long"),
    ("[rtf]\nlogs = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ('[alerts.rules]\nx = ' + "{a = " * 3000 + "1" + "}" * 3000 + "\n", "nested too deeply"),
])
def test_what_the_toml_reader_cannot_read_is_a_config_error(text, words):
    with pytest.raises(ConfigError) as err:
        catalog.loads_config(text, FILE)
    assert str(err.value).startswith(FILE + ": not valid TOML") and words in str(err.value)


# --- the real daemon on values that load ------------------------------------------------------

def _daemon_config(tmp: Path, picks: dict) -> Path:
    """A file with ``picks`` ({key id: value}) over a store in ``tmp`` and the base items."""
    sections: dict[str, dict] = {"storage": {"path": str(tmp / "ishowd.db")}, "exporter": {"listen": ""}}
    items = {a: dict(item) for a, item in BASE_ITEMS.items()}
    for kid, value in picks.items():
        where, name, _, _ = walk()[kid]
        if where[0] == "section":
            sections.setdefault(where[1], {})[name] = value
        else:
            items[where[1]][name] = value
    text = "".join(f"[{s}]\n" + "".join(f"{json.dumps(k)} = {toml(v)}\n" for k, v in keys.items())
                   for s, keys in sections.items())
    text += "".join(f"[[{a}]]\n" + "".join(f"{json.dumps(k)} = {toml(v)}\n" for k, v in item.items())
                    for a, item in items.items())
    path = tmp / "ishowd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _loading(picks: dict, tmp: Path) -> dict:
    """``picks`` less the few that clash with another pick (each loaded on its own)."""
    picks = dict(picks)
    for _ in range(8):
        try:
            config.load(str(_daemon_config(tmp, picks)), catalog.schema())
            return picks
        except ConfigError as err:
            clash = [kid for kid in picks if names_the_key(err, *walk()[kid][:2])]
            assert clash, str(err)
            del picks[clash[0]]
    raise AssertionError(f"too many picks clash: {picks}")


def _extremes(which: str) -> dict:
    picks = {}
    for kid, (where, name, key, _) in walk().items():
        if key.kind in NUMERIC and getattr(key, which) is not None:
            picks[kid] = _as_value(key, getattr(key, which))
    for section, name in TIED:
        bound = getattr(catalog.schema().sections[section]["raw_retention"], which)
        picks[f"[{section}] {name}"] = f"{int(bound)}s"
    return picks


def _oddest() -> dict:
    """For each key but the store's path, the loading value with the longest spelling."""
    picks = {}
    for kid, (where, name, key, results) in walk().items():
        if kid == "[storage] path":
            continue
        loaded = [v for v, outcome in results if not isinstance(outcome, ConfigError) and v != key.default]
        if loaded:
            picks[kid] = max(loaded, key=lambda v: len(toml(v)))
    return picks


def assert_clean_exit(proc, *allowed):
    assert proc.returncode in allowed, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if proc.returncode == 78:
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ishowd: configuration error: "), proc.stderr


@pytest.mark.parametrize("sample", ["min", "max", "oddest"])
def test_the_daemon_and_ishowctl_run_on_extreme_values_that_load(tmp_path, sample):
    picks = _loading(_oddest() if sample == "oddest" else _extremes(sample), tmp_path)
    assert len(picks) >= 0.8 * (len(_oddest()) if sample == "oddest" else len(_extremes(sample)))
    cfg = _daemon_config(tmp_path, picks)
    proc = run(entry_point("ishowd"), "run", "--once", "--config", str(cfg), cwd=tmp_path)
    assert_clean_exit(proc, 0)
    assert ticks(tmp_path / "ishowd.db")
    for argv in (["status"], ["alerts", "--all"], ["check"]):
        out = run(entry_point("ishowctl"), "--config", str(cfg), *argv, cwd=tmp_path)
        assert "Traceback" not in out.stderr and out.returncode in (0, 1, 2, 3), (argv, out.stderr)


class Lines:
    """A process's stderr, read line by line as it comes (so a test can wait on a line)."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._reader.start()

    def text(self) -> str:
        self._reader.join(timeout=30)
        return "".join(self.lines)


def test_the_scheduler_takes_the_longest_intervals(tmp_path):
    """Every schedule at its longest interval (1h, 1d) and the exporter on a port the kernel picks:
    the scheduler runs its jobs and the daemon stops on SIGTERM (500000w overflowed it at start)."""
    log = tmp_path / "backend.log"
    picks = _loading(dict(_extremes("max"), **{"[exporter] listen": "127.0.0.1:0", "[rtf] logs": [str(log)]}),
                     tmp_path)
    cfg = _daemon_config(tmp_path, picks)
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = Lines(proc.stderr)
    try:
        # the log ingestion is the first job the scheduler runs (a second after the start)
        wait_for(lambda: any(str(log) in line for line in err.lines) or proc.poll() is not None,
                 what="the first scheduled job")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.text()
    assert proc.returncode == 0 and "Traceback" not in text, text[-3000:]
    assert "sampling every 3600s" in text and str(log) in text, text[-3000:]
    assert re.search(r"serving /metrics on http://127\.0\.0\.1:[1-9][0-9]*/metrics", text), text[-3000:]


def _every_loading_pick() -> list:
    picks = []
    for kid, (where, name, key, results) in walk().items():
        if kid != "[storage] path":
            picks += [(kid, v) for v, outcome in results if not isinstance(outcome, ConfigError)]
    return picks


@pytest.mark.torture
def test_the_daemon_runs_once_on_each_value_that_loads(tmp_path):
    picks = _every_loading_pick()
    if os.environ.get("ISHOWD_BOUNDS_SAMPLE") != "all":
        picks = picks[::max(1, len(picks) // 12)]
    for n, (kid, value) in enumerate(picks):
        where = tmp_path / str(n)
        where.mkdir()
        cfg = _daemon_config(where, {kid: value})
        proc = run(entry_point("ishowd"), "run", "--once", "--config", str(cfg), cwd=where)
        assert_clean_exit(proc, 0)


# --- the two crashes this file began with, and the exporter's promise -------------------------

@pytest.mark.parametrize("keys,named", [
    ('[sampling]\ninterval = "500000w"\n', "[sampling] interval"),
    ('[rtf]\ninterval = "500000w"\n', "[rtf] interval"),
    ('[exporter]\nlisten = "127.0.0.1:99999"\n', "[exporter] listen"),
])
def test_what_used_to_crash_the_running_daemon_exits_78_in_one_line(tmp_path, keys, named):
    cfg = tmp_path / "ishowd.toml"
    cfg.write_text(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n' + keys
                   + ("" if "exporter" in keys else '[exporter]\nlisten = ""\n'))
    # not --once: these crashed in the scheduler and the exporter, which only the running daemon
    # starts (a daemon that took the value and ran on would time out here)
    proc = run(entry_point("ishowd"), "run", "--config", str(cfg), cwd=tmp_path, timeout=30)
    assert proc.returncode == 78, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and f"{cfg}: {named}: expected" in proc.stderr, proc.stderr


def _held_port():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder, holder.getsockname()[1]


def test_a_busy_exporter_port_is_logged_once_and_sampling_goes_on(tmp_path):
    holder, port = _held_port()
    try:
        cfg = tmp_path / "ishowd.toml"
        cfg.write_text(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[sampling]\ninterval = "1s"\n'
                       f'[exporter]\nlisten = "127.0.0.1:{port}"\n')
        proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: len(ticks(tmp_path / "ishowd.db")) >= 3 or proc.poll() is not None, what="three ticks")
            proc.send_signal(signal.SIGTERM)
            err = proc.communicate(timeout=30)[1]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        holder.close()
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert len(ticks(tmp_path / "ishowd.db")) >= 3
    said = [line for line in err.splitlines() if "cannot listen" in line]
    assert len(said) == 1 and f"127.0.0.1:{port}" in said[0] and "sampling goes on" in said[0], err[-3000:]


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_exporter_address_is_served(tmp_path):
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "ishowd.toml"
    cfg.write_text(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[sampling]\ninterval = "1s"\n'
                   f'[exporter]\nlisten = "[::1]:{port}"\n')
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ticks(tmp_path / "ishowd.db"), what="a tick")

        def scrape():
            try:
                with urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=5) as resp:
                    return resp.read().decode()
            except OSError:
                return None
        assert "memory_total_bytes" in wait_for(scrape, what="/metrics on [::1]")
    finally:
        proc.terminate()
        err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0 and "cannot listen" not in err, err[-3000:]


# --- the address parsing, held against the standard library's -------------------------------

def _stdlib_takes(cls, text: str) -> bool:
    try:
        cls(text)
        return True
    except ValueError:
        return False


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.ip_addresses(v=6).map(str), st.ip_addresses(v=6).map(lambda a: a.exploded),
                 st.text("0123456789abcdefABCDEF:.", max_size=45)))
def test_ipv6_hosts_are_what_ipaddress_takes(text):
    assert (config.host_problem(f"[{text}]") is None) == _stdlib_takes(ipaddress.IPv6Address, text), text


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.ip_addresses(v=4).map(str), st.text("0123456789.", max_size=16)))
def test_ipv4_hosts_are_what_ipaddress_takes(text):
    assert (config.host_problem(text) is None) == _stdlib_takes(ipaddress.IPv4Address, text), text
