"""A real OCI distribution registry (Debian's docker-registry) on 127.0.0.1 for the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import require

USER, PASSWORD = "alice", "correct-horse-battery"


@dataclass
class Server:
    """A running registry: where it listens and where it keeps blobs."""

    host: str
    data: Path

    def blob_files(self) -> list[Path]:
        return sorted((self.data / "docker/registry/v2/blobs").rglob("data"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def registry_server(root: Path, auth: bool = False) -> Iterator[Server]:
    exe = shutil.which("docker-registry")
    require(exe is not None, "docker-registry (Debian package docker-registry) is not installed")
    assert exe is not None
    port = _free_port()
    config = [f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
              f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"]
    if auth:
        require(shutil.which("htpasswd") is not None, "htpasswd (apache2-utils) is not installed")
        htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True,
                                  text=True, check=True).stdout
        root.mkdir(parents=True, exist_ok=True)
        (root / "htpasswd").write_text(htpasswd)
        config.append(f"auth:\n  htpasswd:\n    realm: skillc-test\n    path: {root / 'htpasswd'}\n")
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text("".join(config))
    proc = subprocess.Popen([exe, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield Server(f"127.0.0.1:{port}", root / "data")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
