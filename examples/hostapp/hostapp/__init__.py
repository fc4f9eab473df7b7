"""hostapp: a small assistant host. Channels, tools and memory are plugins.

A plugin is a module in ``hostapp/channels/``, ``hostapp/tools/`` or
``hostapp/memory/`` (or an entry point in the group ``hostapp.channels``,
``hostapp.tools`` or ``hostapp.memory``) that defines
``create(config: dict, env: Mapping[str, str])``. Adding an integration is
therefore adding a file and, if it needs settings, a table in hostapp.toml.
"""

__version__ = "0.3.0"
