"""The reference online-shop service: consumes every store's events over MQTT into its own
SQLite replica, sends orders and member keys to stores as commands, and serves the mini-program's
HTTP API. Run it with ``retail-hub shop --config shop.toml``."""
