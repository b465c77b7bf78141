"""Independent BLE store simulator and scorer for the presence engine (see sim.py, score.py)."""
