"""The ``peerpool`` command: thin commands over library code.

Each subcommand lives next to the library code it drives and is registered here by
import path, so a missing optional part says so instead of breaking the whole CLI.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from peerpool import __version__
from peerpool.errors import PeerpoolError

# name -> "module:attribute" of a click command or group
SUBCOMMANDS: dict[str, str] = {
    "config": "peerpool.config.cli:config",
    "check": "peerpool.checks:check",
    "reference": "peerpool.refresh:reference_group",
    "simulate": "peerpool.simulate.cli:simulate",
    "collect": "ingest.collector.cli:collect",
    "decode": "ingest.cli:decode",
    "asn": "ingest.asn:asn",
    "counters": "ingest.counters.cli:counters",
    "build": "peerpool.build:build",
    "bill": "peerpool.billing.cli:bill",
    "tender": "peerpool.tender.cli:tender",
    "dashboards": "peerpool.dashboards:dashboards",
    "demo": "peerpool.demo:demo",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used (keeps ``--help`` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
                return _not_yet(cmd_name)
            raise
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


def _not_yet(name: str) -> click.Command:
    @click.command(name=name, help="(not available in this version of peerpool)")
    def missing() -> None:
        raise click.ClickException(f"'peerpool {name}' is not part of this version yet; see README.md")

    return missing


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="peerpool")
def cli() -> None:
    """peerpool: traffic, bills and transit economics for a cooperative Internet Exchange Point.

    Typical flow: simulate (or collect) -> decode -> counters -> build -> bill / tender / dashboards.
    """


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="peerpool", standalone_mode=False)
    except PeerpoolError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
