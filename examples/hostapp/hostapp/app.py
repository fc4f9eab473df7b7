"""Wire the configured channels, tools and memory to one assistant."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config as cfg
from .channels import Channel
from .core import Assistant, Memory, Tool
from .plugins import discover


@dataclass
class App:
    """A running host: the assistant and its started channels."""

    assistant: Assistant
    channels: dict[str, Channel]

    def start(self) -> None:
        """Start every channel."""
        for channel in self.channels.values():
            channel.start(self.assistant.handle)

    def stop(self) -> None:
        """Stop every channel and close memory."""
        for channel in self.channels.values():
            channel.stop()
        self.assistant.memory.close()


def build(config: dict[str, Any], env: Mapping[str, str] | None = None) -> App:
    """Build the app a configuration describes."""
    env = dict(os.environ if env is None else env)
    memory_conf = cfg.section(config, "memory")
    backend = str(memory_conf.get("backend", "inmemory"))
    memories = discover("memory")
    if backend not in memories:
        raise cfg.ConfigError(f"memory backend {backend!r} not found; have {sorted(memories)}")
    memory: Memory = memories[backend](memory_conf, env)
    tools: dict[str, Tool] = {}
    for name, create in discover("tools").items():
        conf = cfg.section(config, "tools", name)
        if conf.get("enabled", True):
            tools[name] = create(conf, env)
    channels: dict[str, Channel] = {}
    available = discover("channels")
    for name, conf in cfg.section(config, "channels").items():
        if not isinstance(conf, dict) or not conf.get("enabled", True):
            continue
        if name not in available:
            raise cfg.ConfigError(f"channel {name!r} is configured but not installed")
        channels[name] = available[name](conf, env)
    name = str(cfg.section(config, "assistant").get("name", "hostapp"))
    return App(Assistant(name, tools, memory), channels)


def run(path: Path = cfg.DEFAULT_PATH) -> None:
    """Run until interrupted."""
    app = build(cfg.load(path))
    app.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
