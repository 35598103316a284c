"""Retrain one of the networks redysim trains itself and write its state dict.

    python -m workloads.trained.train digits -o digits_cnn.pt
    python -m workloads.trained.train resnet-digits -o resnet_digits.pt

Trains with the recipe of :func:`workloads.trained.digits.train_digits_cnn` or
:func:`workloads.trained.resnet_digits.train_resnet_digits` (seeded, one thread,
deterministic algorithms), writes the state dict (bytes independent of the file's name),
and prints the float top-1 on the 450 test images, the CPU time and the file's SHA-256.
On the machine that trained the committed weights, the command reproduces them bit for
bit; elsewhere it gives other weights of about the same accuracy (workloads/trained/
weights/README.md). To replace the committed weights, write into
``workloads/trained/weights/`` and update ``SHA256SUMS`` there with the printed sum.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from workloads.errors import WorkloadError

NETWORKS = ("digits", "resnet-digits")


def train(name: str, verbose: bool = False):
    """(model, float top-1 % on the digits test part) of a fresh training of *name*."""
    from workloads.trained.digits import digits_split, evaluate, train_digits_cnn
    from workloads.trained.resnet_digits import train_resnet_digits, upsample_digits

    x, y = digits_split().test
    if name == "digits":
        model = train_digits_cnn(verbose=verbose)
        return model, evaluate(model, x, y)
    if name == "resnet-digits":
        model = train_resnet_digits(verbose=verbose)
        return model, evaluate(model, upsample_digits(x), y)
    raise WorkloadError(f"unknown network {name!r}; valid: {', '.join(NETWORKS)}")


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status."""
    from workloads.trained.store import save_state_atomic

    ap = argparse.ArgumentParser(prog="python -m workloads.trained.train",
                                 description="retrain a network redysim trains itself")
    ap.add_argument("network", choices=NETWORKS)
    ap.add_argument("-o", "--output", required=True, type=Path,
                    help="state dict file to write (replaced atomically)")
    ap.add_argument("--verbose", action="store_true", help="test accuracy after each epoch")
    args = ap.parse_args(argv)
    t0 = time.process_time()
    model, top1 = train(args.network, args.verbose)
    cpu = time.process_time() - t0
    digest = save_state_atomic(model, args.output)
    print(f"{args.network}: float top-1 {top1:.2f} % on the 450 test images; "
          f"{cpu:.1f} s CPU")
    print(f"{digest}  {args.output.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
