"""The ``skillc`` command line: the only place that prints or exits."""

from . import (  # noqa: F401  (each module registers its commands)
    build_cmds,
    deploy_cmds,
    registry_cmds,
    sandbox_cmds,
    share_cmds,
    spec_cmds,
)
from .app import cli, main

__all__ = ["cli", "main"]
