"""The architectures' error type: a switch, combination or database setting the user can fix."""


class ArchitectureError(Exception):
    """Unknown switch or value, a refused combination, an unusable PostgreSQL server."""
