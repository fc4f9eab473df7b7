"""The ``skillc`` command line: the only place that prints or exits."""

from . import build_cmds, deploy_cmds, registry_cmds, sandbox_cmds, spec_cmds  # noqa: F401
from .app import cli, main

__all__ = ["cli", "main"]
