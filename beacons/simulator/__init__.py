"""A simulated store on the air: geometry, crowd, phones and radio, producing an advertisement
trace in the DESIGN.md format with its ground truth. Runs offline; the simulated source replays its
output through the same interface as the real adapter."""

from beacons.simulator.run import Simulation, simulate
from beacons.simulator.scenario import Physics, Scenario

__all__ = ["Physics", "Scenario", "Simulation", "simulate"]
