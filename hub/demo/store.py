"""Setting up the demo store: a config, a staff token and the demo catalogue in a data folder."""

from __future__ import annotations

import secrets
from pathlib import Path

from hub.catalog import ImportReport
from hub.config import HubConfig, load_config
from hub.services import build_services

CATALOG = Path(__file__).parent / "catalog.json"
IMAGES = Path(__file__).parent / "images"

DEMO_CONFIG = """\
# Demo store written by 'retail-hub demo'. Edit freely; it is kept between runs.
[store]
id = "demo-stockholm"
name = "Demo Market Stockholm"
timezone = "Europe/Stockholm"
currency = "SEK"
database = "hub.db"
images_dir = "images"

[web]
host = "127.0.0.1"
port = {port}
staff_token_file = "staff-token"
"""


def prepare_demo(data_dir: Path, port: int) -> tuple[HubConfig, ImportReport]:
    """Write the demo config and token once, import the demo catalogue (idempotent)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config_file = data_dir / "hub.toml"
    if not config_file.exists():
        config_file.write_text(DEMO_CONFIG.format(port=port), encoding="utf-8")
    token_file = data_dir / "staff-token"
    if not token_file.exists():
        token_file.touch(mode=0o600)
        token_file.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
    config = load_config(config_file)
    config.web.port = port
    services = build_services(config)
    try:
        report = services.catalog.import_file(CATALOG, IMAGES)
    finally:
        services.close()
    return config, report
