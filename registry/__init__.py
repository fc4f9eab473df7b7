"""skillc's registry: a content-addressed object store and a SQLite index."""
