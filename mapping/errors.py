"""User-facing mapping errors."""


class MappingError(Exception):
    """A network cannot be mapped as requested (message is shown to the user as is)."""
