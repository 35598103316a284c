"""Command line: ``redysim run | map | hw | tune | plot | sweep | study | cache``."""

from __future__ import annotations

import argparse
import os
import sys

from simulator.core.config_io import ConfigError
from simulator.core.errors import RunFailure
from simulator.core.interrupts import Interrupted, handle_signals


def _user_errors() -> tuple[type[BaseException], ...]:
    from mapping.errors import MappingError
    from simulator.core.errors import SimulationError
    from workloads.errors import WorkloadError

    return (ConfigError, MappingError, WorkloadError, SimulationError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``redysim``: one sub-command per module of this package."""
    from simulator.cli.cache import add_cache_parser
    from simulator.cli.hw import add_hw_parser
    from simulator.cli.map import add_map_parser
    from simulator.cli.plot import add_plot_parser
    from simulator.cli.run import add_run_parser
    from simulator.cli.study import add_study_parser
    from simulator.cli.sweep import add_sweep_parser
    from simulator.cli.tune import add_tune_parser

    p = argparse.ArgumentParser(prog="redysim", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for add in (add_run_parser, add_map_parser, add_hw_parser, add_tune_parser,
                add_plot_parser, add_sweep_parser, add_study_parser, add_cache_parser):
        add(sub)
    return p


#: exit statuses (docs/robustness.md): 0 done, 1 the run failed (a worker died, the disk
#: filled up), 2 bad input or a refused run, 128 + N stopped by signal N (130 SIGINT,
#: 143 SIGTERM, 129 SIGHUP)
EXIT_FAILURE, EXIT_BAD_INPUT = 1, 2


def _quick_exit(code: int, argv: list[str] | None) -> int:
    """After an interrupt or an error, leave at once when run as the console script.

    Every ``finally`` block has run by now (workers reaped, staging folders removed);
    what is left is the interpreter's teardown of torch and friends, which takes 1-3 s
    on a loaded machine. ``main(argv)`` called from Python returns the code instead.
    """
    if argv is not None:
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``redysim`` console script.

    Every command runs under :func:`simulator.core.interrupts.handle_signals`: a signal stops
    it with one line on stderr and exit status 128 + N, after the ``finally`` blocks
    have killed the worker processes and removed the staging folders.
    """
    with handle_signals():
        try:
            args = build_parser().parse_args(argv)
            for opt in ("images", "trace_sample"):
                if getattr(args, opt, None) is not None and getattr(args, opt) < 1:
                    print(f"redysim: --{opt.replace('_', '-')}: must be >= 1", file=sys.stderr)
                    return EXIT_BAD_INPUT
            code = int(args.func(args) or 0)
            # a command that caught a signal itself (sweep, study) has cleaned up and said
            # its one line: leave as quickly as after any other interrupt
            return _quick_exit(code, argv) if code >= 128 else code
        except Interrupted as exc:
            print(f"redysim: {exc}; stopped, nothing written", file=sys.stderr)
            return _quick_exit(exc.exit_code, argv)
        except KeyboardInterrupt:  # Ctrl-C before the handlers were in place
            print("redysim: interrupted by SIGINT; stopped, nothing written",
                  file=sys.stderr)
            return _quick_exit(130, argv)
        except RunFailure as exc:
            print(f"redysim: error: {exc}", file=sys.stderr)
            return _quick_exit(EXIT_FAILURE, argv)
        except OSError as exc:  # the environment, not a bug: a disk, a permission
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            print(f"redysim: error: {exc.strerror or exc}{where}", file=sys.stderr)
            return _quick_exit(EXIT_FAILURE, argv)
        except _user_errors() as exc:
            print(f"redysim: error: {exc}", file=sys.stderr)
            return _quick_exit(EXIT_BAD_INPUT, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
