"""Configuration: defaults, lookup order, and errors that name the file and the key (exit 78)."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ishowd import catalog
from ishowd import config
from ishowd.cli import cli
from ishowd.config import ConfigError, parse_duration

from conftest import entry_point, run


def test_durations():
    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("24h") == 86400
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("4w") == 28 * 86400
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    for bad in ("", "10", "ten", "10x", "h", "-5s", "5s ago", "1.s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_builtin_defaults_work_unprivileged(clean_env, tmp_path):
    clean_env.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent.toml")
    clean_env.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    cfg = catalog.load_config(None)
    assert cfg.source == "<built-in defaults>"
    assert cfg.sampling.interval == 10
    assert cfg.host.sysfs_root == "/sys"
    assert cfg.storage.raw_retention == 14 * 86400
    from ishowd.paths import store_path
    assert store_path(cfg) == str(tmp_path / "state" / "ishowd" / "ishowd.db")


def test_state_directory_from_systemd(clean_env, tmp_path):
    clean_env.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent.toml")
    clean_env.setenv("STATE_DIRECTORY", str(tmp_path / "sd"))
    from ishowd.paths import store_path
    assert store_path(catalog.load_config(None)) == str(tmp_path / "sd" / "ishowd.db")


def test_lookup_order(clean_env, tmp_path):
    a = tmp_path / "a.toml"
    a.write_text('[sampling]\ninterval = "5s"\n')
    b = tmp_path / "b.toml"
    b.write_text('[sampling]\ninterval = "7s"\n')
    system = tmp_path / "system.toml"
    system.write_text('[sampling]\ninterval = "9s"\n')
    clean_env.setattr(config, "SYSTEM_CONFIG", system)
    assert catalog.load_config(None).sampling.interval == 9
    clean_env.setenv("ISHOWD_CONFIG", str(b))
    assert catalog.load_config(None).sampling.interval == 7
    assert catalog.load_config(str(a)).sampling.interval == 5


BAD = [
    ('[sampling]\ninterval = "ten"\n', "[sampling] interval", "duration"),
    ('[sampling]\ninterval = 10\n', "[sampling] interval", "duration"),
    ('[sampling]\ninterval = "0s"\n', "[sampling] interval", "between 1s and 1h"),
    ('[sampling]\ninterval = "500000w"\n', "[sampling] interval", "between 1s and 1h"),
    ('[rtf]\nbaseline = nan\n', "[rtf] baseline", "a finite number between 0.001 and 100"),
    ('[rtf]\nbatch_bytes = 99999999999999999999\n', "[rtf] batch_bytes", "between 131072 and 268435456"),
    ('[rtf]\nignore_errors = ["' + "(" * 900 + ")" * 900 + '"]\n', "[rtf] ignore_errors", "nested too deeply"),
    ('[storage]\nhour_retention = "' + "9" * 400 + 's"\n', "[storage] hour_retention", '"forever" or'),
    ('[storage]\npath = "/var/lib/' + "x" * 256 + '.db"\n', "[storage] path", "no part over 255 bytes"),
    ('[storage]\npath = "a\\u0000b"\n', "[storage] path", "without NUL"),
    ('[host]\ndisk_paths = ["/ssd", ""]\n', "[host] disk_paths", "none of them empty"),
    ('[sampling]\n"a\\nb" = 1\n', "[sampling] a\\nb", "unknown key"),
    ('[sampling]\nintervall = "10s"\n', "[sampling] intervall", "unknown key"),
    ('[samplin]\ninterval = "10s"\n', "[samplin]", "unknown section"),
    ('[storage]\npath = 5\n', "[storage] path", "file path"),
    ('[storage]\nraw_retention = "100d"\n', "raw_retention", "raw <= minute <= hour"),
    ('[storage]\nhour_retention = "sometimes"\n', "[storage] hour_retention", "forever"),
    ('[host]\ndisk_paths = "/ssd"\n', "[host] disk_paths", "list"),
    ('[exporter]\nlisten = "nowhere"\n', "[exporter] listen", "address"),
    ('[exporter]\nlisten = "127.0.0.1:99999"\n', "[exporter] listen", "a port from 0 to 65535"),
    ('[exporter]\nlisten = ":9733"\n', "[exporter] listen", '"0.0.0.0:9733" listens on every interface'),
    ('[exporter]\nlisten = "127.0.0.256:9733"\n', "[exporter] listen", "four numbers from 0 to 255"),
    ('[exporter]\nlisten = "[::g]:9733"\n', "[exporter] listen", "an IPv6 address inside the brackets"),
    ('[exporter]\nlisten = "my_host:9733"\n', "[exporter] listen", "a host name"),
    ('[backend]\nurl = "http://127.0.0.1:99999"\n', "[backend] url", "a port from 1 to 65535"),
    ('[jobs]\ntimezone = "Mars/Olympus_Mons"\n', "[jobs] timezone", "an IANA time zone name"),
    ('[sampling\ninterval = "10s"\n', "", "not valid TOML"),
    ('sampling = 3\n', "sampling", "table"),
]


@pytest.mark.parametrize("text,key,expected", BAD)
def test_bad_config_names_file_and_key(tmp_path, text, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        catalog.load_config(str(path))
    msg = str(err.value)
    assert str(path) in msg and key in msg and expected in msg, msg
    assert msg.isprintable() and len(msg) < 1000, msg


@pytest.mark.parametrize("listen", ["", "127.0.0.1:9733", "0.0.0.0:0", "[::1]:9733", "[::]:65535",
                                    "localhost:9733", "localhost.:9733", "metrics-1.example.org:9733"])
def test_exporter_addresses_that_load(listen):
    # plain HTTP said explicitly: beyond loopback the exporter otherwise needs TLS (tests/test_exporter.py)
    assert catalog.loads_config(f'[exporter]\nlisten = "{listen}"\nplaintext = true\n').exporter.listen == listen


def test_unreadable_and_non_utf8(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        catalog.load_config(str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="cannot read"):
        catalog.load_config(str(tmp_path))  # a directory
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[storage]\npath = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        catalog.load_config(str(path))


@pytest.mark.parametrize("program", ["ishowd", "ishowctl"])
def test_bad_config_exits_78_without_traceback(tmp_path, program):
    path = tmp_path / "bad.toml"
    path.write_text('[sampling]\ninterval = "soon"\n')
    argv = [entry_point("ishowd"), "run", "--once", "--config", str(path)] if program == "ishowd" \
        else [entry_point("ishowctl"), "--config", str(path), "status"]
    proc = run(*argv)
    assert proc.returncode == 78
    assert str(path) in proc.stderr and "[sampling] interval" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_env_config_is_used_by_the_cli(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[nope]\n')
    result = CliRunner().invoke(cli, ["status"], env={"ISHOWD_CONFIG": str(path)})
    assert isinstance(result.exception, ConfigError)


def test_shipped_production_config_is_valid():
    shipped = Path(__file__).resolve().parents[1] / "etc" / "ishowd.toml"
    cfg = catalog.load_config(str(shipped))
    assert cfg.storage.path == "/var/lib/ishowd/ishowd.db"
    assert cfg.sampling.interval == 10
