"""Tables of the exact crossbar mode's ADC sweeps (configs/studies/redy/exact-adc-*.yaml).

Usage::

    redysim sweep configs/studies/redy/exact-adc-bits.yaml -o results/exact-adc-bits
    redysim sweep configs/studies/redy/exact-adc-rows.yaml -o results/exact-adc-rows
    .venv/bin/python bench/exact_adc_tables.py results/exact-adc-bits results/exact-adc-rows

Reads each sweep's ``sweep.csv`` and prints, as Markdown:

1. ADC bits × policy (× flip encoding): top-1 (%) over the measured test images, and the
   mean dynamic energy per image (µJ, over the same images);
2. per crossbar row count and policy: the resolution that never clips (``hw.adc_bits_needed``),
   the fewest ADC bits from which on every resolution keeps the policy's top-1 within
   ``--budget`` points (default 0.5) of the static pipeline's at the never-clip resolution,
   and the energy per image saved there against the never-clip resolution (whole chip and
   ADC alone).

``--csv`` prints the rows behind both tables (the data of their plots) instead.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

POLICIES = ("static", "msb-trim", "redy")


def read(folder: Path) -> list[dict[str, str]]:
    """Rows of a sweep's table (ok points only)."""
    path = folder / "sweep.csv"
    if not path.is_file():
        sys.exit(f"{path}: not found (run the sweep first)")
    with path.open() as f:
        return [r for r in csv.DictReader(f) if r.get("status") == "ok"]


def energy_uj(r: dict[str, str]) -> float:
    """Mean dynamic energy per measured image, µJ."""
    return float(r["spread.dynamic_energy_pj.mean"]) / 1e6


def adc_uj(r: dict[str, str]) -> float:
    """ADC energy per simulated image, µJ."""
    return float(r["energy_pj.by_component.adc"]) / float(r["images"]) / 1e6


def bits_table(rows: list[dict[str, str]]) -> list[str]:
    """Markdown: ADC bits × (flip, policy) → top-1 and energy."""
    cell: dict[tuple[int, str, str], dict[str, str]] = {}
    for r in rows:
        cell[(int(r["adc_bits"]), r.get("flip", ""), r["pipeline"])] = r
    flips = sorted({k[1] for k in cell}, reverse=True)
    cols = [(f, p) for f in flips for p in POLICIES]
    head = "| ADC bits | " + " | ".join(
        f"{p} ({'flip' if f == 'True' else 'no flip'})" for f, p in cols) + " |"
    out = [head, "|---" * (len(cols) + 1) + "|"]
    for b in sorted({k[0] for k in cell}):
        vals = []
        for f, p in cols:
            r = cell.get((b, f, p))
            vals.append(f"{float(r['accuracy']):.2f} % / {energy_uj(r):.2f} µJ" if r else "—")
        out.append(f"| {b} | " + " | ".join(vals) + " |")
    return out


def fewest_bits(rows: list[dict[str, str]], budget: float) -> list[str]:
    """Markdown: per rows and policy, the fewest ADC bits within the budget."""
    by: dict[tuple[int, str], dict[int, dict[str, str]]] = defaultdict(dict)
    for r in rows:
        by[(int(r["rows"]), r["pipeline"])][int(r["adc_bits"])] = r
    out = ["| rows | policy | never-clip bits | reference top-1 | fewest bits within "
           f"{budget:g} points | top-1 there | energy / image (µJ): never-clip → fewest | "
           "saved | ADC energy saved |", "|---" * 9 + "|"]
    for n_rows in sorted({k[0] for k in by}):
        static = by.get((n_rows, "static"), {})
        any_row = next(iter(static.values()))
        need = int(float(any_row["hw.adc_bits_needed"]))
        if need not in static:
            out.append(f"| {n_rows} | — | {need} | not swept | | | | | |")
            continue
        ref = float(static[need]["accuracy"])
        for pol in POLICIES:
            pts = by.get((n_rows, pol), {})
            if need not in pts:
                continue
            ok = sorted(b for b in pts if float(pts[b]["accuracy"]) >= ref - budget)
            # the fewest bits from which every larger resolution also holds the budget
            fewest = need
            for b in sorted(pts, reverse=True):
                if b in ok:
                    fewest = b
                else:
                    break
            r0, r1 = pts[need], pts[fewest]
            e0, e1 = energy_uj(r0), energy_uj(r1)
            a0, a1 = adc_uj(r0), adc_uj(r1)
            out.append(
                f"| {n_rows} | {pol} | {need} | {ref:.2f} % | {fewest} | "
                f"{float(r1['accuracy']):.2f} % | {e0:.3f} → {e1:.3f} | "
                f"{100 * (1 - e1 / e0):.1f} % | {a0:.3f} → {a1:.3f} µJ "
                f"({100 * (1 - a1 / a0):.1f} %) |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bits", type=Path, help="results folder of exact-adc-bits.yaml")
    ap.add_argument("rows", type=Path, nargs="?", help="results folder of exact-adc-rows.yaml")
    ap.add_argument("--budget", type=float, default=0.5, help="accuracy budget, points")
    ap.add_argument("--csv", action="store_true", help="print the rows behind the tables")
    args = ap.parse_args()
    tables = [(args.bits, bits_table)]
    if args.rows is not None:
        tables.append((args.rows, lambda rows: fewest_bits(rows, args.budget)))
    for folder, fn in tables:
        rows = read(folder)
        if args.csv:
            keys = [k for k in ("flip", "rows", "adc_bits", "pipeline", "accuracy",
                                "spread.dynamic_energy_pj.mean", "energy_pj.by_component.adc",
                                "mean_bits_per_group", "hw.adc_bits_needed") if k in rows[0]]
            w = csv.DictWriter(sys.stdout, keys, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        else:
            print("\n".join(fn(rows)))
        print()


if __name__ == "__main__":
    main()
