"""ISAAC-style replication (mapping/replicate.py); expected counts worked by hand."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from mapping.errors import MappingError
from mapping.replicate import replicate


def L(name: str, crossbars: int, positions: int) -> SimpleNamespace:  # noqa: N802
    return SimpleNamespace(name=name, crossbars=crossbars, positions=positions)


def bottleneck(layers: list[SimpleNamespace], reps: dict[str, int]) -> float:
    return max(lay.positions / reps[lay.name] for lay in layers)


def used(layers: list[SimpleNamespace], reps: dict[str, int]) -> int:
    return sum(lay.crossbars * reps[lay.name] for lay in layers)


ABC = [L("a", 2, 100), L("b", 1, 25), L("c", 4, 1)]


def test_greedy_hand_worked() -> None:
    # one replica each: 2 + 1 + 4 = 7 crossbars, budget 20 -> 13 left.
    # time = positions / replicas; the bottleneck gets one more replica:
    #  a 100 -> a=2 (11 left); a 50 -> a=3 (9); a 33.3 -> a=4 (7);
    #  a 25 = b 25: tie -> later layer b=2 (6); a 25 -> a=5 (4); a 20 -> a=6 (2);
    #  a 16.7 -> a=7 (0); a 14.3 needs 2 crossbars, 0 left -> stop.
    reps = replicate(ABC, 20, {})
    assert reps == {"a": 7, "b": 2, "c": 1}
    assert used(ABC, reps) == 7 * 2 + 2 * 1 + 1 * 4 == 20


def test_ties_go_to_later_layer() -> None:
    # equal times 10 and 10, 1 crossbar each, budget 3 -> the one spare goes to "y".
    assert replicate([L("x", 1, 10), L("y", 1, 10)], 3, {}) == {"x": 1, "y": 2}


def test_stop_when_bottleneck_cannot_grow() -> None:
    # a (10 crossbars, 100 positions) is the bottleneck; budget 15: 10 + 1 used, 4 left
    # < 10 -> stop, b (time 50) is not replicated although crossbars remain.
    reps = replicate([L("a", 10, 100), L("b", 1, 50)], 15, {})
    assert reps == {"a": 1, "b": 1}


def test_pinned_kept() -> None:
    # a pinned at 2 (time 50) is the bottleneck from the start -> nothing else changes.
    assert replicate(ABC, 20, {"a": 2}) == {"a": 2, "b": 1, "c": 1}
    # b pinned at 1: a grows as above until a = 4 (time 25) ties b (25, later, pinned):
    # the bottleneck b cannot grow -> stop with a = 4 (7 + 3*2 = 13 crossbars).
    assert replicate(ABC, 20, {"b": 1}) == {"a": 4, "b": 1, "c": 1}


def test_replicas_capped_at_positions() -> None:
    # 3 positions cannot use more than 3 replicas; linear (1 position) stays at 1.
    reps = replicate([L("conv", 1, 3), L("fc", 1, 1)], 1000, {})
    assert reps == {"conv": 3, "fc": 1}


def test_over_budget_raises() -> None:
    with pytest.raises(MappingError):
        replicate(ABC, 6, {})          # needs 7 at one replica each
    with pytest.raises(MappingError):
        replicate(ABC, 10, {"c": 2})   # 2 + 1 + 8 = 11 > 10


def test_dict_input_accepted() -> None:
    assert replicate({x.name: x for x in ABC}, 20, {}) == {"a": 7, "b": 2, "c": 1}


@pytest.mark.parametrize("seed", range(20))
def test_budget_respected_and_bottleneck_improves(seed: int) -> None:
    rng = random.Random(seed)
    layers = [L(f"l{i}", rng.randint(1, 40), rng.choice([1, 49, 196, 784, 3136]))
              for i in range(rng.randint(1, 12))]
    need = sum(lay.crossbars for lay in layers)
    budget = need + rng.randint(0, 5 * need)
    reps = replicate(layers, budget, {})
    assert used(layers, reps) <= budget
    assert all(1 <= reps[lay.name] <= max(lay.positions, 1) for lay in layers)
    before = bottleneck(layers, {lay.name: 1 for lay in layers})
    after = bottleneck(layers, reps)
    assert after <= before
    # strictly better whenever every layer at the initial bottleneck could get a replica
    tied = [lay for lay in layers if lay.positions == before]
    if before > 1 and budget - need >= sum(lay.crossbars for lay in tied):
        assert after < before
