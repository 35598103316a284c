"""Errors raised by the workload package."""


class WorkloadError(Exception):
    """A user-facing workload problem (bad model name, unsupported op, missing weights...).

    The CLI prints the message without a traceback.
    """
