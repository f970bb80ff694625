from __future__ import annotations

import pytest

from sender.domain.rate_limit import BucketState, reserve

pytestmark = pytest.mark.unit


def slots(rate: float, burst: float, arrivals: list[float], cost: float = 1) -> list[float]:
    """When each caller arriving at the given times may send."""
    state: BucketState | None = None
    out = []
    for now in arrivals:
        reservation = reserve(state, now=now, rate=rate, burst=burst, cost=cost)
        state = reservation.state
        out.append(now + reservation.wait_seconds)
    return out


def test_callers_arriving_together_get_slots_exactly_one_interval_apart() -> None:
    assert slots(rate=1, burst=1, arrivals=[100.0] * 5) == [100, 101, 102, 103, 104]
    got = slots(rate=3, burst=1, arrivals=[0.0] * 4)
    assert got == pytest.approx([0, 1 / 3, 2 / 3, 1.0])


def test_a_quiet_spell_refills_only_up_to_the_burst() -> None:
    got = slots(rate=1, burst=1, arrivals=[0.0, 50.0, 50.0, 50.0])
    assert got == [0, 50, 51, 52]
    got = slots(rate=1, burst=3, arrivals=[0.0, 50.0, 50.0, 50.0, 50.0])
    assert got == [0, 50, 50, 50, 51]


def test_a_two_part_sms_costs_two_tokens() -> None:
    # The first one waits for the second token: never two parts within one second.
    assert slots(rate=1, burst=1, arrivals=[0.0, 0.0, 0.0], cost=2) == [1, 3, 5]


def test_a_clock_stepping_back_mints_no_tokens() -> None:
    # The second caller's clock is 0.5 s behind the first one's.
    got = slots(rate=1, burst=1, arrivals=[10.0, 9.5])
    assert got == [10.0, 11.0]


def test_over_any_window_no_more_than_rate_times_window_plus_burst() -> None:
    import random

    rng = random.Random(7)
    arrivals = sorted(rng.uniform(0, 10) for _ in range(400))
    sent = slots(rate=20, burst=1, arrivals=arrivals)
    for start in sent:
        in_window = sum(1 for t in sent if start <= t < start + 1.0)
        assert in_window <= 20 + 1
    # ... and nobody waits longer than needed: the 400 sends end 399 / 20 s after the first.
    assert max(sent) == pytest.approx(arrivals[0] + 399 / 20, abs=1e-9)


@pytest.mark.parametrize("bad", [{"rate": 0}, {"burst": 0}, {"cost": 0}])
def test_nonsense_parameters_are_refused(bad: dict[str, float]) -> None:
    args = {"now": 0.0, "rate": 1.0, "burst": 1.0, "cost": 1.0} | bad
    with pytest.raises(ValueError, match="positive"):
        reserve(None, **args)


async def test_the_local_pacer_spaces_this_processs_publishes_by_their_cost() -> None:
    from sender.dispatcher import Pacer

    now = [100.0]
    published: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = Pacer(rate=2, clock=lambda: now[0], sleep=fake_sleep)
    for cost, late_by in [(1, 0.0), (1, 0.0), (2, 0.0), (1, 0.1), (1, 1.0), (1, 0.0)]:
        now[0] += late_by
        await pacer.wait(cost)
        published.append(now[0])
    # 0.5 s per part; a two-part SMS holds the next one back 1 s; lateness is not made up.
    assert published == pytest.approx([100.0, 100.5, 101.0, 102.0, 103.0, 103.5])
