"""What every newsray process shares: settings, services, the database, Redis keys, the CLI."""

__version__ = "0.1.0"
