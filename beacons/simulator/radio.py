"""The radio channel between a phone and a scanner.

Received power = phone's 1 m power + scanner gain - dual-slope log-distance loss (3-D distance)
- front-wall loss (none through the open door, a ramp over the door edges for diffraction)
- body loss (the wearer between phone and scanner) + shadowing (a spatially correlated random field
per scanner, zero at the scanner itself, so standing still means a fixed offset, not noise that
averages away) + fast fading
(Rician on line of sight, Rayleigh when blocked; independent per advertisement while walking,
slowly changing per advertising channel while standing). Reports below the scanner's sensitivity,
or lost to collisions and scan duty cycle, never arrive."""

from __future__ import annotations

import math

import numpy as np

from beacons.simulator.layout import Layout, ScannerPlacement
from beacons.simulator.phones import Phone
from beacons.simulator.scenario import Physics

GRID_M = 0.25
WAVELENGTH_HALF_M = 0.06  # fast fading decorrelates over half a 2.4 GHz wavelength
FADING_TIME_S = 2.0  # while standing, people moving nearby still stir the channel
CHANNELS = 3


class ShadowField:
    """A Gaussian random field (dB) over the shop and pavement with the store's correlation
    length, built by smoothing white noise in the frequency domain, anchored at its scanner.

    Shadowing is what stands along the path (shelving, fixtures, people), so it is measured
    relative to the scanner's own spot: the difference between the field where the phone is and
    where the scanner is, scaled by 1/sqrt(2). Beyond the correlation length that has the store's
    full ``shadow_sigma_db``; within a metre of the scanner, in line of sight, it is a dB or two,
    since nothing stands in between. Whatever surrounds the adapter itself is its calibration
    (``reference_dbm`` and the scanner gain here, ``rssi_offset_db`` in the engine), which a
    field left unanchored would turn into a 4-8 dB offset on everyone near the scanner."""

    def __init__(
        self,
        layout: Layout,
        physics: Physics,
        scanner: ScannerPlacement,
        rng: np.random.Generator,
    ) -> None:
        self.x0, self.y0 = -40.0, -layout.pavement - 2
        nx = int((layout.width + 80) / GRID_M) + 1
        ny = int((layout.depth + layout.pavement + 4) / GRID_M) + 1
        noise = rng.normal(size=(ny, nx))
        fy = np.fft.fftfreq(ny, d=GRID_M)[:, None]
        fx = np.fft.fftfreq(nx, d=GRID_M)[None, :]
        kernel = np.exp(-2 * (math.pi * physics.shadow_corr_m) ** 2 * (fx**2 + fy**2) / 2)
        smooth = np.real(np.fft.ifft2(np.fft.fft2(noise) * kernel))
        self.grid = smooth / max(float(smooth.std()), 1e-9) * physics.shadow_sigma_db
        anchor = float(self.at(np.array([scanner.x]), np.array([scanner.y]))[0])
        self.grid = (self.grid - anchor) * math.sqrt(0.5)

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Shadowing in dB at the points (nearest grid cell)."""
        ix = np.clip(((x - self.x0) / GRID_M).astype(int), 0, self.grid.shape[1] - 1)
        iy = np.clip(((y - self.y0) / GRID_M).astype(int), 0, self.grid.shape[0] - 1)
        return self.grid[iy, ix]


class Radio:
    """Computes what each scanner receives from a phone along its path."""

    def __init__(self, layout: Layout, physics: Physics, rng: np.random.Generator) -> None:
        self.layout = layout
        self.physics = physics
        self.fields = {s.name: ShadowField(layout, physics, s, rng) for s in layout.scanners}
        self.gain = {
            s.name: float(rng.normal(0, physics.scanner_gain_sd_db)) for s in layout.scanners
        }

    def receive(
        self,
        phone: Phone,
        scanner: ScannerPlacement,
        times: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        heading: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(received mask, integer RSSI) for advertisements sent at ``times`` from (x, y)."""
        p = self.physics
        dx, dy = scanner.x - x, scanner.y - y
        dist = np.sqrt(dx**2 + dy**2 + (scanner.z - phone.height_m) ** 2).clip(min=0.3)
        mean = phone.power_1m_dbm + self.gain[scanner.name] - p.path_loss_db(dist)
        wall = self._wall_loss(x, y, scanner)
        facing = np.cos(np.arctan2(dy, dx) - heading)
        blocked = np.clip(-facing if phone.carried_in_front else facing, 0, 1)
        body = phone.body_loss_db * blocked
        los = (wall + body) < 3.0
        fading = self._fading(times, x, y, los, rng)
        rssi = mean - wall - body + self.fields[scanner.name].at(x, y) + fading
        rssi = np.round(rssi + rng.normal(0, 0.5, len(times))).clip(max=-25)
        received = (rssi >= p.sensitivity_dbm) & (rng.random(len(times)) < p.rx_probability)
        return received, rssi.astype(np.int64)

    def _wall_loss(self, x: np.ndarray, y: np.ndarray, scanner: ScannerPlacement) -> np.ndarray:
        lay = self.layout
        outside = y < 0
        frac = np.where(outside, -y / np.maximum(scanner.y - y, 1e-9), 0.0)
        crossing_x = x + frac * (scanner.x - x)
        edge = np.abs(crossing_x - lay.door_x) - lay.door_width / 2
        ramp = np.clip(edge / 0.4 + 0.5, 0.0, 1.0)
        return np.where(outside, self.physics.wall_loss_db * ramp, 0.0)

    def _fading(
        self,
        times: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        los: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Fast fading in dB (mean power 0 dB) per advertisement, correlated per channel by the
        distance moved and the time elapsed since that channel's previous advertisement."""
        n = len(times)
        if n == 0:
            return np.empty(0)
        k = 10 ** (self.physics.rician_k_db / 10)
        channel = rng.integers(0, CHANNELS, n)
        noise = (rng.normal(size=n) + 1j * rng.normal(size=n)) / math.sqrt(2)
        scatter = np.empty(n, dtype=complex)
        last_t = [-1e9] * CHANNELS
        last_x = [0.0] * CHANNELS
        last_y = [0.0] * CHANNELS
        state = [0j] * CHANNELS
        for i in range(n):
            c = channel[i]
            moved = math.hypot(x[i] - last_x[c], y[i] - last_y[c])
            rho = math.exp(-moved / WAVELENGTH_HALF_M - (times[i] - last_t[c]) / FADING_TIME_S)
            state[c] = rho * state[c] + math.sqrt(1 - rho * rho) * noise[i]
            scatter[i] = state[c]
            last_t[c], last_x[c], last_y[c] = times[i], x[i], y[i]
        kk = np.where(los, k, 0.0)
        amplitude = np.abs(np.sqrt(kk / (kk + 1)) + np.sqrt(1 / (kk + 1)) * scatter)
        return 20 * np.log10(np.maximum(amplitude, 1e-3))
