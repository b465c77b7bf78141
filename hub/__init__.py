"""The in-store hub: the composition root that owns the database and wires beacons, vision, voice
and sync together behind one web app and one CLI."""
