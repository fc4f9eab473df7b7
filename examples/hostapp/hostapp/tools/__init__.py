"""Tools: each module here with a ``create`` factory is a ``/command``."""
