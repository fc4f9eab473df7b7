"""Numbered schema migrations of the index. Append only; never edit a released one."""

MIGRATIONS: list[str] = [
    # 1: specs, full-text search over them, builds.
    """
    CREATE TABLE specs (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        digest TEXT NOT NULL,
        description TEXT NOT NULL,
        published_at REAL NOT NULL,
        yanked INTEGER NOT NULL DEFAULT 0,
        forked_from TEXT,
        PRIMARY KEY (name, version)
    );
    CREATE VIRTUAL TABLE specs_fts USING fts5(name, description, body);
    CREATE TABLE builds (
        id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        spec_name TEXT NOT NULL,
        spec_version TEXT,
        spec_digest TEXT NOT NULL,
        deployment TEXT NOT NULL,
        deployment_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        agent TEXT NOT NULL,
        model TEXT,
        sandbox TEXT NOT NULL,
        base_tree TEXT,
        output_tree TEXT,
        manifest TEXT,
        transcript TEXT,
        report TEXT,
        prompt TEXT,
        usage TEXT NOT NULL,
        timings TEXT NOT NULL,
        error TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX builds_by_key ON builds(key, status, created_at);
    CREATE INDEX builds_by_deployment ON builds(deployment, spec_name, created_at);
    """,
    # 2: signatures travel with specs.
    """
    CREATE TABLE signatures (
        digest TEXT NOT NULL,
        key_id TEXT NOT NULL,
        signature TEXT NOT NULL,
        public_key TEXT NOT NULL,
        added_at REAL NOT NULL,
        PRIMARY KEY (digest, key_id)
    );
    """,
    # 3: list a deployment's or a skill's builds newest first without sorting them all.
    """
    CREATE INDEX builds_by_deployment_time ON builds(deployment, created_at);
    CREATE INDEX builds_by_skill_time ON builds(spec_name, created_at);
    """,
    # 4: objects a fork's skillc.lock refers to (applied and original file contents).
    """
    CREATE TABLE pins (
        owner TEXT NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (owner, digest)
    );
    """,
]
