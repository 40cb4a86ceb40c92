"""ishowctl through CliRunner and as the installed program: shapes, formats, errors, help."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import click
import pytest
from click.testing import CliRunner

from ishowd.cli import cli
from ishowd.catalog import metric as get
from ishowd.metrics import Sample
from ishowd.store.writer import Store

from conftest import entry_point, run, write_config

HOUR = 3600


@pytest.fixture
def populated(tmp_path):
    """A store with three hours of memory readings ending at the last whole hour + 10 min."""
    import time
    cfg = write_config(tmp_path)
    now = int(time.time())
    start = now - now % HOUR - 3 * HOUR
    store = Store(tmp_path / "ishowd.db")
    mem, disk = get("memory_used_bytes"), get("disk_free_bytes")
    t = start
    while t <= now:
        store.write(t, [Sample(mem, float(1 << 30) + (t - start)),
                        Sample(disk, 5e9, {"path": "/"}), Sample(disk, 7e9, {"path": "/ssd"})])
        store.maintain(t)
        t += 60
    store.close()
    return cfg, start, now


def invoke(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_status_json_has_the_contract_shape(populated):
    cfg, _, now = populated
    result = invoke("--config", str(cfg), "status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"metrics", "alerts", "rtf"} <= set(data)
    assert set(data["rtf"]) >= {"count", "mean", "p95"}
    by_key = {(m["name"], json.dumps(m["labels"], sort_keys=True)): m for m in data["metrics"]}
    mem = by_key[("memory_used_bytes", "{}")]
    assert set(mem) >= {"name", "labels", "value", "unit", "ts"}
    assert mem["unit"] == "bytes"
    assert datetime.fromisoformat(mem["ts"]).utcoffset() is not None
    assert by_key[("disk_free_bytes", json.dumps({"path": "/ssd"}))]["value"] == 7e9


def test_status_table_is_humanised(populated):
    cfg, _, _ = populated
    result = invoke("--config", str(cfg), "status")
    assert result.exit_code == 0
    assert "GiB" in result.output and "disk_free_bytes{path=/ssd}" in result.output
    assert "6.5 GiB" in result.output  # 7e9 bytes


def test_history_json_matches_the_written_values(populated):
    cfg, start, now = populated
    result = invoke("--config", str(cfg), "history", "memory_used_bytes", "--since", "3h", "--step", "1h", "--json")
    rows = json.loads(result.output)
    assert rows and all(set(r) == {"ts", "labels", "mean", "min", "max", "count"} for r in rows)
    first = next(r for r in rows if datetime.fromisoformat(r["ts"]).timestamp() == start)
    # one sample a minute, value = 2**30 + seconds since start
    assert first["count"] == 60 and first["min"] == float(1 << 30) and first["max"] == float(1 << 30) + 3540
    # sealed hours and the head alike: a count is an integer in the JSON (sealed ones came out as 60.0)
    assert all(type(r["count"]) is int for r in rows)
    assert '"count": 60\n' in result.output
    assert first["mean"] == pytest.approx((1 << 30) + 1770)
    stamps = [r["ts"] for r in rows]
    assert stamps == sorted(stamps)


def test_history_label_filter_and_csv(populated):
    cfg, _, _ = populated
    result = invoke("--config", str(cfg), "history", "disk_free_bytes", "--label", "path=/ssd", "--step", "1h",
                    "--since", "2h", "--csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows and {r["labels.path"] for r in rows} == {"/ssd"}
    assert {float(r["mean"]) for r in rows} == {7e9}


@pytest.mark.parametrize("args,needle", [
    (["history", "memory_used_bytes", "--json", "--csv"], "cannot be used together"),
    (["history", "memory_usd_bytes"], "did you mean memory_used_bytes"),
    (["history", "memory_used_bytes", "--step", "soon"], "--step"),
    (["history", "memory_used_bytes", "--since", "yesterday"], "expected 'now'"),
    (["history", "memory_used_bytes", "--label", "path"], "KEY=VALUE"),
])
def test_usage_errors_exit_2(populated, args, needle):
    cfg, _, _ = populated
    proc = run(entry_point("ishowctl"), "--config", str(cfg), *args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_store_is_a_clean_error(tmp_path):
    proc = run(entry_point("ishowctl"), "--config", str(write_config(tmp_path)), "status")
    assert proc.returncode == 1
    assert "no store at" in proc.stderr and "Traceback" not in proc.stderr


def test_installed_commands_agree_with_clirunner(populated):
    cfg, _, _ = populated
    proc = run(entry_point("ishowctl"), "--config", str(cfg), "history", "memory_used_bytes", "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == json.loads(invoke("--config", str(cfg), "history", "memory_used_bytes",
                                                        "--json").output)


def test_history_piped_into_head_exits_quietly(populated):
    import subprocess
    cfg, _, _ = populated
    out = subprocess.run(f"'{entry_point('ishowctl')}' --config '{cfg}' history memory_used_bytes --step 1m "
                         "--since 3h | head -1", shell=True, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


def _commands(group: click.Group, prefix=()):
    # list_commands/get_command, not .commands: ishowctl's group loads its commands when asked
    for name in group.list_commands(click.Context(group)):
        cmd = group.get_command(click.Context(group), name)
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


def test_every_command_has_help_text():
    for path, cmd in _commands(cli):
        assert cmd.help and len(cmd.help.strip()) > 10, f"{' '.join(path)} has no help"
        for param in cmd.params:
            if isinstance(param, click.Option):
                assert param.help, f"{' '.join(path)} {param.opts} has no help"
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_the_daemons_command_line_has_help_and_refuses_what_it_does_not_know():
    import argparse

    from ishowd.daemon import _parser
    parsers = [_parser()]
    parsers += [p for a in parsers[0]._actions if isinstance(a, argparse._SubParsersAction)
                for p in a.choices.values()]
    for parser in parsers:
        assert parser.description and len(parser.description) > 10, parser.prog
        for action in parser._actions:
            assert action.help, f"{parser.prog} {action.option_strings} has no help"
    from importlib.metadata import version  # the installed distribution's: one version, everywhere
    ishowd = entry_point("ishowd")
    for argv in ([], ["--help"], ["run", "--help"], ["--version"]):
        proc = run(ishowd, *argv)
        assert proc.returncode == (2 if not argv else 0), (argv, proc.stderr)
        assert ("usage: ishowd" in proc.stdout) == (argv != ["--version"]), proc.stdout
    assert run(ishowd, "--version").stdout.strip() == f"ishowd, version {version('ishowd')}"
    for argv in (["runn"], ["run", "--bogus"], ["run", "--config"]):
        proc = run(ishowd, *argv)
        assert proc.returncode == 2 and "usage: ishowd" in proc.stderr and "Traceback" not in proc.stderr, argv


def test_fast_paths_import_nothing_heavy(populated):
    """status and history must not load torch, numpy, matplotlib or sqlalchemy."""
    import sys
    cfg, _, _ = populated
    probe = ("import sys, runpy; sys.argv = ['ishowctl', '--config', %r, %r, %s]\n"
             "try:\n    runpy.run_module('ishowd.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "bad = [m for m in ('torch', 'numpy', 'matplotlib', 'sqlalchemy', 'alembic') if m in sys.modules]\n"
             "print('HEAVY', bad)")
    for cmd, arg in (("status", "'--json'"), ("history", "'memory_used_bytes'")):
        proc = run(sys.executable, "-c", probe % (str(cfg), cmd, arg))
        assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_every_package_ships_in_the_wheel():
    """pyproject.toml lists packages explicitly (migrations/ is mapped in): none may be missing."""
    import sys
    from pathlib import Path
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(root).parts) for p in (root / "ishowd").rglob("__init__.py")}
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
