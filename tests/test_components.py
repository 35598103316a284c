"""Hardware blocks of the event engine on their own, timed by hand (docs/model.md).

Reservation servers and the cut-through rule, the eDRAM banks shared by reads and
writes, the NoC (same-router, one hop, multicast), the fluid ADC pool of group fidelity,
the ledger's bin coarsening, the measured throughput and the common timeline axis.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import simpy

from simulator.engine.components.adc_pool import FluidAdcPool, SharedAdcArbiter
from simulator.engine.components.crossbar_lane import LaneState
from simulator.engine.components.edram_port import TileMemory
from simulator.engine.components.noc import Noc
from simulator.engine.components.server import Server, cut_through
from simulator.hardware.spec import HardwareSpec, load_hardware
from simulator.model.ledger import EVENTS, ActivityKind, EnergyLedger, event_vector
from simulator.model.noc_routes import NocTopology
from simulator.model.timing import TimingRules
from simulator.runner.simulate import (
    steady_state_window,
    streamed_images_needed,
    window_ns,
    window_terms,
)

ISAAC8 = Path(__file__).resolve().parents[1] / "configs" / "hardware" / "isaac8.yaml"
BANK = 38.4      # eDRAM bank: 256 bits x 1.2 GHz, B/ns
BUS = 57.6       # eDRAM-to-IMA bus: 384 wires x 1.2 GHz, B/ns
HOP = 4 / 1.2    # router pipeline (3 cycles) + one link cycle at 1.2 GHz


@cache
def isaac8() -> HardwareSpec:
    return load_hardware(ISAAC8)


# ----------------------------------------------------------------------------- servers
def test_server_is_fifo_for_requests_in_time_order() -> None:
    s = Server("bus", "tile 0")
    assert s.reserve(0.0, 2.0) == (0.0, 2.0)
    assert s.reserve(1.0, 2.0) == (2.0, 4.0)   # waits for the first
    assert s.reserve(5.0, 1.0) == (5.0, 6.0)   # idle again
    assert s.busy_ns == pytest.approx(5.0)


def test_server_fills_gaps_before_advance_reservations() -> None:
    # an advance reservation at [10, 12]: a later request for t = 0 of 3 ns fits before
    # it; one of 9 ns does not (it would overlap) and goes after it
    s = Server("link", "0->1")
    assert s.reserve(10.0, 2.0) == (10.0, 12.0)
    assert s.reserve(0.0, 3.0) == (0.0, 3.0)
    assert s.reserve(0.0, 9.0) == (12.0, 21.0)
    assert s.reserve(3.0, 7.0) == (3.0, 10.0)  # exactly fills [3, 10]


def test_server_instances_and_end_min() -> None:
    banks = Server("eDRAM bank", "tile 0", count=2)
    assert banks.reserve(0.0, 4.0) == (0.0, 4.0)
    assert banks.reserve(0.0, 4.0) == (0.0, 4.0)   # the second bank
    assert banks.reserve(1.0, 1.0) == (4.0, 5.0)   # both busy until 4
    # end_min holds a stage until its upstream has delivered: [6, max(6 + 1, 9)]
    assert Server("x", "y").reserve(6.0, 1.0, 9.0) == (6.0, 9.0)


def test_server_three_instances() -> None:
    # three instances: the first three requests at 0 take one each; the fourth finds all
    # busy until 10; a request at 5 for 3 ns then takes the earliest start, 10, on the
    # first instance free from there (instance 1; instance 0 holds [10, 20])
    s = Server("unit", "tile 0", count=3)
    for _ in range(3):
        assert s.reserve(0.0, 10.0) == (0.0, 10.0)
    assert s.reserve(0.0, 10.0) == (10.0, 20.0)
    assert s.reserve(5.0, 3.0) == (10.0, 13.0)
    assert s.busy_ns == 43.0


@pytest.mark.parametrize("count", [1, 2, 3])
def test_server_late_request_does_not_reach_dropped_history(count: int) -> None:
    # 65 intervals [2k, 2k + 1] on every instance, the clock at 1000: the 65th booking of
    # an instance drops its history (all of it ended before 1000), whose last interval
    # ends at 129. A request at 0.5 would fit the gap [1, 2] of that history, which the
    # calendar no longer holds: it starts at 129 instead of double-booking it.
    s = Server("eDRAM bank", "tile 0", count=count, clock=lambda: 1000.0)
    for k in range(65):
        for _ in range(count):
            s.reserve(2.0 * k, 1.0)
    assert s.reserve(0.5, 0.5) == (129.0, 129.5)


def test_cut_through_two_stages() -> None:
    # stage 1 holds 5 ns, stage 2 (entered 1 ns after stage 1) 2 ns: it cannot end before
    # stage 1's end + 1: [1, 6]; with stage 2 busy until 3, it starts at 3, ends at
    # max(3 + 2, 5 + 1) = 6 still; busy until 7: [7, 9]
    a, b = Server("a", ""), Server("b", "")
    assert cut_through([(a, 5.0, 0.0), (b, 2.0, 1.0)], 0.0) == (0.0, 6.0)
    a2, b2 = Server("a", ""), Server("b", "")
    b2.reserve(0.0, 3.0)
    assert cut_through([(a2, 5.0, 0.0), (b2, 2.0, 1.0)], 0.0) == (0.0, 6.0)
    a3, b3 = Server("a", ""), Server("b", "")
    b3.reserve(0.0, 7.0)
    assert cut_through([(a3, 5.0, 0.0), (b3, 2.0, 1.0)], 0.0) == (0.0, 9.0)


# ----------------------------------------------------------------------------- eDRAM
@pytest.mark.parametrize("banks", [1, 2])
def test_edram_read_write_conflict(banks: int) -> None:
    """An output write holds a bank; a group load arriving meanwhile waits for a bank.

    The write of 64 B takes 64 / 38.4 = 1.6667 ns from t = 0. A 128-byte group load asked
    for at t = 0.5: with one bank it waits until 1.6667, reads for 128 / 38.4 = 3.3333
    and crosses the bus in 128 / 57.6 = 2.2222: in the register at 7.2222 ns; with two
    banks it reads from the idle one: 0.5 + 3.3333 + 2.2222 = 6.0556 ns.
    """
    hw = isaac8().with_changes({"tile.edram_banks": banks})
    mem = TileMemory(0, TimingRules(hw))
    assert cut_through([mem.write_stage(64, 0.0)], 0.0) == pytest.approx((0.0, 64 / BANK))
    loaded = mem.load(0.5, 128)
    if banks == 1:
        assert loaded == pytest.approx(64 / BANK + 128 / BANK + 128 / BUS)
    else:
        assert loaded == pytest.approx(0.5 + 128 / BANK + 128 / BUS)


def test_edram_batch_load_matches_one_load_per_group() -> None:
    # three 128-byte groups of one replica, asked for at t = 0 on two banks: reads of
    # groups 0 and 1 in parallel (3.3333), group 2 after group 0 on bank 0 (6.6667); the
    # bus carries them in order as each is read: 5.5556, 7.7778, 10.0
    mem = TileMemory(0, TimingRules(isaac8()))
    r, b = 128 / BANK, 128 / BUS
    assert mem.load_batch(0.0, [128, 128, 128]) == pytest.approx([r + b, r + 2 * b, r + 3 * b])
    # the same three as separate requests on a fresh tile
    one = TileMemory(1, TimingRules(isaac8()))
    assert [one.load(0.0, 128) for _ in range(3)] == pytest.approx([r + b, r + 2 * b,
                                                                    r + 3 * b])


def test_edram_untimed_loads() -> None:
    mem = TileMemory(0, TimingRules(isaac8(), load_timing=False))
    assert mem.load_batch(3.0, [128, 256]) == [3.0, 3.0]


# ----------------------------------------------------------------------------- NoC
def _noc(tiles: int, tiles_per_router: int, mesh_cols: int, multicast: bool = False) -> Noc:
    hw = isaac8().with_changes({"chip.tiles": tiles, "chip.tiles_per_router": tiles_per_router,
                                "chip.mesh_cols": mesh_cols, "noc.multicast": multicast})
    return Noc(NocTopology(hw), TimingRules(hw))


def test_noc_same_router() -> None:
    # tiles 0 and 1 share router 0: injection port, router, ejection port. 64 bits = 2
    # flits, 2 / 1.2 = 1.6667 ns per port; the head enters the ejection port one hop
    # (3 + 1 cycles = 3.3333 ns) after the injection port: [3.3333, 5.0]
    noc = _noc(2, 2, 1)
    assert noc.send(0.0, 0, [1], 64, "activations", None) == pytest.approx([HOP + 2 / 1.2])
    assert noc.traffic["activations"] == {"packets": 1, "bytes": 8.0, "flits": 2,
                                          "flit_hops": 2}
    assert noc.link_busy() == pytest.approx({("inj", 0): 2 / 1.2, ("ej", 1): 2 / 1.2})


def test_noc_one_hop_and_pipelining() -> None:
    # tiles 0 and 1 on routers 0 and 1: inj(0), link (0,1), ej(1). 448 bytes = 112 flits
    # = 93.3333 ns per stage: delivered 2 hops after the head left plus one serialization,
    # 2 x 3.3333 + 93.3333 = 100 ns (store and forward would take 3 x 93.3 + ...)
    noc = _noc(2, 1, 2)
    assert noc.send(0.0, 0, [1], 448 * 8, "activations", None) == pytest.approx(
        [2 * HOP + 112 / 1.2])
    # a second packet from tile 0 at t = 0 waits for the injection port: +93.3333
    assert noc.send(0.0, 0, [1], 448 * 8, "activations", None) == pytest.approx(
        [112 / 1.2 + 2 * HOP + 112 / 1.2])
    assert noc.traffic["activations"]["flit_hops"] == 2 * 112 * 2


def test_noc_multicast_tree() -> None:
    # tiles 0, 1, 2 on routers 0, 1, 2 in a row; 32 bits = 1 flit = 0.8333 ns per stage.
    # Multicast from tile 0 to tiles 1 and 2: one injection, link (0,1) once, then
    # ej(1) and link (1,2) -> ej(2): arrivals 2 hops + 1 flit and 3 hops + 1 flit;
    # routers 0, 1, 2 traversed once: 3 flit-hops.
    f = 1 / 1.2
    mc = _noc(3, 1, 3, multicast=True)
    assert mc.send(0.0, 0, [1, 2], 32, "activations", None) == pytest.approx(
        [2 * HOP + f, 3 * HOP + f])
    assert mc.traffic["activations"] == {"packets": 1, "bytes": 4.0, "flits": 1,
                                         "flit_hops": 3}
    assert mc.link_busy()[("inj", 0)] == pytest.approx(f)
    # two unicasts: the second waits one flit for the injection port, 2 + 3 routers
    uc = _noc(3, 1, 3)
    assert uc.send(0.0, 0, [1], 32, "activations", None) == pytest.approx([2 * HOP + f])
    assert uc.send(0.0, 0, [2], 32, "activations", None) == pytest.approx([f + 3 * HOP + f])
    assert uc.traffic["activations"]["flit_hops"] == 5


# ----------------------------------------------------------------------------- ADC pool
def test_fluid_pool_one_adc() -> None:
    # one ADC: a plane (1 crossbar, 50 ns) ready at 100 converts in [100, 150]; a second
    # one ready at 100 gets the ADC when it is free: [150, 200]; one ready at 120 needing
    # 50 ns gets what is left: [200, 250]
    pool = FluidAdcPool(1)
    assert pool.convert(100.0, 1, 50.0, 50.0) == pytest.approx(150.0)
    assert pool.convert(100.0, 1, 50.0, 50.0) == pytest.approx(200.0)
    assert pool.convert(120.0, 1, 50.0, 50.0) == pytest.approx(250.0)
    assert pool.busy_ns == pytest.approx(150.0)


def test_fluid_pool_partial_share() -> None:
    # two ADCs; a 2-crossbar plane (2 x 40 ns of jobs) at 0 takes both: [0, 40]; a
    # 1-crossbar plane of 30 ns at 20 finds none free until 40: [40, 70]; a 2-crossbar
    # plane (2 x 30) at 40 gets the one ADC left until 70 (30 ns of work), then both:
    # the remaining 30 ns of work on 2 ADCs take 15 ns: ends at 85
    pool = FluidAdcPool(2)
    assert pool.convert(0.0, 2, 80.0, 40.0) == pytest.approx(40.0)
    assert pool.convert(20.0, 1, 30.0, 30.0) == pytest.approx(70.0)
    assert pool.convert(40.0, 2, 60.0, 30.0) == pytest.approx(85.0)


def test_fluid_pool_longest_job() -> None:
    # an idle pool of 4 ADCs and a plane of 2 crossbars with 100 and 10 ns jobs: the
    # 100-ns crossbar's columns are one ADC's job, so the plane ends at 100, not 55
    pool = FluidAdcPool(4)
    assert pool.convert(0.0, 2, 110.0, 100.0) == pytest.approx(100.0)


def _arbited_lanes(times: list[float], b: int, c: float) -> list[float]:
    """Lanes of one crossbar each on one IMA with one ADC (r = 100 ns, a conversion c ns),
    lane i asking for a group of b planes (loaded at once) at times[i]; returns when each
    lane's group is converted (group fidelity's :class:`SharedAdcArbiter`)."""
    from types import SimpleNamespace as NS

    env = simpy.Environment()
    pool = FluidAdcPool(1, clock=lambda: env.now)
    rules = NS(input_slots=2, act_bytes=1, read_ns=100.0)
    ledger = NS(record=lambda *a: None)
    states = [LaneState(NS(rows=128, conv_ns=c), rules, None, 0.0, [(pool, 1, c, c)],
                        ledger, 0, NS(append=lambda rec: None)) for _ in times]
    arbiter = SharedAdcArbiter(env, 100.0)
    ends = [0.0] * len(times)

    def ask(i: int):
        yield env.timeout(times[i])
        ends[i] = yield arbiter.request([states[i]], [env.now], [b], float("-inf"))

    for i in range(len(times)):
        env.process(ask(i))
    env.run()
    return ends


def test_shared_adc_groups_asked_apart_convert_in_time_order() -> None:
    # One ADC, c = 80 ns, r = 100 ns; lane A asks for 4 planes at 0, lane B at 10. Their
    # samples are taken in the order they are ready, as a FIFO ADC serves jobs (plane
    # fidelity): A1 ready 100 -> [100, 180]; B1 ready 110 -> [180, 260]; A2 read by 200,
    # ADC free at 260 -> [260, 340]; B2 (read by 210, its converter free at 260) ->
    # [340, 420]; A3 (ready max(300, 340)) -> [420, 500]; B3 -> [500, 580]; A4 ->
    # [580, 660]; B4 -> [660, 740]. Booking A's four planes when it asks, before B's
    # request is known (the arbiter before this test), gave A the ADC at 100, 200, 300,
    # 400 and ended it at 480, B taking the gaps.
    assert _arbited_lanes([0.0, 10.0], 4, 80.0) == pytest.approx([660.0, 740.0])
    # asked at the same instant: ties go in request order, the same alternation
    assert _arbited_lanes([0.0, 0.0], 4, 80.0) == pytest.approx([660.0, 740.0])
    # B asks after A's last sample was converted: nothing to interleave. A: planes every
    # 100 ns from 100, each converted in 80: [400, 480]; B asks at 500: 600..(900, 980]
    assert _arbited_lanes([0.0, 500.0], 4, 80.0) == pytest.approx([480.0, 980.0])


# ----------------------------------------------------------------------------- results
def test_steady_state_window() -> None:
    # 8 images complete at 250, 400, 500, 600, 700, 800, 900, 950 ns; the busiest unit
    # finishes them at 100, 200, ..., 800 ns. Fill: image 0 (warm-up 1): the window starts
    # at image 1. The unit finishes the last image at 800: image 5 (done at 800) is the
    # last done before, later completions are the drain (the last interval, 50 ns, reads
    # high). Window: images 1..5; completions 800 - 400 = 400 ns, the unit 600 - 200 =
    # 400 ns: 4 images in 400 ns = 10 M/s.
    done = [250.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 950.0]
    ref = [100.0 * (i + 1) for i in range(8)]
    win = steady_state_window(done, ref, 1, "link 0->1")
    assert (win.first, win.last) == (1, 5)
    assert "images 1..5" in win.reason and "drain excluded" in win.reason
    assert "link 0->1" in win.reason
    assert window_ns(done, ref, win) == pytest.approx(400.0)
    # the longer of the two spans: a unit that took 450 ns for those images counts
    assert window_ns(done, [*ref[:5], 650.0, 700.0, 800.0], win) == pytest.approx(450.0)
    # a NoC link interleaving images: it finished image 1 late (at 350) and image 5 at
    # 600, 250 ns apart, but was busy 110 ns with each of images 2..5: 440 ns, longer
    # than both intervals (400 and 250): the window takes 440 ns
    late = [100.0, 350.0, *ref[2:]]
    assert window_ns(done, late, win, [110.0] * 8) == pytest.approx(440.0)
    terms = window_terms(done, late, win, [110.0] * 8)
    assert max(terms, key=terms.__getitem__) == "the busiest unit's busy time on those images"
    assert terms["the busiest unit's interval"] == pytest.approx(250.0)
    # busy less than the intervals: they stand
    assert window_ns(done, ref, win, [90.0] * 8) == pytest.approx(400.0)
    # a warm-up of 3 starts the window at image 3
    assert steady_state_window(done, ref, 3).first == 3
    # a larger warm-up: 5 = 5, no interval left
    none = steady_state_window(done, ref, 5)
    assert none.last <= none.first and "not reached" in none.reason
    # the unit finished every image before image 1 completed: no window
    assert steady_state_window([100.0, 200.0, 300.0], [10.0, 20.0, 30.0], 1).last < 1
    assert steady_state_window([100.0], [10.0], 1).reason == "one image streamed"
    # images needed: 2.5 images in flight (250 ns latency at 10 M/s) -> ceil 3 for the
    # drain, 1 for the fill, 3 more: 7
    assert streamed_images_needed(250.0, 1e7, 1) == 7


def test_ledger_coarsens_long_runs() -> None:
    # 100-ns bins, at most 8: a record ending at 2000 ns would need 22 bins, so the width
    # doubles twice (400 ns); energy and busy totals are kept
    energies = dict.fromkeys(EVENTS, 1.0)
    led = EnergyLedger(energies, 100.0, ["crossbar"], flush_every=2, max_bins=8)
    k = led.register(ActivityKind("k", "l", event_vector({"crossbar_read": 1}),
                                  event_vector({}), busy_per_unit={"crossbar": 10.0}))
    led.record(0.0, 100.0, k, 5, 1)
    led.record(1900.0, 2000.0, k, 5, 1)
    led.flush()
    assert led.bin_ns == 400.0
    t, busy = led.busy_bins()
    assert busy["crossbar"].sum() == pytest.approx(100.0)
    assert busy["crossbar"][0] == pytest.approx(50.0) and busy["crossbar"][4] == \
        pytest.approx(50.0)
    _, energy = led.energy_bins()
    assert sum(v.sum() for v in energy.values()) == pytest.approx(10.0)
    assert np.allclose(np.diff(t), 400.0)
