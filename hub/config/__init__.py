"""The hub's configuration: one TOML file loaded into strict pydantic models.

Every section lives in its own module (Frigate's ``config/`` layout). ``load_config`` turns every
problem into a :class:`ConfigError` whose lines name the file, the line and the key, so a store
manager can fix a typo without reading a traceback.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from beacons.settings import PresenceSettings
from hub.config.base import StrictModel
from hub.config.beacons import BeaconsConfig
from hub.config.mqtt import MqttConfig
from hub.config.orders import OrdersConfig
from hub.config.retention import RetentionConfig
from hub.config.store import StoreConfig
from hub.config.vision import VisionConfig
from hub.config.voice import VoiceConfig
from hub.config.web import WebConfig

MAX_CONFIG_BYTES = 1024 * 1024
M = TypeVar("M", bound=BaseModel)


class HubConfig(StrictModel):
    """The whole hub configuration (``hub.toml``)."""

    store: StoreConfig = Field(description="The store's identity, currency and data locations.")
    web: WebConfig = Field(default_factory=WebConfig, description="Web server and staff login.")
    orders: OrdersConfig = Field(
        default_factory=OrdersConfig, description="Click-and-collect order handling."
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Sync with the online shop.")
    beacons: BeaconsConfig = Field(
        default_factory=BeaconsConfig, description="Bluetooth LE arrivals and the beacon fleet."
    )
    vision: VisionConfig = Field(default_factory=VisionConfig, description="Photo search.")
    voice: VoiceConfig = Field(default_factory=VoiceConfig, description="Voice search.")
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig, description="How long old records are kept."
    )


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, located as precisely as the file allows."""

    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class ConfigError(Exception):
    """A config file that cannot be used; ``problems`` lists every fault found."""

    def __init__(self, path: Path, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {path}: {p}" for p in problems)
        super().__init__(f"{path} has {len(problems)} problem(s):\n{lines}")


_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map every dotted key path in a TOML text to the line that defines it (tables included)."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if m := _TABLE.match(line):
            table = tuple(part.strip().strip('"') for part in m.group(1).split("."))
            found.setdefault(table, number)
        elif m := _KEY.match(line):
            found.setdefault((*table, m.group(1)), number)
    return found


def _locate(lines: dict[tuple[str, ...], int], loc: tuple[Any, ...]) -> int | None:
    path = tuple(str(part) for part in loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _resolve_paths(config: HubConfig, base: Path) -> HubConfig:
    """Make relative file paths relative to the config file's folder, not the working directory."""

    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p).resolve()

    config.store.database = fix(config.store.database)  # type: ignore[assignment]
    config.store.images_dir = fix(config.store.images_dir)  # type: ignore[assignment]
    config.web.staff_token_file = fix(config.web.staff_token_file)
    config.mqtt.password_file = fix(config.mqtt.password_file)
    config.mqtt.tls_ca_file = fix(config.mqtt.tls_ca_file)
    config.vision.model_path = fix(config.vision.model_path)
    config.vision.reference_pack = fix(config.vision.reference_pack)
    config.beacons.replay_file = fix(config.beacons.replay_file)
    config.beacons.fleet_file = fix(config.beacons.fleet_file)
    config.beacons.relay_password_file = fix(config.beacons.relay_password_file)
    config.beacons.relay_tls_ca_file = fix(config.beacons.relay_tls_ca_file)
    config.voice.engine.model_dir = fix(config.voice.engine.model_dir)
    if config.voice.engine.type == "pocketsphinx":
        config.voice.engine.dictionary = fix(config.voice.engine.dictionary)
    return config


def parse_config(text: str, path: Path) -> HubConfig:
    """Validate config ``text`` (the contents of ``path``) into a :class:`HubConfig`."""
    config = _validated(HubConfig, _toml(text, path), text, path, ())
    return _resolve_paths(config, path.parent.resolve())


def _toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            path, [ConfigProblem(int(m.group(1)) if m else None, "", f"not valid TOML: {exc}")]
        ) from None


def _validated(model: type[M], data: Any, text: str, path: Path, table: tuple[str, ...]) -> M:
    """``data`` (the ``table`` of the file at ``path``) as ``model``, or every problem listed."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = _key_lines(text)
        problems = []
        for err in exc.errors():
            loc = (*table, *_in_file(data, err["loc"], err["type"] == "missing"))
            problems.append(
                ConfigProblem(_locate(lines, loc), ".".join(str(p) for p in loc), _explain(err))
            )
        raise ConfigError(path, problems) from None


def _in_file(data: Any, loc: tuple[Any, ...], missing: bool) -> tuple[Any, ...]:
    """``loc`` as the file spells it: pydantic puts a tagged union's tag in the path
    (``voice.engine.pocketsphinx.accents``), a key the file does not have; such parts are
    dropped so the message names ``voice.engine.accents`` and the line that sets it (the last
    part stays when it is the ``missing`` setting)."""
    kept: list[Any] = []
    here = data
    for number, part in enumerate(loc):
        if isinstance(here, dict) and part not in here and not (missing and number == len(loc) - 1):
            continue  # a union's tag, not a key
        kept.append(part)
        if isinstance(here, dict):
            here = here.get(part)
        elif isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            here = here[part]
        else:
            here = None
    return tuple(kept)


UNKNOWN_SETTING = (
    "unknown setting (check the spelling; 'retail-hub config reference' lists every setting)"
)


def _explain(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return UNKNOWN_SETTING
    if err["type"] == "missing":
        return "required setting is missing"
    return str(err["msg"]).removeprefix("Value error, ")


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(path, [ConfigProblem(None, "", "file is larger than 1 MiB")])
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [ConfigProblem(None, "", "file not found")]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, [ConfigProblem(None, "", "file is not UTF-8 text")]) from None
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem(None, "", f"cannot read: {exc.strerror}")]) from None


def load_config(path: Path) -> HubConfig:
    """Read and validate the config file at ``path``."""
    return parse_config(_read(path), path)


def load_presence(path: Path) -> PresenceSettings:
    """Only the ``[beacons.presence]`` table of the config file at ``path`` (defaults when it has
    none). Why: ``beacons replay`` and ``eval`` use nothing else, and a file written for them
    alone need not describe a store (``[store]`` id and name); a whole hub.toml reads the same.
    A key or table that is no section of the hub config (``window_s = 1`` at the top, a
    ``[presence]`` table) is refused with its line: skipping it would replay on the defaults
    while the file seems to say otherwise.
    """
    text = _read(path)
    data = _toml(text, path)
    beacons = data.get("beacons", {})
    unknown = [(key,) for key in data if key not in HubConfig.model_fields]
    if isinstance(beacons, dict):
        unknown += [("beacons", key) for key in beacons if key not in BeaconsConfig.model_fields]
    if unknown:
        lines = _key_lines(text)
        raise ConfigError(
            path,
            [
                ConfigProblem(_locate(lines, loc), ".".join(loc), UNKNOWN_SETTING + _hint(loc))
                for loc in unknown
            ],
        )
    presence = beacons.get("presence", {}) if isinstance(beacons, dict) else {}
    return _validated(PresenceSettings, presence, text, path, ("beacons", "presence"))


def _hint(loc: tuple[str, ...]) -> str:
    """Where a presence setting found in the wrong place belongs."""
    if loc[-1] in PresenceSettings.model_fields or loc[-1] == "presence":
        return "; presence settings go in the [beacons.presence] table"
    return ""


__all__ = [
    "ConfigError",
    "ConfigProblem",
    "HubConfig",
    "load_config",
    "load_presence",
    "parse_config",
]
