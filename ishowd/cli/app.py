"""What every ``ishowctl`` command gets: the config (loaded on first use; ``config.metrics`` is the
registry of every declared metric) and the store."""
from __future__ import annotations

import click


class AppContext:
    """The config path given on the command line; the config, loaded on first use."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._config = None

    def use(self, config_path: str) -> None:
        """The config named after the subcommand; it wins over one named before it, as the last
        of a repeated option does."""
        self.config_path = config_path
        self._config = None

    @property
    def config(self):
        if self._config is None:
            from ..catalog import load_config
            self._config = load_config(self.config_path)
        return self._config

    def reader(self):
        from ..store.reader import open_reader
        return open_reader(self.config)


pass_app = click.make_pass_decorator(AppContext)
