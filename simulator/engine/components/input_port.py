"""The chip's input port: the network's input enters over the input link(s).

The input of every image comes over ``offchip.input_links`` off-chip links of chip 0 (at
its router 0), row by row, image after image, at ``bandwidth_gbps / links`` per link
(``TimingRules.input_ns``). A row is complete when its last byte is in; it then fans out
from the port over the NoC to the eDRAM of every tile that reads it (``fanout``, from
``noc_routes.PORT``). Before a row the port waits for room in its consumers' bounded
buffers (``edram_buffer.ready_for_row``), so images enter at the rate the input path and
the first layer allow, not all at once.
"""

from __future__ import annotations

import simpy

from simulator.engine.components.edram_buffer import ready_for_row
from simulator.engine.components.server import Server
from simulator.model.dataflow import FeatureMapProgress, at
from simulator.model.timing import TimingRules


class InputPort:
    """SimPy process that brings the input rows of every image in over the input link."""

    def __init__(self, env: simpy.Environment, plan, rules: TimingRules,
                 progress: list[FeatureMapProgress], room, ledger, kind: int,
                 clock=None) -> None:
        self.env = env
        self.plan = plan  # the input node
        self.rules = rules
        self.progress = progress  # the input node's rows, per image
        self.room = room  # [(released counter, capacity rows, rows per image, ...)]
        self.ledger = ledger
        self.kind = kind  # the ledger id of the input node's "port" kind (input bytes)
        # an off-chip link: in the statistics and the bound, not in the on-chip NoC's
        # utilization class
        self.link = Server("input link", "chip 0", 1, None, clock)
        self.entered: list[float] = []  # per image: when its first byte entered

    def run(self):
        """Bring every image in, row by row."""
        env, plan = self.env, self.plan
        w = plan.out_w
        row_bytes = plan.out_c * w * self.rules.act_bytes
        dur = self.rules.input_ns(row_bytes)
        for img, prog in enumerate(self.progress):
            for row in range(plan.out_h):
                yield from ready_for_row((), self.room, img, row)
                start, end = self.link.reserve(env.now, dur)
                if not row:
                    self.entered.append(start)
                self.ledger.record(start, end, self.kind, row_bytes, 1)
                at(env, end, lambda prog=prog, row=row: prog.complete(row * w, w))
                yield env.timeout(end - env.now)
