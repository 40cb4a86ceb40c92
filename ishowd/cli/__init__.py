"""``ishowctl``: the operators' command line, a thin layer over the library.

Each command lives in a module of this package and is imported only when it
is run (``COMMANDS``), so ``ishowctl status`` pays for nothing but itself;
``main()`` turns the library's operator-facing errors into one line and an
exit code (``ishowd.errors``: 78 for configuration). Modules here keep heavy
imports inside the commands that need them.
"""
from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from .app import AppContext

# command name -> (module of this package, attribute)
COMMANDS = {
    "alerts": ("alerts", "alerts"),
    "audit": ("audit", "audit"),
    "backups": ("backups", "backups"),
    "check": ("alerts", "check"),
    "config": ("configcmd", "config"),
    "db": ("db", "db"),
    "history": ("history", "history"),
    "jobs": ("jobs", "jobs"),
    "metrics": ("metrics", "metrics"),
    "rtf": ("rtf", "rtf"),
    "status": ("status", "status"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when asked for (click's documented lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        where = COMMANDS.get(name)
        if where is None:
            return None
        module = importlib.import_module(f"{__name__}.{where[0]}")
        return accept_config(getattr(module, where[1]))

    def resolve_command(self, ctx: click.Context, args: list[str]):
        # click suggests the closest name from the commands it holds, which a lazy group has none
        # of: hand it the names it would load, so `ishowctl stauts` still says "Did you mean 'status'?"
        name = args[0] if args else ""
        if name in COMMANDS or name.startswith("-") or ctx.resilient_parsing:
            return super().resolve_command(ctx, args)
        try:
            from click.exceptions import NoSuchCommand   # click 8.2 and later
        except ImportError:                               # 8.1 says "No such command" without a hint
            return super().resolve_command(ctx, args)
        raise NoSuchCommand(name, possibilities=list(COMMANDS), ctx=ctx)


CONFIG_HELP = "Config file (default: $ISHOWD_CONFIG, else /etc/ishowd/ishowd.toml, else built-in defaults)."


def _set_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None and not ctx.resilient_parsing:
        ctx.ensure_object(AppContext).use(value)


def accept_config(cmd: click.Command) -> click.Command:
    """Give ``cmd`` (and, for a group, each command in it) ``--config`` of its own, so it may follow
    the subcommand (``ishowctl status --config X``) as ``ishowd run --config X`` takes it; eager, so
    it is set before the command loads anything."""
    if not any(p.name == "config_after" for p in cmd.params):
        cmd.params.append(click.Option(["--config", "config_after"], metavar="PATH", expose_value=False,
                                       is_eager=True, callback=_set_config, help=CONFIG_HELP))
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            accept_config(sub)
    return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar=None, help=CONFIG_HELP)
@click.version_option(__version__, prog_name="ishowctl")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Inspect and operate ishowd, the iShowTTS monitoring daemon."""
    ctx.obj = AppContext(config_path)


def main(argv: list[str] | None = None) -> None:
    from ..errors import exit_for
    try:
        cli.main(args=argv, prog_name="ishowctl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # `ishowctl history ... | head`
        sys.stderr.close()
        sys.exit(0)
    except SystemExit:
        raise
    except Exception as exc:
        mapped = exit_for(exc)
        if mapped is None:
            raise
        code, message = mapped
        click.echo(f"ishowctl: {message}", err=True)
        sys.exit(code)
    sys.exit(0)
