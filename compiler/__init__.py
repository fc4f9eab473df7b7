"""skillc: compile skill specifications into integrations fitted to each deployment."""

__version__ = "0.1.0"
