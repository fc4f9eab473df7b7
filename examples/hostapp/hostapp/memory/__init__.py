"""Memory backends: each module here with a ``create`` factory is one."""
