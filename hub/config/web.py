"""The hub's web server: kiosk, staff pages and the HTTP API."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr

from hub.config.base import StrictModel


class WebConfig(StrictModel):
    """Where the web app listens and how staff authenticate. The staff token is read from a file or
    an environment variable so it never sits in the config file or the logs."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port (0 picks a free port).")
    staff_token_file: Path | None = Field(
        default=None,
        description="File holding the staff bearer token (one line, at least 16 characters). "
        "Relative paths are resolved against the config file.",
    )
    staff_token_env: str = Field(
        default="RETAIL_HUB_STAFF_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the staff bearer token, used when "
        "staff_token_file is not set.",
    )
    idle_timeout_s: float = Field(
        default=15.0,
        ge=0.1,
        le=3600.0,
        description="Seconds a connection may stay idle, or take to send a request's header, "
        "before the hub closes it. Bounds connections that send half a request and stop, each "
        "holding a socket and memory; requests being answered, uploads under way and "
        "WebSockets are not affected.",
    )
    max_json_bytes: int = Field(
        default=64 * 1024, ge=1024, le=16 * 1024 * 1024, description="Largest JSON request body."
    )
    max_upload_bytes: int = Field(
        default=12 * 1024 * 1024,
        ge=64 * 1024,
        le=256 * 1024 * 1024,
        description="Largest photo or audio upload.",
    )

    def load_staff_token(self) -> SecretStr | None:
        """The staff token from the file or the environment; None when neither provides one."""
        raw: str | None
        if self.staff_token_file is not None:
            raw = self.staff_token_file.read_text(encoding="utf-8").strip()
        else:
            raw = os.environ.get(self.staff_token_env, "").strip() or None
        if raw is None:
            return None
        if len(raw) < 16:
            raise ValueError("the staff token must be at least 16 characters long")
        return SecretStr(raw)
