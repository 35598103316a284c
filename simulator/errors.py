"""User-facing simulation errors (printed by the CLI without a traceback)."""


class SimulationError(Exception):
    """The hardware cannot run the mapped network (e.g. buffers too small, deadlock)."""
