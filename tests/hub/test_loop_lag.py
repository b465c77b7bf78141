"""The event loop's lateness in /metrics: a stall of the whole hub shows there."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp

from hub.app import start_hub


def lag_counts(text: str) -> tuple[float, float]:
    """(samples at most 0.25 s late, all samples) of hub_event_loop_lag_seconds."""
    within = re.search(r'^hub_event_loop_lag_seconds_bucket\{le="0.25"\} (\S+)$', text, re.M)
    total = re.search(r"^hub_event_loop_lag_seconds_count (\S+)$", text, re.M)
    assert within and total, text
    return float(within.group(1)), float(total.group(1))


async def test_a_stalled_event_loop_shows_in_the_metrics(make_config) -> None:  # noqa: ANN001
    """Why: request timings start when a handler runs, so a stall of the whole loop (a spoken
    question decoded with the interpreter lock held: 1.6 s on a slow core) showed nowhere in
    /metrics while every kiosk waited: the hub's histogram put 97 % of answers under 50 ms."""
    hub = await start_hub(make_config(mqtt={"enabled": False}, beacons={"enabled": False},
                                      vision={"enabled": False}, voice={"enabled": False}))
    try:
        async with aiohttp.ClientSession() as http:
            await asyncio.sleep(0.6)  # a few samples of an idle loop
            async with http.get(f"{hub.url}/metrics") as response:
                before = lag_counts(await response.text())
            assert before[1] >= 1, before
            time.sleep(0.6)  # the loop held, as by a blocking call
            await asyncio.sleep(0.6)
            async with http.get(f"{hub.url}/metrics") as response:
                after = lag_counts(await response.text())
        late = (after[1] - after[0]) - (before[1] - before[0])
        assert late >= 1, (before, after)
    finally:
        await hub.stop()
