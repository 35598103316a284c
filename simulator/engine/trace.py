"""Chrome trace-event recording (opens in Perfetto / chrome://tracing).

Tracks: one process per tile ("tile N"), inside it one thread per lane (a row block of
a layer replica, with its IMA) and one per digital node, plus a counter track per IMA
ADC pool (ADCs in use); a "NoC" process with one thread per port and link. Every lane
MVM is a complete ("X") event named by its layer.
``sample_every`` keeps one MVM in k per lane and one NoC packet in k (all digital steps are
kept; sampled traces drop the ADC counters) so that large networks stay small on disk.
"""

from __future__ import annotations

import json
from pathlib import Path


class TraceRecorder:
    """Collects trace events during a simulation (time in ns, written in µs)."""

    def __init__(self, pipeline: str, sample_every: int = 1, pid_offset: int = 0) -> None:
        self.pipeline = pipeline
        self.sample_every = max(1, int(sample_every))
        self.pid_offset = pid_offset
        self.events: list[dict] = []
        self._threads: dict[tuple[int, str], int] = {}
        self._pids: set[int] = set()
        self._count: dict[int, int] = {}
        self._packets = 0
        self._adc_deltas: dict[tuple[int, int], list[tuple[float, int]]] = {}

    def _process(self, pid: int, name: str) -> None:
        if pid not in self._pids:
            self._pids.add(pid)
            self.events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                                "args": {"name": name}})

    def _thread(self, pid: int, label: str) -> int:
        key = (pid, label)
        if key not in self._threads:
            tid = len(self._threads) + 1
            self._threads[key] = tid
            self.events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                                "args": {"name": label}})
        return self._threads[key]

    def _tid(self, pid: int, label: str) -> int:
        """Thread *label* in the process of tile ``pid - pid_offset``."""
        self._process(pid, f"{self.pipeline}: tile {pid - self.pid_offset}")
        return self._thread(pid, label)

    def mvm(self, lane, t0: float, t1: float, planes: int) -> None:
        """One lane MVM (kept if it falls on the sampling grid of its lane)."""
        key = id(lane)
        n = self._count.get(key, 0)
        self._count[key] = n + 1
        if n % self.sample_every:
            return
        part = lane.parts[0]
        pid = part.tile + self.pid_offset
        tid = self._tid(pid, f"{lane.layer} r{lane.replica} rb{lane.row_block} (IMA {part.ima})")
        self.events.append({"ph": "X", "name": lane.layer, "cat": "mvm", "pid": pid,
                            "tid": tid, "ts": t0 / 1e3, "dur": (t1 - t0) / 1e3,
                            "args": {"planes": planes}})

    def digital(self, node: str, tile: int, t0: float, t1: float) -> None:
        """One output row of a digital node."""
        pid = tile + self.pid_offset
        tid = self._tid(pid, f"digital: {node}")
        self.events.append({"ph": "X", "name": node, "cat": "digital", "pid": pid, "tid": tid,
                            "ts": t0 / 1e3, "dur": (t1 - t0) / 1e3})

    def keep_packet(self) -> bool:
        """Whether the next NoC packet is on the sampling grid (one in sample_every)."""
        n = self._packets
        self._packets = n + 1
        return not n % self.sample_every

    def link(self, key: tuple, producer: str, t0: float, t1: float) -> None:
        """One packet holding a NoC port or link (tracks grouped in a 'NoC' process).

        *key* is a stage of ``simulator.engine.components.noc``: ("inj", tile), ("ej", tile),
        ("io", chip) (the input port), ("link", a, b) or ("offchip", a, b).
        """
        pid = self.pid_offset + 100000
        self._process(pid, f"{self.pipeline}: NoC")
        kind = key[0]
        label = (f"{kind} {key[1]}->{key[2]}" if len(key) == 3
                 else f"input port, chip {key[1]}" if kind == "io"
                 else f"{'inject' if kind == 'inj' else 'eject'} tile {key[1]}")
        tid = self._thread(pid, label)
        self.events.append({"ph": "X", "name": producer, "cat": "noc", "pid": pid, "tid": tid,
                            "ts": t0 / 1e3, "dur": (t1 - t0) / 1e3})

    def adc_delta(self, tile: int, ima: int, t: float, delta: int) -> None:
        """ADCs taken (+) / returned (-) at time *t*; summed into counters by finalize()."""
        if self.sample_every > 1:
            return
        self._adc_deltas.setdefault((tile, ima), []).append((t, delta))

    def finalize(self) -> None:
        """Turn the ADC deltas into running-total counter events (idempotent)."""
        for (tile, ima), deltas in sorted(self._adc_deltas.items()):
            pid = tile + self.pid_offset
            self._tid(pid, "ADC pools")
            deltas.sort(key=lambda d: d[0])
            level, i = 0, 0
            while i < len(deltas):
                t = deltas[i][0]
                while i < len(deltas) and deltas[i][0] == t:
                    level += deltas[i][1]
                    i += 1
                self.events.append({"ph": "C", "name": f"ADCs in use, IMA {ima}", "pid": pid,
                                    "ts": t / 1e3, "args": {"in_use": level}})
        self._adc_deltas.clear()


def write_trace(recorders: list[TraceRecorder], path: Path) -> int:
    """Write all recorders into one Chrome trace JSON file; returns its size in bytes."""
    dumps = json.dumps
    with path.open("w") as f:
        f.write('{"displayTimeUnit":"ns","traceEvents":[\n')
        first = True
        for r in recorders:
            for e in r.events:
                if e["ph"] == "X":
                    args = (f',"args":{{"planes":{e["args"]["planes"]}}}' if "args" in e
                            else "")
                    line = (f'{{"ph":"X","name":{dumps(e["name"])},"cat":"{e["cat"]}",'
                            f'"pid":{e["pid"]},"tid":{e["tid"]},"ts":{e["ts"]:.6f},'
                            f'"dur":{e["dur"]:.6f}{args}}}')
                else:
                    line = dumps(e, separators=(",", ":"))
                f.write(line if first else ",\n" + line)
                first = False
        f.write("\n]}\n")
    return path.stat().st_size
