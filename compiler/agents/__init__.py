"""Agents: what turns a spec into changes in a sandboxed copy of the fork."""

from __future__ import annotations

from compiler.deployment import Deployment
from compiler.errors import UserError

from .base import Agent

BACKENDS = ("reference", "anthropic", "replay")


def make_agent(deployment: Deployment) -> Agent:
    """The agent a deployment asks for (replay needs a recorded build, see ``Builder``)."""
    backend = deployment.agent.backend
    if backend == "reference":
        from .reference import ReferenceAgent

        return ReferenceAgent()
    if backend == "anthropic":
        from .anthropic import AnthropicAgent

        return AnthropicAgent(deployment.agent)
    if backend == "replay":
        raise UserError("--agent replay needs a build to replay: pass --replay BUILD_ID")
    raise UserError(f"unknown agent {backend!r} (choose from {', '.join(BACKENDS)})")
