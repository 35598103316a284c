"""``redysim cache [info | trim --max-size SIZE | clear] [--cache DIR]``: the artifact cache.

A run stores the traced network, the activation scales and the bit planes in the artifact
cache (``$REDYSIM_CACHE/artifacts`` or the platform cache folder's) and never trims it.
``info`` lists what it holds per kind; ``trim`` removes the least recently used entries
until it fits *SIZE*; ``clear`` removes every entry (asks first, or ``--yes``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.core.config_io import ConfigError


def add_cache_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``cache`` sub-command on *sub* (the subparsers of redysim's parser)."""
    c = sub.add_parser("cache", help="show what the artifact cache holds, trim or clear it")
    c.add_argument("action", nargs="?", default="info", choices=["info", "trim", "clear"],
                   help="info (default): entries and sizes per kind; trim: remove the "
                        "least recently used entries until the cache fits --max-size; "
                        "clear: remove every entry")
    c.add_argument("--max-size", dest="max_size", metavar="SIZE",
                   help="trim: the size to keep at most, e.g. 2GB, 500MB (decimal units; "
                        "GiB, MiB binary)")
    c.add_argument("--cache", metavar="DIR",
                   help="artifact cache folder, as 'redysim run --cache' takes it (default: "
                        "$REDYSIM_CACHE/artifacts or the platform cache folder's)")
    c.add_argument("--yes", action="store_true", help="clear without asking")
    c.set_defaults(func=cmd_cache)
    return c


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _date(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def cmd_cache(args: argparse.Namespace) -> int:
    """Show, trim or clear the artifact cache."""
    from simulator.runner.cache import ArtifactCache
    from simulator.runner.cache_usage import parse_size, trim, usage

    root = Path(args.cache) if args.cache else ArtifactCache().root
    if args.max_size is not None and args.action != "trim":
        raise ConfigError("--max-size: only 'redysim cache trim' takes a size")
    if args.action == "info":
        per = usage(root)
        print(f"artifact cache: {root}" + ("" if root.is_dir() else " (does not exist yet)"))
        for kind, u in per.items():
            print(f"  {kind:<16} {int(u['entries']):>5} entries  {_mb(u['bytes']):>12}  "
                  f"last used {_date(u['oldest'])} .. {_date(u['newest'])}")
        print(f"  {'total':<16} {sum(int(u['entries']) for u in per.values()):>5} entries  "
              f"{_mb(sum(u['bytes'] for u in per.values())):>12}")
        return 0
    if args.action == "trim":
        if args.max_size is None:
            raise ConfigError("redysim cache trim: --max-size is required (e.g. --max-size "
                              "2GB; 'redysim cache clear' removes everything)")
        keep = parse_size(args.max_size)
    else:
        keep = 0
        per = usage(root)
        n, size = sum(int(u["entries"]) for u in per.values()), sum(
            u["bytes"] for u in per.values())
        if n and not args.yes:
            if not sys.stdin.isatty():
                print(f"redysim: cache clear: would remove {n} entries ({_mb(size)}) from "
                      f"{root}; pass --yes to do so without a terminal", file=sys.stderr)
                return 2
            answer = input(f"Remove {n} entries ({_mb(size)}) from {root}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing removed")
                return 0
    rep = trim(root, keep)
    print(f"removed {rep.removed} entries ({_mb(rep.removed_bytes)}); kept {rep.kept} "
          f"({_mb(rep.kept_bytes)})"
          + (f"; {rep.busy} in use by a running process, left" if rep.busy else ""))
    return 0
