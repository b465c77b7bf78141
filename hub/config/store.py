"""The store's identity and where its database lives."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from hub.config.base import StrictModel

STORE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: A language code as the catalogue's names are keyed: "en", "ko", "zh-TW".
LANGUAGE_CODE = r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?"


class StoreConfig(StrictModel):
    """Who this store is. The id names its MQTT topic tree and its client id, so it is restricted to
    characters that are safe in both."""

    id: str = Field(
        description="Store id, unique in the chain: lowercase letters, digits, '-' and '_', at "
        "most "
        "64 characters. Used as the MQTT client id and topic segment."
    )
    name: str = Field(min_length=1, max_length=200, description="Display name of the store.")
    timezone: str = Field(
        default="UTC", description="IANA time zone of the store, e.g. 'Europe/Stockholm'."
    )
    currency: str = Field(
        default="SEK",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 currency code of the store's prices.",
    )
    language: str | None = Field(
        default=None,
        description="Language the kiosk starts in and returns to for the next customer, as a "
        "catalogue language code (e.g. 'ko', 'zh-TW'); a language no product has a name in is "
        "passed over. Unset: the language the voice engine hears, so "
        "a customer who asks out loud is understood; else English; else the catalogue's first.",
    )
    database: Path = Field(
        default=Path("var/hub.db"),
        description="SQLite database file. Relative paths are resolved against the config file.",
    )
    disk_reserve_mb: int = Field(
        default=16,
        ge=0,
        le=1024,
        description="Megabytes of the database's disk held back in a file beside it "
        "('<database>.reserve'), given up when `retail-hub run` finds the disk full at start so "
        "the hub still starts, answers the kiosks and shows staff the full disk; made again at a "
        "start with room to spare. 0 holds none.",
    )
    images_dir: Path = Field(
        default=Path("var/images"),
        description="Folder for product images (catalogue and enrolled photos). Relative paths are "
        "resolved against the config file.",
    )

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not STORE_ID_PATTERN.fullmatch(value):
            raise ValueError(
                "store id must be 1-64 characters of lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(LANGUAGE_CODE, value):
            raise ValueError(
                f"{value!r} is not a language code as the catalogue's names are keyed, such as "
                "'en', 'ko' or 'zh-TW'"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Stockholm'"
            ) from exc
        return value
