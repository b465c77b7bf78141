"""The hub's configuration: one TOML file loaded into strict pydantic models.

Every section lives in its own module (Frigate's ``config/`` layout). ``load_config`` turns every
problem into a :class:`ConfigError` whose lines name the file, the line and the key, so a store
manager can fix a typo without reading a traceback.
"""

from __future__ import annotations

import math
import os
import re
import stat
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
from untrusted.files import read_at_most
from untrusted.settings_types import validate_strictly, wrong_type

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
    except RecursionError:  # tomllib recurses per nested array or inline table: "x=[[[[..."
        raise ConfigError(path, [ConfigProblem(None, "", "nested too deeply")]) from None


def _validated(model: type[M], data: Any, text: str, path: Path, table: tuple[str, ...]) -> M:
    """``data`` (the ``table`` of the file at ``path``) as ``model``, or every problem listed."""
    try:
        return validate_strictly(model, data)
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
    if isinstance(err.get("input"), float) and not math.isfinite(err["input"]):
        # pydantic's own words ("less than or equal to 30") read as a range to widen
        return (
            f"{err['input']!r} is not a number here (NaN and infinity are refused): give a "
            "finite number"
        )
    if err["type"] == "missing":
        return "required setting is missing"
    return wrong_type(err["type"], err.get("input")) or str(err["msg"]).removeprefix(
        "Value error, ")


def _read(path: Path) -> str:
    """The text of the config file at ``path``; a byte-order mark (Windows Notepad writes one)
    is skipped, as by every other reader of the hub's files."""
    try:
        data = read_at_most(path, MAX_CONFIG_BYTES)
        if data is None:
            raise ConfigError(path, [ConfigProblem(None, "", "file is larger than 1 MiB")])
        return data.decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(path, [ConfigProblem(None, "", "file not found")]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, [ConfigProblem(None, "", "file is not UTF-8 text")]) from None
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem(None, "", f"cannot read: {exc.strerror}")]) from None


def load_config(path: Path) -> HubConfig:
    """Read and validate the config file at ``path``."""
    return parse_config(_read(path), path)


def check_config(path: Path) -> tuple[HubConfig, list[ConfigProblem]]:
    """``load_config`` for ``config check``, which also looks at the files the config names:
    the config and what would turn a feature off (a missing model, reference pack or replay
    file), or ConfigError with every problem, a file where the hub's folders belong included.

    Why two kinds: ``run`` starts without a missing model or replay file, turning that feature
    off with an error in its log, so the check says it with the line, as a warning, and the
    service that runs the check before it starts still starts (orders and stock do not wait
    for photo search); a file in the way of the database or images folder stops ``run``."""
    text = _read(path)
    config = parse_config(text, path)
    lines = _key_lines(text)

    def located(found: list[tuple[tuple[str, ...], str]]) -> list[ConfigProblem]:
        return [ConfigProblem(_locate(lines, key), ".".join(key), why) for key, why in found]

    errors = located(_blocked_folders(config))
    if errors:
        raise ConfigError(path, errors)
    return config, located(_missing_files(config))


def _missing_files(config: HubConfig) -> list[tuple[tuple[str, ...], str]]:
    """(setting, what is wrong) for each file or folder a feature that is on cannot find: what
    ``doctor`` reports missing, without loading a model."""
    found: list[tuple[tuple[str, ...], str]] = []

    def need(key: tuple[str, ...], path: Path | None, folder: bool, feature: str) -> None:
        if path is None:
            return
        kind = _kind(path)
        if kind == ("folder" if folder else "file"):
            return
        why = {"missing": "does not exist",
               "hidden": "cannot be looked at by this user (run the check as the hub's user)"
               }.get(kind, f"is not a {'folder' if folder else 'file'}")
        found.append((key, f"{path} {why}: {feature} will be off" if kind != "hidden"
                      else f"{path} {why}"))

    if config.vision.enabled:
        need(("vision", "model_path"), config.vision.model_file, False, "photo search")
        need(("vision", "reference_pack"), config.vision.reference_pack, False, "photo search")
    if config.voice.enabled:
        engine = config.voice.engine
        need(("voice", "engine", "model_dir"), engine.model_dir, True, "voice search")
        if engine.type == "pocketsphinx":
            need(("voice", "engine", "dictionary"), engine.dictionary, False, "voice search")
    if config.beacons.enabled and config.beacons.source == "replay":
        need(("beacons", "replay_file"), config.beacons.replay_file, False, "presence")
    return found


def _blocked_folders(config: HubConfig) -> list[tuple[tuple[str, ...], str]]:
    """(setting, why) for the database and images folder when ``run`` could not make or use
    them: a file stands there, or they are missing where this user may not write (it makes
    the missing ones at its first start)."""
    found = []
    for key, target, folder in (
        (("store", "database"), config.store.database, False),
        (("store", "images_dir"), config.store.images_dir, True),
    ):
        if blocked := _blocked(target, folder):
            found.append((key, blocked))
    return found


def _blocked(path: Path, folder: bool) -> str | None:
    """Why the hub cannot make or use ``path`` (a folder if ``folder``, else a file in its
    folder), which it creates with its folders at the first start: a file in the way, or a
    nearest existing folder this user may not write in. None when it can (or when this user
    may not look: the hub's folder is often closed to others)."""
    kind = _kind(path)
    if kind in ("file", "other") and folder:
        return f"{path} is a file, not a folder"
    if kind == "folder" and not folder:
        return f"{path} is a folder, not a database file"
    if kind != "missing":  # and where this user may not look ("hidden"), not its to judge
        return _unwritable(path if folder else path.parent, folder) if kind != "hidden" else None
    above = path.parent
    while (kind := _kind(above)) == "missing" and above != above.parent:
        above = above.parent
    if kind == "file":
        return f"{above} is a file, so {path} cannot be made"
    if kind == "folder" and not os.access(above, os.W_OK | os.X_OK):
        # run would stop at its first start with "permission denied", after the service had
        # been started on the strength of this check
        made = path if folder else path.parent
        return (f"{path} does not exist and cannot be made: this user may not write in {above}; "
                "run the check as the hub's user, or make the folder for it: sudo install -d "
                f"-o retail-hub -g retail-hub -m 750 {made}")
    return None


def _unwritable(where: Path, images: bool) -> str | None:
    """Why the hub could not write in the existing folder ``where``, or None. Why it matters for
    a database that exists: SQLite writes its journal (-wal, -shm) beside it, so run stopped at
    its first write, after the service had started on the strength of this check."""
    if _kind(where) != "folder" or os.access(where, os.W_OK | os.X_OK):
        return None
    what = "its photos" if images else "its journal (-wal and -shm files) beside the database"
    return (f"this user may not write in {where}, where the hub writes {what}; run the check as "
            f"the hub's user, or give the folder to it: sudo chown retail-hub:retail-hub {where}")


def _kind(path: Path) -> str:
    """"file", "folder", "other", "missing", or "hidden" when this user may not look (a
    folder of another user, mode 700): ``Path.exists`` raises PermissionError there, and
    'config check' ended in a traceback for the normal install checked without sudo."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "missing"  # a file stands in the path: the caller looks further up
    except OSError:
        return "hidden"
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


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
    "check_config",
    "load_config",
    "load_presence",
    "parse_config",
]
