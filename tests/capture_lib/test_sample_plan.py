"""sample_plan: how sampled mode spends its budget (the library's arithmetic, no kernel)."""

from __future__ import annotations

import pytest

from capture_lib import live, native
from capture_lib.live import MIN_SAMPLE_DUTY, SamplePlan, sample_plan


def cost_ns_per_s(rate: float, plan: SamplePlan, enter: float, sample: float,
                  windows: bool = True) -> float:
    return rate * plan.duty * ((enter if windows else 0.0) + sample / plan.period)


@pytest.mark.parametrize("rate", [10.0, 1e3, 1e5, 1e6, 5e6, 2e7])
@pytest.mark.parametrize("budget", [0.01, 1.0, 10.0])
def test_the_plan_stays_within_the_budget(rate: float, budget: float) -> None:
    enter, sample = 40.0, 150.0
    plan = sample_plan(rate, budget, sample, enter)
    assert 0 < plan.duty <= 1 and plan.period >= 1 and plan.period & (plan.period - 1) == 0
    if plan.period < 1 << 20:  # the longest period is the floor, budget or not
        assert cost_ns_per_s(rate, plan, enter, sample) <= budget / 100 * 1e9 * (1 + 1e-6)


def test_a_light_load_is_timed_whole() -> None:
    assert sample_plan(1000, 1.0, 500, 100) == SamplePlan(1, 1.0)


def test_windows_shrink_before_the_period_grows() -> None:
    """Every call in a window timed costs least per sample, so the duty falls
    with the rate and the period stays 1 until the duty reaches its least."""
    busy = sample_plan(1e6, 1.0, 500, 100)
    assert busy.period == 1 and busy.duty == pytest.approx(1e7 / (1e6 * 600), abs=1e-6)
    flood = sample_plan(1e9, 1.0, 500, 100)
    assert flood.duty == MIN_SAMPLE_DUTY and flood.period > 1
    assert flood.one_in > busy.one_in


def test_without_windows_only_the_samples_count() -> None:
    """An entry probe that stays attached: duty 1, and the period is what holds
    the samples' own cost within the budget (the probe's cost is fixed)."""
    plan = sample_plan(1e6, 1.0, 500, 100, windows=False)
    assert plan.duty == 1.0
    assert cost_ns_per_s(1e6, plan, 100, 500, windows=False) <= 1e7
    assert cost_ns_per_s(1e6, SamplePlan(plan.period // 2, 1.0), 100, 500, windows=False) > 1e7


def test_the_python_constants_are_the_libraries() -> None:
    _, lib = native.require()
    assert live.MAX_SAMPLE_PERIOD == lib.SYSCAP_MAX_SAMPLE_PERIOD
    assert live.SAMPLE_COST_NS == lib.SYSCAP_SAMPLE_COST_NS
    assert live.ENTER_COST_NS == lib.SYSCAP_ENTER_COST_NS
    assert live.DUTY_FULL == lib.SYSCAP_DUTY_FULL
    assert round(live.MIN_SAMPLE_DUTY * live.DUTY_FULL) == lib.SYSCAP_MIN_DUTY_PPM
