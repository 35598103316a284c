"""The timing rules of the chip, written once and shared by every fidelity.

The event engine (``group`` and ``plane``), the ``analytic`` estimate and the throughput
bound (``simulator.model.bound``) all take their service times from :class:`TimingRules`, built
from the hardware spec. Each rule is stated in docs/model.md with its derivation.
"""

from __future__ import annotations

import math

import numpy as np

#: tile digital units (``components.tile.<name>``) that are timed resources
TILE_UNITS = ("tile_shift_add", "activation", "maxpool", "tile_output_register")
#: how reports name each of them
UNIT_LABELS = {"tile_shift_add": "tile shift-and-add", "activation": "activation",
               "maxpool": "max-pool", "tile_output_register": "tile output register"}


def plane_duration(b: int | np.ndarray, read_ns: float, conv_ns: float) -> np.ndarray | float:
    """One MVM of b planes through read → S+H → convert: r + c + (b − 1)·max(r, c)."""
    b = np.asarray(b, dtype=float)
    d = read_ns + conv_ns + (b - 1) * max(read_ns, conv_ns)
    return np.where(b > 0, d, 0.0)


def psum_bits(hw) -> int:
    """Width of a crossbar's partial sum: B_act + B_weight + ceil(log2 rows) bits.

    The exact sum of ``rows`` products of a B_act-bit input and a B_w-bit weight; it is
    the width the partial sums of a replica's row blocks travel at to the merging tile.
    """
    return int(hw.activations.bits + hw.weights.bits + math.ceil(math.log2(hw.crossbar.rows)))


class TimingRules:
    """Service times of every timed block, from one hardware spec (ns, bytes, values)."""

    def __init__(self, hw, load_timing: bool = True) -> None:
        clock = float(hw.clock_ghz)
        self.clock_ghz = clock
        self.cycle_ns = 1.0 / clock
        self.read_ns = float(hw.crossbar.read_ns)
        self.act_bits = int(hw.activations.bits)
        self.act_bytes = self.act_bits / 8.0
        self.psum_bits = psum_bits(hw)
        self.load_timing = load_timing  # False: group loads take no time (an ablation)
        # eDRAM: `edram_banks` banks, each reads or writes edram_bus_bits per clock
        self.banks = int(hw.tile.edram_banks)
        self.bank_bytes_per_ns = hw.tile.edram_bus_bits / 8 * clock
        self.bus_bytes_per_ns = hw.tile.bus_wires / 8 * clock
        group_bytes = hw.ima.crossbars * hw.crossbar.rows * self.act_bytes
        # the input register is read one bit plane at a time, so even when it holds a
        # single group (ISAAC at 16 bits) the next group streams in behind the current
        # one: at least two groups are in flight per lane
        self.input_slots = max(2, int(hw.ima.input_register_bytes // group_bytes))
        tc = hw.components.tile
        #: values per ns of each tile digital unit: count × values per cycle × clock
        self.unit_rate = {u: getattr(tc, u).count * getattr(tc, u).values_per_cycle * clock
                          for u in TILE_UNITS}
        self.tile_register_bytes = int(hw.tile.output_register_bytes)
        #: on-line units (at the eDRAM-to-IMA bus): decision latency after a group's last
        #: byte, ns (``components.tile.<unit>.depth_cycles`` clock cycles)
        self.unit_latency_ns = {
            u: getattr(hw.components.tile, u).depth_cycles / clock
            for u in ("precision_select", "precision_detect")}
        # NoC: flits of flit_bits; a hop costs the router pipeline plus one link cycle
        self.noc_cycle_ns = 1.0 / float(hw.noc.clock_ghz)
        self.flit_bits = int(hw.noc.flit_bits)
        self.hop_ns = (int(hw.noc.router_latency_cycles) + 1) * self.noc_cycle_ns
        self.offchip_bytes_per_ns = float(hw.offchip.bandwidth_gbps) / int(hw.offchip.links)
        #: the network input enters over offchip.input_links links of chip 0
        self.input_bytes_per_ns = self.offchip_bytes_per_ns * int(hw.offchip.input_links)
        #: a partial sum crossing the tile bus from the IMA output register, bytes
        self.psum_bytes = self.psum_bits / 8.0
        self.ima_register_bytes = float(hw.ima.output_register_bytes)
        self.multicast = bool(hw.noc.multicast)

    def online_ns(self, unit: str | None) -> float:
        """Decision latency of on-line unit *unit* after a group's last byte (0 for None)."""
        return self.unit_latency_ns[unit] if unit else 0.0

    # -- memory -----------------------------------------------------------------------
    def bank_ns(self, nbytes: float) -> float:
        """Time one eDRAM bank is busy reading or writing *nbytes*."""
        return nbytes / self.bank_bytes_per_ns

    def load_bank_ns(self, nbytes: float) -> float:
        """Bank read of a group load (zero with ``load_timing`` off)."""
        return nbytes / self.bank_bytes_per_ns if self.load_timing else 0.0

    def load_bus_ns(self, nbytes: float) -> float:
        """eDRAM-to-IMA bus transfer of a group load (zero with ``load_timing`` off)."""
        return nbytes / self.bus_bytes_per_ns if self.load_timing else 0.0

    # -- digital units ----------------------------------------------------------------
    def unit_ns(self, unit: str, values: float) -> float:
        """Time the tile's *unit* takes for *values* (one value per clock per lane)."""
        return values / self.unit_rate[unit] if values else 0.0

    # -- NoC --------------------------------------------------------------------------
    def flits(self, bits: float) -> int:
        """Flits of a packet carrying *bits* of payload."""
        return -(-int(round(bits)) // self.flit_bits)

    def serial_ns(self, flits: int) -> float:
        """Time a packet of *flits* holds one link or port (one flit per NoC cycle)."""
        return flits * self.noc_cycle_ns

    def offchip_ns(self, nbytes: float) -> float:
        """Time a packet of *nbytes* holds one off-chip link."""
        return nbytes / self.offchip_bytes_per_ns

    def input_ns(self, nbytes: float) -> float:
        """Time *nbytes* of the network input take over the input link(s)."""
        return nbytes / self.input_bytes_per_ns
