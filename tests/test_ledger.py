"""Energy ledger: counts × per-event energy, time bins, busy-time spreading."""

import numpy as np
import pytest

from simulator.model.dataflow import FeatureMapProgress, rows_needed
from simulator.model.ledger import EVENTS, ActivityKind, EnergyLedger, event_vector

ENERGY = {e: 0.0 for e in EVENTS} | {"crossbar_read": 30.0, "adc_conversion": 1.5625,
                                      "edram_byte": 2.0}


def _ledger(bin_ns=100.0):
    return EnergyLedger(ENERGY, bin_ns, ["crossbar", "adc"], flush_every=3)


def test_counts_and_energy_by_component_and_layer():
    led = _ledger()
    k = led.register(ActivityKind("mvm", "L1", event_vector({"crossbar_read": 2,
                                                              "adc_conversion": 256}),
                                  event_vector({"edram_byte": 128}), {"crossbar": 2}))
    k2 = led.register(ActivityKind("mvm2", "L2", event_vector({"crossbar_read": 1}),
                                   event_vector({}), {"crossbar": 1}))
    # 3 MVMs of L1 with 8, 4, 0 planes; 1 MVM of L2 with 5 planes
    for b in (8, 4, 0):
        led.record(0.0, 50.0, k, b)
    led.record(0.0, 50.0, k2, 5)
    ev = led.event_counts()
    # hand count: crossbar reads 2*(8+4+0) + 5 = 29; conversions 256*12 = 3072;
    # eDRAM bytes 128 per group × 3 groups = 384
    assert ev["crossbar_read"] == 29
    assert ev["adc_conversion"] == 3072
    assert ev["edram_byte"] == 384
    comp = led.energy_by_component()
    assert comp["crossbar"] == pytest.approx(29 * 30.0)
    assert comp["adc"] == pytest.approx(3072 * 1.5625)
    assert comp["edram"] == pytest.approx(384 * 2.0)
    layer = led.energy_by_layer()
    assert layer["L2"] == pytest.approx(5 * 30.0)
    assert led.dynamic_energy() == pytest.approx(29 * 30 + 3072 * 1.5625 + 768)


def test_busy_time_spread_over_bins_and_energy_binned():
    led = _ledger(bin_ns=100.0)
    k = led.register(ActivityKind("x", "L", event_vector({"crossbar_read": 1}),
                                  event_vector({}), {"crossbar": 2}))
    led.record(50.0, 250.0, k, 1)  # 200 ns on 2 crossbars: bins 0..2 get 50, 100, 50 ns × 2
    t, busy = led.busy_bins()
    assert busy["crossbar"][:3] == pytest.approx([100.0, 200.0, 100.0])
    assert busy["crossbar"].sum() == pytest.approx(400.0)
    _, energy = led.energy_bins()
    assert energy["crossbar"][0] == pytest.approx(30.0)  # booked at its start bin


def test_static_energy_is_added_separately():
    led = _ledger()
    led.add_static("offchip", 1000.0)
    assert led.total_energy() == pytest.approx(1000.0)
    assert led.energy_by_component()["static:offchip"] == 1000.0


def test_unknown_event_rejected():
    with pytest.raises(KeyError):
        event_vector({"warp_drive": 1})


def test_rows_needed_sliding_window():
    # 3x3 conv, stride 1, pad 1 on 56 rows: row 0 needs rows 0..1, row 10 needs 0..11
    assert rows_needed(0, 3, 1, 1, 1, 56) == 2
    assert rows_needed(10, 3, 1, 1, 1, 56) == 12
    assert rows_needed(55, 3, 1, 1, 1, 56) == 56
    # 7x7 stride 2 pad 3 (ResNet conv1): out row 1 needs input rows up to 2-3+6 = 5
    assert rows_needed(1, 7, 2, 3, 1, 224) == 6


def test_progress_prefix_out_of_order():
    import simpy

    env = simpy.Environment()
    prog = FeatureMapProgress(env, 6)
    fired = []

    def waiter():
        yield prog.wait(4)
        fired.append(env.now)

    env.process(waiter())
    env.run()
    prog.complete(1)
    prog.complete(0)
    assert prog.prefix == 2
    prog.complete(3)
    assert prog.prefix == 2
    prog.complete(2)
    assert prog.prefix == 4
    env.run()
    assert fired == [0]
    assert np.all(prog.done[:4])


def test_spread_matches_brute_force_overlap():
    from simulator.model.ledger import _spread

    rng = np.random.default_rng(0)
    t0 = rng.uniform(0, 1000, 300)
    t1 = t0 + rng.uniform(0, 300, 300)
    w = rng.uniform(0.5, 3, 300)
    dt = 37.0
    nb = int(t1.max() // dt) + 2
    ref = np.zeros(nb)
    for s, e, ww in zip(t0, t1, w, strict=True):
        for i in range(nb):
            ref[i] += ww * max(0.0, min(e, (i + 1) * dt) - max(s, i * dt))
    assert _spread(t0, t1, w, dt, nb) == pytest.approx(ref, abs=1e-6)
