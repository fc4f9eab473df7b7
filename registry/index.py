"""The SQLite index: specs (with full-text search), builds, signatures.

WAL mode and a busy timeout let several skillc processes share one registry;
each operation is one ``BEGIN IMMEDIATE`` transaction. The schema evolves by the
numbered migrations in ``migrations.py``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from compiler.errors import ConflictError, NotFoundError, RegistryError

from .migrations import MIGRATIONS

BUSY_TIMEOUT_S = 60


@dataclass(frozen=True)
class SpecRow:
    """A published spec version."""

    name: str
    version: str
    digest: str
    description: str
    published_at: float
    yanked: bool = False
    forked_from: dict[str, Any] | None = None


@dataclass(frozen=True)
class BuildRow:
    """One build, cached or failed; the digests name objects in the store."""

    id: str
    key: str
    spec_name: str
    spec_version: str | None
    spec_digest: str
    deployment: str
    deployment_digest: str
    status: str  # "passed" | "failed"
    agent: str
    model: str | None
    sandbox: str
    base_tree: str | None
    output_tree: str | None
    manifest: str | None
    transcript: str | None
    report: str | None
    prompt: str | None
    usage: dict[str, Any]
    timings: dict[str, Any]
    error: str | None
    created_at: float

    def objects(self) -> list[str]:
        """Digests this build refers to."""
        return [d for d in (self.base_tree, self.output_tree, self.manifest, self.transcript,
                            self.report, self.prompt) if d]


class Index:
    """One SQLite database."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                      check_same_thread=False)
            self._wal()
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise RegistryError(f"{path}: cannot open the registry index: {exc}") from exc

    def _wal(self) -> None:
        """Switch to WAL; the switch can report 'locked' at once (no busy handler) while
        another process creates the same database, so retry it for the busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taken at once, so writers queue instead of deadlocking)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise RegistryError(f"the registry index is busy: {exc}") from exc
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
        with self.transaction() as db:
            done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
            for number, sql in enumerate(MIGRATIONS, 1):
                if number in done:
                    continue
                for statement in (s for s in sql.split(";") if s.strip()):
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, time.time()))

    @property
    def schema_version(self) -> int:
        """The newest applied migration."""
        return int(self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0])

    # -- specs -------------------------------------------------------------

    def add_spec(self, row: SpecRow, body: str) -> bool:
        """Record a published version; False when it was already there with the same digest."""
        with self.transaction() as db:
            old = db.execute("SELECT digest FROM specs WHERE name = ? AND version = ?",
                             (row.name, row.version)).fetchone()
            if old:
                if old[0] != row.digest:
                    raise ConflictError(f"{row.name}@{row.version} is already published with other "
                                        f"content ({old[0]}); versions are immutable, bump the "
                                        "version")
                return False
            cur = db.execute("INSERT INTO specs VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (row.name, row.version, row.digest, row.description, row.published_at,
                              int(row.yanked), json.dumps(row.forked_from) if row.forked_from
                              else None))
            db.execute("INSERT INTO specs_fts(rowid, name, description, body) VALUES (?, ?, ?, ?)",
                       (cur.lastrowid, row.name, row.description, body))
            return True

    def _spec(self, r: tuple[Any, ...]) -> SpecRow:
        return SpecRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), json.loads(r[6]) if r[6] else None)

    def versions(self, name: str, include_yanked: bool = True) -> list[SpecRow]:
        """Every version of a spec, oldest first."""
        rows = [self._spec(r) for r in self.db.execute(
            "SELECT * FROM specs WHERE name = ? ORDER BY published_at", (name,))]
        return [r for r in rows if include_yanked or not r.yanked]

    def spec(self, name: str, version: str) -> SpecRow:
        """One version."""
        r = self.db.execute("SELECT * FROM specs WHERE name = ? AND version = ?",
                            (name, version)).fetchone()
        if r is None:
            raise NotFoundError(f"{name}@{version} is not published in this registry")
        return self._spec(r)

    def yank(self, name: str, version: str, yanked: bool = True) -> None:
        """Hide a version from resolution without deleting it."""
        with self.transaction() as db:
            if db.execute("UPDATE specs SET yanked = ? WHERE name = ? AND version = ?",
                          (int(yanked), name, version)).rowcount == 0:
                raise NotFoundError(f"{name}@{version} is not published in this registry")

    def search(self, query: str, limit: int = 50) -> list[SpecRow]:
        """Specs whose name, description or body match (newest version of each)."""
        terms = " ".join('"' + t.replace('"', '""') + '"' for t in query.split())
        if not terms:
            return []
        rows = self.db.execute(
            "SELECT specs.* FROM specs_fts JOIN specs ON specs.rowid = specs_fts.rowid "
            "WHERE specs_fts MATCH ? AND specs.yanked = 0 ORDER BY bm25(specs_fts) LIMIT ?",
            (terms, limit * 5)).fetchall()
        seen: dict[str, SpecRow] = {}
        for r in rows:
            seen.setdefault(r[0], self._spec(r))
        return list(seen.values())[:limit]

    def all_specs(self) -> list[SpecRow]:
        """Every published version."""
        return [self._spec(r) for r in self.db.execute("SELECT * FROM specs ORDER BY name")]

    # -- signatures --------------------------------------------------------

    def add_signature(self, digest: str, key_id: str, signature: str, public_key: str) -> None:
        """Attach a signature to a spec digest (idempotent)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO signatures VALUES (?, ?, ?, ?, ?)",
                       (digest, key_id, signature, public_key, time.time()))

    def signatures(self, digest: str) -> list[dict[str, str]]:
        """Signatures over a digest."""
        return [{"key_id": r[0], "signature": r[1], "public_key": r[2]} for r in self.db.execute(
            "SELECT key_id, signature, public_key FROM signatures WHERE digest = ?", (digest,))]

    # -- pins --------------------------------------------------------------

    def set_pins(self, owner: str, digests: set[str]) -> None:
        """Replace what ``owner`` (a fork's lock) keeps alive in the store."""
        with self.transaction() as db:
            db.execute("DELETE FROM pins WHERE owner = ?", (owner,))
            db.executemany("INSERT INTO pins VALUES (?, ?)", [(owner, d) for d in sorted(digests)])

    def pinned(self) -> set[str]:
        """Every pinned digest."""
        return {r[0] for r in self.db.execute("SELECT DISTINCT digest FROM pins")}

    # -- builds ------------------------------------------------------------

    def add_build(self, row: BuildRow) -> None:
        """Record a build."""
        values = [getattr(row, f.name) for f in fields(BuildRow)]
        values = [json.dumps(v) if isinstance(v, dict) else v for v in values]
        with self.transaction() as db:
            db.execute(f"INSERT INTO builds VALUES ({', '.join('?' * len(values))})", values)

    def _build(self, r: tuple[Any, ...]) -> BuildRow:
        data = dict(zip([f.name for f in fields(BuildRow)], r, strict=True))
        data["usage"], data["timings"] = json.loads(data["usage"]), json.loads(data["timings"])
        return BuildRow(**data)

    def build_by_key(self, key: str) -> BuildRow | None:
        """The newest passed build with this key (the cache)."""
        r = self.db.execute("SELECT * FROM builds WHERE key = ? AND status = 'passed' "
                            "ORDER BY created_at DESC LIMIT 1", (key,)).fetchone()
        return self._build(r) if r else None

    def build(self, build_id: str) -> BuildRow:
        """A build by id, unique id prefix, or ``latest``."""
        if build_id == "latest":
            newest = self.builds(limit=1)
            if not newest:
                raise NotFoundError("there are no builds in this registry yet")
            return newest[0]
        rows = self.db.execute("SELECT * FROM builds WHERE id LIKE ? LIMIT 2",
                               (build_id.replace("%", "") + "%",)).fetchall()
        if not rows:
            raise NotFoundError(f"no build {build_id!r} in this registry")
        if len(rows) > 1:
            raise NotFoundError(f"build id {build_id!r} is ambiguous; give more characters")
        return self._build(rows[0])

    def builds(self, deployment: str | None = None, skill: str | None = None,
               limit: int = 100) -> list[BuildRow]:
        """Builds, newest first, optionally for one deployment and/or skill."""
        sql, args = "SELECT * FROM builds WHERE 1=1", list[str]()
        if deployment:
            sql, args = sql + " AND deployment = ?", [*args, deployment]
        if skill:
            sql, args = sql + " AND spec_name = ?", [*args, skill]
        rows = self.db.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))
        return [self._build(r) for r in rows]

    def all_builds(self) -> Iterator[BuildRow]:
        """Every build."""
        for r in self.db.execute("SELECT * FROM builds"):
            yield self._build(r)
