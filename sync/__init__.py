"""MQTT sync with the online shop: protocol (topics, envelopes, schemas), the hub's outbox/inbox
agent and the reference online-shop service. Never imports ``hub``."""
