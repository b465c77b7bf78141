"""Checks requests and responses of the hub's web app against ``docs/openapi.yaml``.

Every test that calls the API through :class:`SpecClient` also proves the spec tells the truth:
a status, field or type the spec does not describe fails the test.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPEC = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
SERVER = "http://127.0.0.1:8080"


@cache
def spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC))


class SpecClient:
    """A test client whose every exchange is validated against the OpenAPI document."""

    def __init__(self, client: TestClient, headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.headers = headers or {}

    async def call(self, method: str, url: str, *, json_body: Any = None, data: bytes | None = None,
                   headers: dict[str, str] | None = None,
                   content_type: str | None = None) -> tuple[ClientResponse, Any]:
        """Send a request, validate the response against the spec and return (response, body)."""
        all_headers = {**self.headers, **(headers or {})}
        body = data
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = content_type or "application/json"
        if content_type:
            all_headers["Content-Type"] = content_type
        response = await self.client.request(method, url, data=body, headers=all_headers)
        raw = await response.read()
        parts = urlsplit(url)
        request = MockRequest(
            SERVER, method, parts.path, args=dict(parse_qsl(parts.query)),
            headers=all_headers, data=body, content_type=content_type or "application/json",
        )
        checked = MockResponse(raw, status_code=response.status,
                               headers=dict(response.headers),
                               content_type=response.content_type)
        spec().validate_response(request, checked)
        parsed = json.loads(raw) if response.content_type == "application/json" else raw
        return response, parsed
