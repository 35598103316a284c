"""Energy ledger: every simulated activity booked as counts × per-event energy.

The engine registers *activity kinds* (e.g. "row-block MVM of layer conv1, row block 2")
with the number of hardware events each unit and each occurrence of the activity causes
(crossbar reads, DAC drives, ADC conversions, ...). It then records occurrences
``(t_start, t_end, kind, units)`` — for an MVM the units are bit planes. The ledger keeps
only aggregates: event counts per kind, energy per component per time bin, and busy time
per component class per time bin. Records are buffered and folded into those aggregates
with numpy every ``flush_every`` records, so memory stays bounded on large runs. A
component that books one record per MVM writes into a :class:`RecordChannel` of its own
(:meth:`EnergyLedger.channel`), whose rows the ledger folds at every flush.

Energy of an event = count × ``energies[event]`` (pJ), where the energies come from the
hardware YAML, so every reported figure traces back to a count and a YAML number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from simulator.hardware.schema import EVENT_COMPONENT

#: Hardware events booked by the engine, in ledger column order, and the component
#: (energy breakdown key) that each belongs to — defined once, with the hardware spec.
EVENTS: tuple[str, ...] = tuple(EVENT_COMPONENT)
EVENT_INDEX: dict[str, int] = {e: i for i, e in enumerate(EVENTS)}
COMPONENTS: tuple[str, ...] = tuple(dict.fromkeys(EVENT_COMPONENT.values()))


def event_vector(counts: dict[str, float]) -> np.ndarray:
    """Dense vector over EVENTS from a sparse {event: count} mapping."""
    v = np.zeros(len(EVENTS))
    for name, c in counts.items():
        v[EVENT_INDEX[name]] += c
    return v


@dataclass
class ActivityKind:
    """What one occurrence of an activity costs.

    ``per_unit`` events are multiplied by the occurrence's units (bit planes for an MVM),
    ``per_occurrence`` events are booked once per occurrence. ``busy`` maps a component
    class (e.g. "digital") to how many of its instances the activity holds for its whole
    duration; ``busy_per_unit`` maps a class (e.g. "crossbar", "adc") to the busy
    instance-time (ns) each unit causes — for a lane MVM, planes × reads or conversions —
    spread evenly over the occurrence's interval.
    """

    name: str
    layer: str
    per_unit: np.ndarray
    per_occurrence: np.ndarray
    busy: dict[str, float] = field(default_factory=dict)
    busy_per_unit: dict[str, float] = field(default_factory=dict)


class RecordChannel:
    """A component's own buffer of records for a ledger (:meth:`EnergyLedger.channel`).

    ``append((t0, t1, kind, units))`` is a plain list append, for engines that book one
    record per MVM: one occurrence, busy scale 1 (:meth:`EnergyLedger.record`'s defaults).
    The ledger folds the rows at its next flush (every ``flush_every`` records booked
    through :meth:`EnergyLedger.record`, and before every query).
    """

    __slots__ = ("append", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, int, float]] = []
        self.append = self.rows.append

    def take(self) -> list[tuple[float, float, int, float]]:
        """The rows booked since the last call (the channel starts empty again)."""
        rows = self.rows[:]
        self.rows.clear()  # in place: ``append`` stays bound to this list
        return rows


class EnergyLedger:
    """Aggregating ledger of counts, energy and busy time (see module docstring)."""

    def __init__(
        self,
        energies_pj: dict[str, float],
        bin_ns: float,
        busy_classes: Sequence[str],
        flush_every: int = 65536,
        max_bins: int = 1 << 14,
    ) -> None:
        missing = [e for e in EVENTS if e not in energies_pj]
        if missing:
            raise ValueError(f"energy table lacks events {missing}")
        self.energy = np.array([energies_pj[e] for e in EVENTS], dtype=float)
        self.bin_ns = float(bin_ns)
        self.busy_classes = list(busy_classes)
        self.flush_every = flush_every
        self.max_bins = max_bins
        self.kinds: list[ActivityKind] = []
        self._buf: list[tuple[float, float, int, float, float, float]] = []
        self._channels: list[RecordChannel] = []
        # aggregates
        self._units = np.zeros(0)
        self._occ = np.zeros(0)
        self._energy_bins = np.zeros((len(COMPONENTS), 0))
        self._busy_bins = np.zeros((len(self.busy_classes), 0))
        self._comp_of_event = np.array([COMPONENTS.index(EVENT_COMPONENT[e]) for e in EVENTS])
        self.static_pj: dict[str, float] = {}
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        self.end_ns = 0.0

    def set_bin(self, bin_ns: float) -> None:
        """Choose the time-bin width (only before anything is recorded)."""
        if self._buf or any(c.rows for c in self._channels) or self._energy_bins.shape[1]:
            raise RuntimeError("the bin width can only change before recording")
        self.bin_ns = float(bin_ns)

    # -- registration -------------------------------------------------------------------
    def register(self, kind: ActivityKind) -> int:
        """Register an activity kind; returns its id for :meth:`record`."""
        for c in (*kind.busy, *kind.busy_per_unit):
            if c not in self.busy_classes:
                raise ValueError(f"unknown busy class {c!r}")
        self.kinds.append(kind)
        return len(self.kinds) - 1

    def _size_aggregates(self) -> None:
        """Grow the per-kind aggregates to the kinds registered so far."""
        n = len(self.kinds) - len(self._units)
        if n > 0:
            self._units = np.concatenate([self._units, np.zeros(n)])
            self._occ = np.concatenate([self._occ, np.zeros(n)])

    # -- recording ----------------------------------------------------------------------
    def record(self, t0: float, t1: float, kind: int, units: float = 1,
               occurrences: float = 1, busy_scale: float = 1.0) -> None:
        """Book *occurrences* of *kind* over [t0, t1] ns with *units* in total (bit planes).

        The event-driven engine books one occurrence at a time; the analytic mode books a
        whole layer at once, with ``busy_scale`` = busy time / (t1 - t0).
        """
        self._buf.append((t0, t1, kind, units, occurrences, busy_scale))
        if len(self._buf) >= self.flush_every:
            self.flush()

    def channel(self) -> RecordChannel:
        """A new :class:`RecordChannel` whose records this ledger folds at every flush."""
        ch = RecordChannel()
        self._channels.append(ch)
        return ch

    def add_static(self, component: str, energy_pj: float) -> None:
        """Book static (leakage) energy of a component for the whole run."""
        self.static_pj[component] = self.static_pj.get(component, 0.0) + energy_pj

    def _ensure_bins(self, n: int) -> None:
        cur = self._energy_bins.shape[1]
        if n > cur:
            grow = max(n, 2 * cur)
            self._energy_bins = np.pad(self._energy_bins, ((0, 0), (0, grow - cur)))
            self._busy_bins = np.pad(self._busy_bins, ((0, 0), (0, grow - cur)))

    def record_busy(self, t0: Sequence[float], t1: Sequence[float], kind: int) -> None:
        """Book many busy intervals of a busy-only *kind* at once (no occurrences)."""
        if not len(t0):
            return
        self.flush()
        n = len(t0)
        arr = np.empty((n, 6))
        arr[:, 0], arr[:, 1], arr[:, 2] = t0, t1, kind
        arr[:, 3], arr[:, 4], arr[:, 5] = 0.0, 0.0, 1.0
        self._fold(arr)

    def flush(self) -> None:
        """Fold buffered records into the aggregates."""
        self._size_aggregates()
        rows = self._buf[:]
        self._buf.clear()
        short: list[tuple[float, float, int, float]] = []  # the channels' rows
        for ch in self._channels:
            if ch.rows:
                short += ch.take()
        if not rows and not short:
            return
        # one array, the buffer's rows then the channels' (the order of the sums), each
        # from a flat iterator (twice as fast as from the list of tuples)
        arr = np.empty((len(rows) + len(short), 6))
        if rows:
            arr[:len(rows)] = np.fromiter(chain.from_iterable(rows), float,
                                          count=6 * len(rows)).reshape(-1, 6)
        if short:
            tail = arr[len(rows):]
            tail[:, :4] = np.fromiter(chain.from_iterable(short), float,
                                      count=4 * len(short)).reshape(-1, 4)
            tail[:, 4:] = 1.0  # one occurrence, busy scale 1
        self._fold(arr)

    def _fold(self, arr: np.ndarray) -> None:
        """Fold records (rows t0, t1, kind, units, occurrences, busy scale)."""
        self._size_aggregates()
        t0, t1, kind, units = arr[:, 0], arr[:, 1], arr[:, 2].astype(np.int64), arr[:, 3]
        occ, bscale = arr[:, 4], arr[:, 5]
        nk = len(self.kinds)
        self._units += np.bincount(kind, weights=units, minlength=nk)
        self._occ += np.bincount(kind, weights=occ, minlength=nk)
        self.end_ns = max(self.end_ns, float(t1.max()))
        while int(self.end_ns // self.bin_ns) + 2 > self.max_bins:
            self._coarsen()  # a long run: twice as wide bins, so memory stays bounded
        nbins = int(t1.max() // self.bin_ns) + 2
        self._ensure_bins(nbins)
        # energy per component, booked in the bin where the activity starts
        b0 = (t0 // self.bin_ns).astype(np.int64)
        per_unit_e = self._kind_component_energy("per_unit")
        per_occ_e = self._kind_component_energy("per_occurrence")
        # column by column, for the components some kind of these rows books at all (a
        # component whose energies are all zero books nothing): the same values as the
        # whole (rows x components) product, without its zero columns
        present = np.bincount(kind, minlength=nk) > 0  # the kinds of these rows
        for ci in range(len(COMPONENTS)):
            pu, po = per_unit_e[:, ci], per_occ_e[:, ci]
            if not (pu[present].any() or po[present].any()):
                continue
            w = units * pu[kind] + occ * po[kind]
            if w.any():
                self._energy_bins[ci, : nbins] += np.bincount(b0, weights=w, minlength=nbins)[
                    :nbins
                ]
        # busy time spread exactly over the bins each interval overlaps
        dur = t1 - t0
        for bi, cls in enumerate(self.busy_classes):
            b_unit = self._busy_mult(cls, "busy_per_unit")
            b_occ = self._busy_mult(cls, "busy")
            # only the rows of kinds that keep this class busy at all (the others have a
            # zero multiplier): the same values, on fewer rows
            rows = ((b_unit != 0) | (b_occ != 0))[kind]
            if not rows.any():
                continue
            k, sc, d = kind[rows], bscale[rows], dur[rows]
            per_unit = b_unit[k] * units[rows] * sc
            mult = b_occ[k] * sc
            mult = mult + np.divide(per_unit, d, out=np.zeros_like(d), where=d > 0)
            sel = mult > 0
            if sel.any():
                self._busy_bins[bi, :nbins] += _spread(t0[rows][sel], t1[rows][sel], mult[sel],
                                                       self.bin_ns, nbins)

    def _coarsen(self) -> None:
        """Double the bin width, merging the bins recorded so far pairwise."""
        pad = self._energy_bins.shape[1] % 2
        e = np.pad(self._energy_bins, ((0, 0), (0, pad)))
        b = np.pad(self._busy_bins, ((0, 0), (0, pad)))
        self._energy_bins = e.reshape(e.shape[0], -1, 2).sum(axis=2)
        self._busy_bins = b.reshape(b.shape[0], -1, 2).sum(axis=2)
        self.bin_ns *= 2.0

    def _kind_component_energy(self, attr: str) -> np.ndarray:
        """(kinds × components) energy in pJ of one unit / one occurrence of each kind."""
        key = (attr, len(self.kinds))
        if key in self._cache:
            return self._cache[key]
        m = np.array([getattr(k, attr) for k in self.kinds]) * self.energy[None, :]
        out = np.zeros((len(self.kinds), len(COMPONENTS)))
        for ei, ci in enumerate(self._comp_of_event):
            out[:, ci] += m[:, ei]
        self._cache[key] = out
        return out

    def _busy_mult(self, cls: str, attr: str) -> np.ndarray:
        key = (f"{attr}:{cls}", len(self.kinds))
        if key not in self._cache:
            self._cache[key] = np.array([getattr(k, attr).get(cls, 0.0) for k in self.kinds])
        return self._cache[key]

    # -- queries ------------------------------------------------------------------------
    def counts_by_kind(self) -> np.ndarray:
        """(kinds × EVENTS) event counts."""
        self.flush()
        if not self.kinds:
            return np.zeros((0, len(EVENTS)))
        per_unit = np.array([k.per_unit for k in self.kinds])
        per_occ = np.array([k.per_occurrence for k in self.kinds])
        return self._units[:, None] * per_unit + self._occ[:, None] * per_occ

    def occurrences_by_kind(self) -> np.ndarray:
        """Number of recorded occurrences of every kind."""
        self.flush()
        return self._occ.copy()

    def units_by_kind(self) -> np.ndarray:
        """Sum of units (e.g. bit planes) of every kind."""
        self.flush()
        return self._units.copy()

    def event_counts(self) -> dict[str, float]:
        """Total count of every hardware event."""
        c = self.counts_by_kind().sum(axis=0)
        return {e: float(c[i]) for i, e in enumerate(EVENTS)}

    def component_energy(self, counts: np.ndarray) -> dict[str, float]:
        """Energy (pJ) per component of an event-count vector over EVENTS."""
        e = counts * self.energy
        out = {comp: 0.0 for comp in COMPONENTS}
        for ei, ev in enumerate(EVENTS):
            out[EVENT_COMPONENT[ev]] += float(e[ei])
        return out

    def energy_by_component(self) -> dict[str, float]:
        """Dynamic energy per component plus static energy, pJ."""
        out = self.component_energy(self.counts_by_kind().sum(axis=0))
        for comp, v in self.static_pj.items():
            out[f"static:{comp}"] = out.get(f"static:{comp}", 0.0) + v
        return out

    def counts_by_layer(self) -> dict[str, np.ndarray]:
        """Event counts (over EVENTS) per layer (graph node); busy-only kinds excluded."""
        counts = self.counts_by_kind()
        layers = list(dict.fromkeys(k.layer for k in self.kinds if k.layer))
        index = {name: i for i, name in enumerate(layers)}
        rows = np.array([index.get(k.layer, -1) for k in self.kinds], dtype=np.int64)
        out = np.zeros((len(layers), len(EVENTS)))
        sel = rows >= 0
        np.add.at(out, rows[sel], counts[sel])
        return {name: out[i] for i, name in enumerate(layers)}

    def energy_by_layer(self) -> dict[str, float]:
        """Dynamic energy per layer (graph node), pJ."""
        return {name: float(c @ self.energy) for name, c in self.counts_by_layer().items()}

    def dynamic_energy(self) -> float:
        """Total dynamic energy, pJ."""
        return float((self.counts_by_kind() @ self.energy).sum())

    def total_energy(self) -> float:
        """Dynamic plus static energy, pJ."""
        return self.dynamic_energy() + sum(self.static_pj.values())

    def energy_bins(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Bin start times (ns) and dynamic energy (pJ) per component per bin."""
        self.flush()
        n = int(self.end_ns // self.bin_ns) + 1
        self._ensure_bins(n)
        t = np.arange(n) * self.bin_ns
        return t, {c: self._energy_bins[i, :n].copy() for i, c in enumerate(COMPONENTS)}

    def busy_bins(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Bin start times (ns) and busy instance-time (ns) per component class per bin."""
        self.flush()
        n = int(self.end_ns // self.bin_ns) + 1
        self._ensure_bins(n)
        t = np.arange(n) * self.bin_ns
        return t, {c: self._busy_bins[i, :n].copy() for i, c in enumerate(self.busy_classes)}


def _spread(t0: np.ndarray, t1: np.ndarray, w: np.ndarray, dt: float, nbins: int) -> np.ndarray:
    """Sum of w × overlap(interval, bin) per bin, for intervals [t0, t1] (vectorized).

    Uses the integral of the busy indicator: the busy time before edge e of an interval is
    w × clip(e − t0, 0, t1 − t0); per-bin busy = difference of that at consecutive edges.
    The clip is built from two ramps (slope +w from t0, slope −w from t1), each spread as a
    partial first bin plus a second-difference update for the later bins.
    """
    edges_busy = _ramp(t0, w, dt, nbins) - _ramp(t1, w, dt, nbins)
    return np.diff(edges_busy)


def _ramp(start: np.ndarray, w: np.ndarray, dt: float, nbins: int) -> np.ndarray:
    """Σ w × max(0, e − start) at the nbins + 1 bin edges e = k·dt."""
    n_edges = nbins + 1
    k0 = np.floor(start / dt).astype(np.int64) + 1  # first edge strictly after start
    k0 = np.clip(k0, 0, n_edges)
    # value at edge k0: w × (k0·dt − start); then grows by w·dt per edge
    first = w * (k0 * dt - start)
    # scatter-adds in input order, as np.add.at does (the same sums, bit for bit; ~4x faster)
    acc = np.bincount(k0, weights=first, minlength=n_edges + 1)
    slope = np.bincount(np.minimum(k0 + 1, n_edges), weights=w * dt, minlength=n_edges + 1)
    slope_cum = np.cumsum(slope)  # added slope contributions from edge k0+1 on
    # value(e) = Σ_{started} first + Σ (edges past k0) × w·dt
    val = np.cumsum(acc) + np.cumsum(slope_cum)
    return val[:n_edges]
