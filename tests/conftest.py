"""Fixtures every test area shares: a fresh hub (config, database, services) on temp files, the
aiohttp test client, and the staff token. Area-specific fixtures live in each area's conftest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from hub.clock import ManualClock
from hub.config import HubConfig
from hub.services import Services, build_services
from hub.web.app import create_app

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
GROCERY = SHARED / "datasets" / "grocery"
STAFF_TOKEN = "test-staff-token-0123456789"


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def grocery_dir() -> Path:
    """The Grocery Store dataset beside the checkout (CI has ../shared beside the clone)."""
    assert (GROCERY / "classes.csv").is_file(), f"dataset missing at {GROCERY}"
    return GROCERY


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., HubConfig]:
    """Build a config on temp files; keyword sections override the defaults."""
    token_file = tmp_path / "staff-token"
    token_file.write_text(STAFF_TOKEN + "\n")

    def make(**sections: dict[str, Any]) -> HubConfig:
        data: dict[str, Any] = {
            "store": {"id": "test-store", "name": "Test Store",
                      "database": str(tmp_path / "hub.db"), "images_dir": str(tmp_path / "img")},
            "web": {"host": "127.0.0.1", "port": 0, "staff_token_file": str(token_file)},
        }
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        return HubConfig.model_validate(data)

    return make


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def services(make_config: Callable[..., HubConfig], clock: ManualClock) -> Iterator[Services]:
    """Core services only (no optional features) on a fresh database and a manual clock."""
    svc = build_services(make_config(), clock, with_features=False)
    yield svc
    svc.close()


@pytest.fixture
def catalog_rows() -> list[tuple[int, dict[str, Any]]]:
    """A small catalogue: three products with stock."""
    return [
        (1, {"sku": "OAT-1", "names": {"en": "Oat milk"}, "aliases": {"en": ["oat drink"]},
             "category": "Dairy", "price": "19.90", "shelf": "C1", "stock": 10}),
        (2, {"sku": "BAN-1", "names": {"en": "Banana", "ko": "바나나"}, "category": "Fruit",
             "price": "2.50", "shelf": "A1", "stock": 40}),
        (3, {"sku": "APL-1", "names": {"en": "Granny Smith apple"}, "category": "Fruit",
             "price": "4.00", "shelf": "A2", "stock": 0}),
    ]


@pytest.fixture
def stocked(services: Services, catalog_rows: list[tuple[int, dict[str, Any]]],
            tmp_path: Path) -> Services:
    """Services with the small catalogue imported."""
    report = services.catalog.import_rows(catalog_rows, tmp_path)
    assert not report.rejected
    return services


@pytest_asyncio.fixture
async def client(stocked: Services) -> AsyncIterator[TestClient]:
    """An aiohttp test client on the web app of the stocked hub."""
    stocked.bus.bind(asyncio.get_running_loop())
    async with TestClient(TestServer(create_app(stocked))) as test_client:
        yield test_client


@pytest.fixture
def staff() -> dict[str, str]:
    return {"Authorization": f"Bearer {STAFF_TOKEN}"}
