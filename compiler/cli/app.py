"""The click group, the one error handler, and output helpers."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from compiler import __version__
from compiler.errors import EnvironmentError_, SkillcError, UserError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_FAILURE = 1
EXIT_ENVIRONMENT = 3


class SkillcGroup(click.Group):
    """A group that turns skillc's exceptions into messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkillcError as exc:
            report_error(exc)
            ctx.exit(exit_code(exc))


def exit_code(exc: SkillcError) -> int:
    """The exit code for one of our errors."""
    return EXIT_ENVIRONMENT if isinstance(exc, EnvironmentError_) else EXIT_FAILURE


def report_error(exc: SkillcError) -> None:
    """Print an error the way the user should read it."""
    if isinstance(exc, UserError):
        err.print(str(exc), markup=False)
    else:
        err.print(f"error: {exc}", markup=False)


def emit_json(value: Any) -> None:
    """Write ``value`` as JSON to stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group(cls=SkillcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skillc")
def cli() -> None:
    """Compile skill specs into integrations fitted to each deployment.

    Exit codes: 0 success, 1 failure or bad input, 2 usage error, 3 something
    this machine lacks (the message says what to install or start).
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="skillc")
