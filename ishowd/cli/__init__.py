"""``ishowctl``: the operators' command line, a thin layer over the library.

Each command lives in a module of this package and attaches itself to
``cli``; ``main()`` turns configuration and store errors into clean
messages and exit codes (78 for configuration, see docs/interface.md).
Modules here keep heavy imports inside the commands that need them.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from ..config import EX_CONFIG, ConfigError


class AppContext:
    """What every command gets: the config path given, loaded on first use."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._config = None

    @property
    def config(self):
        if self._config is None:
            from ..config import load
            self._config = load(self.config_path)
        return self._config

    def reader(self):
        from ..store.reader import open_reader
        return open_reader(self.config)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar=None,
              help="Config file (default: $ISHOWD_CONFIG, else /etc/ishowd/ishowd.toml, else built-in defaults).")
@click.version_option(package_name="ishowd")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Inspect and operate ishowd, the iShowTTS monitoring daemon."""
    ctx.obj = AppContext(config_path)


pass_app = click.make_pass_decorator(AppContext)

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def main(argv: list[str] | None = None) -> None:
    from ..store.errors import StoreError
    try:
        cli.main(args=argv, prog_name="ishowctl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"ishowctl: configuration error: {exc}", err=True)
        sys.exit(EX_CONFIG)
    except StoreError as exc:
        click.echo(f"ishowctl: {exc}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # `ishowctl history ... | head`
        sys.stderr.close()
        sys.exit(0)
    except SystemExit:
        raise
    sys.exit(0)
