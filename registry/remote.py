"""Push and pull artifacts to any OCI distribution registry, through ``oras``.

Every blob fetched is checked against the digest the manifest gives for it
before anything uses it. Credentials come from ``SKILLC_REGISTRY_USER`` and
``SKILLC_REGISTRY_PASSWORD`` or from the usual docker config (``docker login``,
``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``);
plain HTTP (``insecure``) is allowed only for registries on loopback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oras.provider
import requests

from compiler.errors import CorruptionError, RegistryError, UserError

MEDIA = {
    "spec_config": "application/vnd.skillc.spec.config.v1+json",
    "spec": "application/vnd.skillc.spec.v1+tar",
    "signatures": "application/vnd.skillc.signatures.v1+json",
    "build_config": "application/vnd.skillc.build.config.v1+json",
    "tree": "application/vnd.skillc.tree.v1+tar",
    "object": "application/vnd.skillc.object.v1+json",
    "transcript": "application/vnd.skillc.transcript.v1+jsonl",
}
TITLE = "org.opencontainers.image.title"
_REF = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+(?::\d+)?|\[[0-9a-fA-F:]+\](?::\d+)?)/"
                  r"(?P<repo>[a-z0-9]+(?:[._\-/][a-z0-9]+)*)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}))?$")


@dataclass(frozen=True)
class Ref:
    """``host[:port]/repository[:tag]``."""

    host: str
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"


def parse_ref(text: str, default_tag: str | None = None) -> Ref:
    """Read a reference; the tag may come from ``default_tag``."""
    m = _REF.match(text)
    if not m or not (m.group("tag") or default_tag):
        raise UserError(f"{text!r}: expected HOST[:PORT]/REPOSITORY[:TAG] (lower-case repository)")
    return Ref(m.group("host"), m.group("repo"), m.group("tag") or str(default_tag))


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    name = host[1:host.index("]")] if host.startswith("[") else host.split(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Blob:
    """A fetched, verified blob."""

    descriptor: dict[str, Any]
    data: bytes

    @property
    def title(self) -> str:
        """The layer's file name annotation."""
        return str((self.descriptor.get("annotations") or {}).get(TITLE, ""))


class Remote:
    """One OCI registry host."""

    def __init__(self, host: str, insecure: bool = False) -> None:
        if insecure and not is_loopback(host):
            raise UserError(f"--insecure (plain HTTP) is only allowed for registries on loopback, "
                            f"not {host}")
        self.host = host
        self.prefix = "http" if insecure else "https"
        user, password = os.environ.get("SKILLC_REGISTRY_USER"), \
            os.environ.get("SKILLC_REGISTRY_PASSWORD")
        scheme = self._scheme()
        self.client = oras.provider.Registry(hostname=host, insecure=insecure,
                                             auth_backend=scheme)
        if user and password:
            self.client.auth.set_basic_auth(user, password)
        else:  # the docker config, honouring DOCKER_CONFIG as docker does
            folder = os.environ.get("DOCKER_CONFIG")
            self.client.auth.load_configs(self.client.get_container(f"{host}/probe"),
                                          configs=[f"{folder}/config.json"] if folder else None)
        # oras retries a failing request for minutes; a registry that wants a password we do
        # not have is better told at once.
        if scheme == "basic" and not getattr(self.client.auth, "_basic_auth", None):
            raise RegistryError(f"{host} requires a user name and password"
                                + self._auth_hint("Unauthorized"))

    def _scheme(self) -> str:
        """basic for registries that ask for it (registry:2 with htpasswd), token otherwise."""
        try:
            response = requests.get(f"{self.prefix}://{self.host}/v2/", timeout=30)
        except requests.RequestException as exc:
            raise RegistryError(f"cannot reach the registry {self.host}: {exc}") from exc
        challenge = response.headers.get("Www-Authenticate", "")
        return "basic" if challenge.lower().startswith("basic") else "token"

    def push(self, ref: Ref, config: tuple[bytes, str], layers: list[tuple[bytes, str, str]],
             annotations: dict[str, str]) -> None:
        """Upload blobs and a manifest; layers are (data, media type, title)."""
        with tempfile.TemporaryDirectory(prefix="skillc-push-") as tmp:
            files = []
            for data, media, title in layers:
                path = Path(tmp) / title
                path.write_bytes(data)
                files.append(f"{path}:{media}")
            cfg = Path(tmp) / "config.json"
            cfg.write_bytes(config[0])
            self._call(lambda: self.client.push(
                str(ref), files=files, manifest_config=f"{cfg}:{config[1]}",
                manifest_annotations=annotations, disable_path_validation=True, quiet=True), ref)

    def manifest(self, ref: Ref) -> dict[str, Any] | None:
        """The manifest, or None when the tag does not exist."""
        url = f"{self.prefix}://{self.host}/v2/{ref.repository}/manifests/{ref.tag}"
        response = self._call(lambda: self.client.do_request(url, "GET", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json"}), ref)
        if response.status_code == 404:
            return None
        self._raise_for(response, ref)
        manifest: dict[str, Any] = response.json()
        return manifest

    def blob(self, ref: Ref, descriptor: dict[str, Any]) -> Blob:
        """Download one blob and check it against its descriptor."""
        digest = str(descriptor.get("digest", ""))
        response = self._call(lambda: self.client.get_blob(f"{self.host}/{ref.repository}", digest),
                              ref)
        self._raise_for(response, ref)
        data = response.content
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest or len(data) != descriptor.get("size", len(data)):
            raise CorruptionError(f"{ref}: blob {digest} does not match its digest (got {actual}); "
                                  "refusing it")
        return Blob(descriptor, data)

    def fetch(self, ref: Ref) -> tuple[dict[str, Any], Blob, list[Blob]]:
        """Manifest, config and layers, every blob verified."""
        manifest = self.manifest(ref)
        if manifest is None:
            raise RegistryError(f"{ref}: not found in the registry")
        config = self.blob(ref, manifest["config"])
        return manifest, config, [self.blob(ref, d) for d in manifest.get("layers", [])]

    def _call(self, fn: Any, ref: Ref) -> Any:
        try:
            return fn()
        except requests.RequestException as exc:
            raise RegistryError(f"cannot reach the registry {self.host}: {exc}") from exc
        except ValueError as exc:  # oras reports HTTP failures this way
            raise RegistryError(f"{ref}: the registry refused the request: {exc}"
                                + self._auth_hint(str(exc))) from exc

    def _raise_for(self, response: requests.Response, ref: Ref) -> None:
        if response.status_code in (401, 403):
            raise RegistryError(f"{ref}: access denied (HTTP {response.status_code})"
                                + self._auth_hint("Unauthorized"))
        if response.status_code >= 400:
            raise RegistryError(f"{ref}: HTTP {response.status_code} {response.reason}")

    @staticmethod
    def _auth_hint(text: str) -> str:
        if "Unauthorized" in text or "401" in text or "403" in text:
            return ("; set SKILLC_REGISTRY_USER and SKILLC_REGISTRY_PASSWORD, or `docker login` "
                    "to the registry")
        return ""
