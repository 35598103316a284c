"""User-facing simulation errors (printed by the CLI without a traceback)."""


class SimulationError(Exception):
    """The hardware cannot run the mapped network (e.g. buffers too small, deadlock)."""


class RunFailure(Exception):
    """The run failed because of its environment, not its input: a worker process died, the
    disk filled up, a results folder could not be written. The CLI prints the message
    without a traceback and exits with status 1 (bad input exits with 2)."""
