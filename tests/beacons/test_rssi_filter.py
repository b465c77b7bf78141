"""The RSSI filter works over seconds, not samples, and shrugs off deep fades."""

from __future__ import annotations

from beacons.rssi_filter import RssiWindow


def test_window_is_measured_in_seconds_whatever_the_rate() -> None:
    fast, slow = RssiWindow(3.0), RssiWindow(3.0)
    for i in range(100):  # 10 readings a second for 10 s
        fast.push(i / 10, -60)
    for i in range(10):  # one a second
        slow.push(float(i), -60)
    assert len(fast) == 31  # t in [6.9, 9.9]
    assert len(slow) == 4  # t in [6, 9]


def test_median_ignores_a_minority_of_fades() -> None:
    window = RssiWindow(3.0)
    for t, rssi in [(0.0, -60), (0.4, -61), (0.8, -82), (1.2, -59), (1.6, -79)]:
        window.push(t, rssi)
    assert window.level() == -61
    level, top = window.level_and_top()
    assert (level, top) == (-61, -60)  # second-highest: one lucky reading is not the peak


def test_even_count_median_and_spread() -> None:
    window = RssiWindow(10.0)
    for t, rssi in enumerate([-70, -60, -66, -64]):
        window.push(float(t), rssi)
    assert window.level() == -65
    assert window.spread() == 6  # sorted -70 -66 -64 -60: q3 (-60) - q1 (-66)


def test_old_readings_leave_the_window() -> None:
    window = RssiWindow(2.0)
    window.push(0.0, -90)
    window.push(1.0, -90)
    window.push(5.0, -50)
    assert len(window) == 1 and window.level() == -50
