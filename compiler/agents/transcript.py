"""Transcripts: JSON Lines, one event per model turn and per tool call, secrets redacted.

Every value passes through the ``Redactor`` before it is written or sent to a
model: the values of the spec's ``requires.env``, the deployment's ``secrets``
and the API key, wherever they appear, become ``[REDACTED:NAME]``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from compiler.errors import UserError

MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary text
ALWAYS_SECRET = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


class Redactor:
    """Replaces secret values with a marker naming the secret."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        pairs = [(v, k) for k, v in secrets.items() if v and len(v) >= MIN_SECRET_LENGTH]
        self._pairs = sorted(pairs, key=lambda p: -len(p[0]))  # longest first

    @classmethod
    def from_env(cls, names: Iterable[str], env: Mapping[str, str] | None = None) -> Redactor:
        """Redact the current values of these environment variables (and the API key)."""
        env = os.environ if env is None else env
        wanted = set(names) | set(ALWAYS_SECRET)
        return cls({n: env[n] for n in wanted if env.get(n)})

    def text(self, value: str) -> str:
        """Redact one string."""
        for secret, name in self._pairs:
            if secret in value:
                value = value.replace(secret, f"[REDACTED:{name}]")
        return value

    def value(self, obj: Any) -> Any:
        """Redact every string inside a JSON-like value."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.text(str(k)): self.value(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj


class Transcript:
    """An append-only JSONL log of one agent run."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor
        self.seq = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("w", encoding="utf-8")

    def event(self, kind: str, **fields: Any) -> None:
        """Write one event (redacted), flushed at once so a crash keeps what happened."""
        self.seq += 1
        record = self.redactor.value({"seq": self.seq, "type": kind, "ts": round(time.time(), 3),
                                      **fields})
        self._fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def read(path: Path) -> list[dict[str, Any]]:
    """Read a transcript file; a malformed line is an error naming it."""
    return parse(path.read_text("utf-8"), str(path))


def parse(text: str, where: str) -> list[dict[str, Any]]:
    """Parse transcript text (JSON Lines)."""
    events = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}:{n}: not a transcript event: {exc}") from exc
        if not isinstance(event, dict) or "type" not in event:
            raise UserError(f"{where}:{n}: not a transcript event")
        events.append(event)
    return events
