"""The real radio: BlueZ through bleak's ``BleakScanner`` with a detection callback.

Passive scanning (no scan requests; phones need not answer) needs BlueZ's advertisement monitor,
which bleak drives with ``or_patterns``: the patterns below let through exactly the payloads the hub
uses (shopper tokens, iBeacon, AltBeacon, Eddystone). A watchdog restarts scanning after a
silence, because BlueZ scans can stall silently (adapter resets, controller hiccups)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from beacons.errors import ScannerUnavailableError
from beacons.sources.base import AdvertisementSink, DetectionCallback

_log = logging.getLogger(__name__)

ScanMode = Literal["active", "passive"]


def passive_patterns(chain_prefix: bytes) -> list[OrPattern]:
    """BlueZ monitor patterns: a 128-bit service UUID is sent little-endian, so the chain prefix
    (the UUID's first 8 bytes) is the *last* 8 bytes of the field, reversed."""
    token = bytes(reversed(chain_prefix))
    return [
        OrPattern(8, AdvertisementDataType.COMPLETE_LIST_SERVICE_UUID128, token),
        OrPattern(8, AdvertisementDataType.INCOMPLETE_LIST_SERVICE_UUID128, token),
        OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\x4c\x00\x02\x15"),
        OrPattern(2, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\xbe\xac"),
        OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xaa\xfe"),
    ]


def explain(exc: BaseException, *, adapter: str | None, mode: ScanMode) -> ScannerUnavailableError:
    """Turn what bleak/BlueZ raise into a message saying what to check."""
    name = adapter or "the default adapter"
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return ScannerUnavailableError(
            "BlueZ is not reachable: there is no D-Bus system bus (/run/dbus/system_bus_socket). "
            "Install and start it (apt install bluez; systemctl start dbus bluetooth), or run "
            "the hub with [beacons] source = 'mqtt' or 'replay'."
        )
    if isinstance(exc, BleakBluetoothNotAvailableError):
        reason = exc.reason
        if reason == BleakBluetoothNotAvailableReason.NO_BLUETOOTH:
            advice = (
                "no Bluetooth adapter at all: plug in the USB Bluetooth adapter; "
                "'bluetoothctl list' must show one"
            )
        elif reason == BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE:
            advice = "the adapter cannot scan Bluetooth LE: use a Bluetooth 4.0 or newer adapter"
        elif reason == BleakBluetoothNotAvailableReason.POWERED_OFF:
            advice = "the adapter is off: check 'rfkill list', then 'bluetoothctl power on'"
        else:
            advice = (
                "BlueZ refused this user: run the hub as a user in the 'bluetooth' group "
                "(sudo usermod -aG bluetooth USER) or as the retail-hub service"
            )
        return ScannerUnavailableError(
            f"Bluetooth is not available on {name} ({reason.name.lower()}): {advice}."
        )
    if isinstance(exc, BleakDBusError) and "ServiceUnknown" in exc.dbus_error:
        return ScannerUnavailableError(
            "bluetoothd is not running (org.bluez is not on the system bus): "
            "systemctl start bluetooth."
        )
    text = str(exc)
    if "not found" in text and "adapter" in text:
        return ScannerUnavailableError(
            f"Bluetooth adapter {name} not found: list adapters with 'bluetoothctl list' and set "
            "[beacons] adapter to one of them (e.g. 'hci0'); is the USB adapter plugged in?"
        )
    if mode == "passive" and ("passive scanning" in text or "UnknownMethod" in text):
        return ScannerUnavailableError(
            f"passive scanning failed ({text}): it needs BlueZ >= 5.56 started with "
            "--experimental and kernel >= 5.10; or set [beacons] scanning_mode = 'active'."
        )
    return ScannerUnavailableError(f"cannot scan on {name}: {text or type(exc).__name__}")


#: How long the hub waits before trying again to start a scan that could not start, doubling
#: up to ``RETRY_MAX_S`` (bluetoothd restarting, an adapter that comes up after the hub).
RETRY_FIRST_S = 5.0
RETRY_MAX_S = 60.0


class BleakSource:
    """Scans with BlueZ and restarts the scan when nothing has been heard for ``watchdog_s``.

    A scan that cannot start raises at once when ``keep_trying`` is off (the ``beacons scan``
    command: a person is watching); the hub keeps trying, with ``error`` saying what is wrong
    meanwhile, since nobody restarts a hub whose other features are serving."""

    def __init__(
        self,
        name: str,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        adapter: str | None = None,
        mode: ScanMode = "passive",
        chain_prefix: bytes = b"",
        watchdog_s: float = 60.0,
        scanner_factory: Callable[..., Any] = BleakScanner,
        keep_trying: bool = False,
    ) -> None:
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self.adapter = adapter
        self.mode = mode
        self._prefix = chain_prefix
        self.watchdog_s = watchdog_s
        self._factory = scanner_factory
        self.keep_trying = keep_trying
        self.restarts = 0
        self.error: ScannerUnavailableError | None = None

    def _make_scanner(self, callback: DetectionCallback) -> Any:
        bluez: dict[str, Any] = {}
        if self.adapter:
            bluez["adapter"] = self.adapter
        if self.mode == "passive":
            bluez["or_patterns"] = passive_patterns(self._prefix)
        try:
            return self._factory(callback, scanning_mode=self.mode, bluez=bluez)
        except BleakError as exc:
            raise explain(exc, adapter=self.adapter, mode=self.mode) from exc

    async def run(self, sink: AdvertisementSink) -> None:
        """Scan until cancelled. Raises ScannerUnavailableError if scanning cannot start."""
        callback = DetectionCallback(self.name, self._clock, sink)
        failures = 0
        while True:
            try:
                scanner = await self._start(callback)
            except ScannerUnavailableError as error:
                if not self.keep_trying:
                    raise
                failures += 1
                wait = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (failures - 1))
                if self.error is None or str(self.error) != str(error):
                    _log.error("cannot scan on %s: %s (trying again)", self.name, error)
                self.error = error
                await self._sleep(wait)
                continue
            if self.error is not None:
                _log.warning("scanning on %s again", self.name)
            self.error, failures = None, 0
            started = self._clock()
            try:
                await self._watch(callback, started)
            finally:
                await asyncio.shield(self._stop(scanner))
            self.restarts += 1
            _log.warning(
                "no advertisement on %s for %.0f s: restarting the scan (restart %d)",
                self.name,
                self.watchdog_s,
                self.restarts,
            )

    async def _start(self, callback: DetectionCallback) -> Any:
        scanner = self._make_scanner(callback)
        try:
            await scanner.start()
        except (BleakError, OSError) as exc:
            raise explain(exc, adapter=self.adapter, mode=self.mode) from exc
        return scanner

    async def _watch(self, callback: DetectionCallback, started: float) -> None:
        """Return when nothing was heard for ``watchdog_s`` (since the scan started)."""
        while True:
            await self._sleep(self.watchdog_s / 4)
            last = max(callback.last_at or started, started)
            if self._clock() - last >= self.watchdog_s:
                return

    @staticmethod
    async def _stop(scanner: Any) -> None:
        try:
            await scanner.stop()
        except (BleakError, OSError) as exc:
            _log.debug("stopping the scanner failed: %s", exc)
