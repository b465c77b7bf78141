"""``retail-hub doctor``: checks the things a store hub needs from its machine, each failure with
the fix. Features add their own checks to ``CHECKS`` (models, broker, Bluetooth)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import sqlite3
import ssl
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from beacons.errors import BeaconsError
from beacons.fleet import load_fleet
from hub.catalog import LANGUAGES_SQL
from hub.config import HubConfig
from hub.storage import database_files, foreign_file, read_only, refuses_writes
from sync.mqtt_client import BrokerSettings, tls_context
from untrusted.files import read_at_most
from untrusted.json_keys import loads_unique

MIN_FREE_BYTES = 1024**3
#: A model's provenance is a page of JSON; a larger file is not one (and is not read whole).
MAX_PROVENANCE_BYTES = 1024 * 1024
MIN_FREE_FRACTION = 0.05


@dataclass(frozen=True)
class Finding:
    """The outcome of one check: ``status`` is ok, warn or fail; ``fix`` says what to do."""

    check: str
    status: str
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return asdict(self)


Check = Callable[[HubConfig], list[Finding]]


#: The fix when the hub's files belong to another user (a command run with sudo made them).
CHOWN_FIX = ("give the hub's files back to the user it runs as: sudo chown -R retail-hub: "
             "/var/lib/retail-hub && sudo chmod -R u+rwX /var/lib/retail-hub (and run commands "
             "as that user: sudo -u retail-hub ...); nothing is damaged")


def _hub_files(config: HubConfig) -> list[Path]:
    """What the hub writes: its database with its folder and WAL files, and the images folder
    with its product folders."""
    images = config.store.images_dir
    try:
        folders = sorted(p for p in images.iterdir() if p.is_dir()) if images.is_dir() else []
    except OSError:
        folders = []
    return [*database_files(config.store.database), images, *folders]


def check_disk(config: HubConfig) -> list[Finding]:
    folder = config.store.database.parent
    while not folder.exists():
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    free_gib = usage.free / 1024**3
    detail = f"{free_gib:.1f} GiB free of {usage.total / 1024**3:.1f} GiB at {folder}"
    foreign = foreign_file(_hub_files(config))
    if foreign is not None:
        return [Finding("disk", "fail", f"{foreign} ({detail})", CHOWN_FIX)]
    refused = refuses_writes(folder)
    if refused is not None:
        return [Finding("disk", "fail", f"{folder}: {refused} ({detail})",
                        "the kernel turns a filesystem read-only after a disk error: see "
                        "'sudo dmesg | grep -i -e ext4 -e mmc', check the SD card with fsck from "
                        "another computer or replace it; the database may well be intact")]
    if usage.free < MIN_FREE_BYTES or usage.free / usage.total < MIN_FREE_FRACTION:
        return [Finding("disk", "fail", detail,
                        "free space on the SD card: delete old backups or logs "
                        "(journalctl --vacuum-size=100M), or move the database to a bigger disk")]
    return [Finding("disk", "ok", detail)]


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """The store's database opened read-only: doctor must not change what it examines."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def check_database(config: HubConfig) -> list[Finding]:
    path = config.store.database
    if not path.exists():
        return [Finding("database", "warn", f"{path} does not exist yet",
                        "it is created by the first 'retail-hub run' or 'catalog import'")]
    try:
        with _read_only(path) as conn:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    except sqlite3.Error as exc:
        foreign = foreign_file(database_files(path))
        if foreign is not None:  # not damaged: the advice to restore would lose the changes since
            return [Finding("database", "fail", f"{path} cannot be opened: {foreign}", CHOWN_FIX)]
        if read_only(path):  # WAL needs its shared-memory file: nothing is wrong with this one
            return [Finding("database", "warn", f"{path} cannot be checked on a read-only "
                            f"filesystem ({exc})", "see the disk finding first")]
        return [Finding("database", "fail", f"{path}: {exc}",
                        "restore the latest backup with 'retail-hub restore'")]
    if result != "ok":
        return [Finding("database", "fail", f"{path}: integrity check says {result}",
                        "stop the hub and restore the latest backup with 'retail-hub restore'")]
    if mode != "wal":
        return [Finding("database", "warn", f"{path}: journal mode {mode}",
                        "start the hub once; it switches the database to WAL")]
    return [Finding("database", "ok", f"{path}: integrity ok, WAL")]


def check_kiosk_language(config: HubConfig) -> list[Finding]:
    """store.language names the kiosk's first language; the kiosk passes over one that no
    product has a name in without a word, so it is said here."""
    wanted, path = config.store.language, config.store.database
    if wanted is None or not path.exists():
        return []
    try:
        with _read_only(path) as conn:
            languages = [row[0] for row in conn.execute(LANGUAGES_SQL)]
    except sqlite3.Error:
        return []  # check_database says what is wrong with the database
    if wanted in languages:
        return [Finding("kiosk language", "ok", f"the kiosk starts in {wanted}")]
    return [Finding("kiosk language", "warn",
                    f"store.language = {wanted!r}, but no product has a name in it (the "
                    f"catalogue's languages: {', '.join(languages) or 'none yet'}), so the "
                    "kiosk starts in another",
                    f"import the products' {wanted} names (a name_{wanted} column) or set "
                    "store.language to one of the catalogue's languages")]


def check_clock(_config: HubConfig) -> list[Finding]:
    """Reservations, tokens and presence all need the right time; a Pi has no battery clock."""
    if shutil.which("timedatectl"):
        result = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                                capture_output=True, text=True, timeout=10)
        if result.returncode == 0 and result.stdout.strip() in ("yes", "no"):
            if result.stdout.strip() == "yes":
                return [Finding("clock", "ok", "synchronised by NTP")]
            return [Finding("clock", "fail", "the clock is not synchronised",
                            "enable time sync: sudo timedatectl set-ntp true (and allow NTP, "
                            "UDP 123, through the store's firewall)")]
    if Path("/run/systemd/timesync/synchronized").exists():
        return [Finding("clock", "ok", "synchronised by systemd-timesyncd")]
    if shutil.which("chronyc"):
        result = subprocess.run(["chronyc", "tracking"], capture_output=True, text=True,
                                timeout=10)
        if "Leap status     : Normal" in result.stdout:
            return [Finding("clock", "ok", "synchronised by chrony")]
    return [Finding("clock", "warn", "cannot tell whether the clock is synchronised",
                    "install systemd-timesyncd or chrony so shopper tokens and pickup windows "
                    "use the right time")]


def check_bluetooth(config: HubConfig) -> list[Finding]:
    """Adapter present, BlueZ new enough for passive scanning, kernel new enough."""
    beacons = config.beacons
    if not beacons.enabled or beacons.source != "bleak":
        why = "beacons are off" if not beacons.enabled else f"beacons.source = {beacons.source!r}"
        return [Finding("bluetooth", "ok", f"no adapter needed ({why})")]
    adapters = sorted(p.name for p in Path("/sys/class/bluetooth").glob("hci*"))
    findings = []
    if not adapters:
        findings.append(Finding("bluetooth", "fail", "no Bluetooth adapter found",
                                "plug in the USB Bluetooth adapter (the Pi's onboard UART adapter "
                                "drops advertisements under load) and check 'hciconfig -a'"))
    elif beacons.adapter and beacons.adapter not in adapters:
        findings.append(Finding("bluetooth", "fail", f"beacons.adapter = {beacons.adapter!r} is "
                                f"not here (adapters: {', '.join(adapters)})",
                                "set beacons.adapter to one of them, or leave it unset for the "
                                "default; is the USB adapter plugged in?"))
    else:
        findings.append(Finding("bluetooth", "ok", f"adapters: {', '.join(adapters)}"))
    passive = beacons.scanning_mode == "passive"
    version = _bluez_version()
    if version is None:
        findings.append(Finding("bluez", "fail", "BlueZ (bluetoothd) is not installed",
                                "sudo apt-get install bluez"))
    elif not passive:
        findings.append(Finding("bluez", "ok", f"BlueZ {version[0]}.{version[1]} (active "
                                "scanning)"))
    elif version < (5, 56):
        findings.append(Finding("bluez", "warn", f"BlueZ {version[0]}.{version[1]}: no passive "
                                "scanning", "upgrade to BlueZ 5.56 or newer (Raspberry Pi OS "
                                "bookworm has it), or set beacons.scanning_mode = 'active'"))
    else:
        experimental = _bluetoothd_has_experimental()
        findings.append(Finding(
            "bluez", "ok" if experimental else "warn",
            f"BlueZ {version[0]}.{version[1]}"
            + ("" if experimental else "; bluetoothd runs without --experimental"),
            None if experimental else "passive scanning needs bluetoothd --experimental: add it "
            "to ExecStart in a drop-in for bluetooth.service",
        ))
    kernel = tuple(int(x) for x in re.findall(r"\d+", platform.release())[:2])
    if passive and kernel < (5, 10):
        findings.append(Finding("kernel", "warn", f"kernel {platform.release()}",
                                "passive scanning needs Linux 5.10 or newer"))
    return findings


def _bluez_version() -> tuple[int, int] | None:
    for binary in ("bluetoothd", "/usr/libexec/bluetooth/bluetoothd",
                   "/usr/lib/bluetooth/bluetoothd"):
        path = shutil.which(binary) or (binary if os.access(binary, os.X_OK) else None)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
            m = re.search(r"(\d+)\.(\d+)", out.stdout)
            if m:
                return int(m.group(1)), int(m.group(2))
    return None


def _bluetoothd_has_experimental() -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"bluetoothd"):
            return any(a in (b"-E", b"--experimental") for a in args)
    return False


def check_broker(config: HubConfig) -> list[Finding]:
    """Reach the broker, verify its TLS certificate and log in, as the hub would."""
    mqtt = config.mqtt
    if not mqtt.enabled:
        return [Finding("broker", "ok", "sync is off (mqtt.enabled = false); the outbox keeps "
                        "every change until it is turned on")]
    try:
        settings = mqtt.broker_settings(f"{config.store.id}-doctor")
    except (OSError, UnicodeDecodeError) as exc:  # missing, unreadable, not text
        return [Finding("broker", "fail", f"cannot read mqtt.password_file: {exc}",
                        "point mqtt.password_file at the file with the store's broker password")]
    return [_broker_login("broker", settings, "mqtt.", "what the chain issued for this store",
                          "the hub keeps queueing meanwhile")]


def check_relay_broker(config: HubConfig) -> list[Finding]:
    """The relay nodes' broker (beacons.source = 'mqtt'), checked as the relay source logs in."""
    beacons = config.beacons
    if not beacons.enabled or beacons.source != "mqtt":
        return []
    try:
        password = beacons.relay_password()
    except (OSError, UnicodeDecodeError) as exc:  # missing, unreadable, not text
        return [Finding("relay broker", "fail", f"cannot read beacons.relay_password_file: {exc}",
                        "point beacons.relay_password_file at the file with the hub's password "
                        "on the relay nodes' broker")]
    settings = BrokerSettings(
        host=beacons.relay_host, port=beacons.relay_port, client_id=f"hub-{config.store.id}-doctor",
        protocol="3.1.1", username=beacons.relay_username, password=password,
        ca_file=beacons.relay_tls_ca_file,
    )
    return [_broker_login("relay broker", settings, "beacons.relay_", "the relay broker's users",
                          "no member is seen arriving meanwhile")]


def _broker_login(check: str, settings: BrokerSettings, prefix: str, issuer: str,
                  meanwhile: str) -> Finding:
    """Reach a broker and log in; ``prefix`` names its settings (``mqtt.``, ``beacons.relay_``)
    in the fixes, ``issuer`` where its credentials come from."""
    where = f"{settings.host}:{settings.port}"
    try:
        with socket.create_connection((settings.host, settings.port),
                                      timeout=settings.connect_timeout_s):
            pass
    except OSError as exc:
        return Finding(check, "fail", f"cannot reach {where}: {exc.strerror or exc}",
                       f"check {prefix}host and {prefix}port and that the store's network allows "
                       f"the connection; {meanwhile}")
    outcome = _mqtt_login(settings)
    if outcome is not None:
        return Finding(check, "fail", f"{where}: {outcome}",
                       f"check {prefix}username, {prefix}password_file and {prefix}tls_ca_file "
                       f"against {issuer}")
    if settings.ca_file is None and settings.host not in ("127.0.0.1", "localhost", "::1"):
        return Finding(check, "warn", f"{where}: login accepted without TLS",
                       f"set {prefix}tls_ca_file so the store's traffic is encrypted")
    tls = "TLS verified, " if settings.ca_file else "no TLS, "
    return Finding(check, "ok", f"{where}: {tls}login accepted")


def _mqtt_login(settings: BrokerSettings) -> str | None:
    """Connect and wait for CONNACK; None when the broker accepted, else why not."""
    v5 = settings.protocol == "5"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    answer: list[str | None] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answer.append(
        None if not reason.is_failure else f"the broker refused the login: {reason}")
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    try:
        if settings.ca_file is not None:
            client.tls_set_context(tls_context(settings.ca_file))  # as the link itself does
        client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
        deadline = time.monotonic() + settings.connect_timeout_s
        while not answer and time.monotonic() < deadline:
            client.loop(timeout=0.2)
    # a plain listener ending TLS (SSLZeroReturnError on Debian's Python 3.11.2)
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
        hint = "; if it listens without TLS, use its TLS port" if settings.ca_file else ""
        return f"connection failed: {exc}{hint}"
    except (OSError, ssl.SSLError) as exc:
        return f"connection failed: {exc}"
    finally:
        client.disconnect()
    if not answer:
        return "no answer to the MQTT login (is it an MQTT broker?)"
    return answer[0]


def check_models(config: HubConfig) -> list[Finding]:
    """The photo model matches the sha256 of its provenance; the speech model loads; noisy
    questions get the noise suppression configured; the kiosk's answers can be read aloud."""
    return [*_vision_model(config), *_voice_model(config), *_noise_suppression(config),
            *_answer_speech(config)]


def _noise_suppression(config: HubConfig) -> list[Finding]:
    from voice import rnnoise

    if not config.voice.enabled:
        return []
    if config.voice.noise_suppression == "spectral":
        return [Finding("noise suppression", "ok", "spectral (voice.noise_suppression)")]
    why = rnnoise.problem()
    if why is not None:
        return [Finding("noise suppression", "warn", f"{why}: noisy questions get the spectral "
                        "suppression, which answers fewer of them right in hiss",
                        "make setup (x86_64 and aarch64 only), or set "
                        "voice.noise_suppression = 'spectral' to silence this")]
    return [Finding("noise suppression", "ok", f"RNNoise ({rnnoise.library_path()})")]


def _answer_speech(config: HubConfig) -> list[Finding]:
    if not config.voice.speak_answers:
        return [Finding("spoken answers", "ok", "off (voice.speak_answers = false)")]
    if shutil.which("espeak-ng") is None:
        return [Finding("spoken answers", "warn", "espeak-ng is not installed: the kiosk's "
                        "answers are shown but not read aloud", "sudo apt-get install espeak-ng")]
    return [Finding("spoken answers", "ok", "espeak-ng reads the kiosk's answers aloud")]


def _vision_model(config: HubConfig) -> list[Finding]:
    # only when checked: numpy and onnxruntime stay unloaded otherwise
    from vision.embedder import OnnxEmbedder, file_sha256
    from vision.errors import VisionError

    if not config.vision.enabled:
        return [Finding("vision model", "ok", "photo search is off")]
    model = config.vision.model_file
    rebuild = ("restore the model file from the release, or rebuild it with 'retail-hub vision "
               "train' and point vision.model_path at it")
    if not model.is_file():
        return [Finding("vision model", "fail", f"{model} is missing", rebuild)]
    provenance = model.with_suffix(".json")
    digest = file_sha256(model)
    if provenance.is_file():
        try:
            raw = read_at_most(provenance, MAX_PROVENANCE_BYTES)
            if raw is None:
                raise ValueError(f"larger than {MAX_PROVENANCE_BYTES // 1024} kB, no provenance "
                                 "file is")
            expected = loads_unique(raw.decode("utf-8"))["sha256"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return [Finding("vision model", "fail", f"{provenance} cannot be read: {exc}",
                            rebuild)]
        if digest != expected:
            return [Finding("vision model", "fail", f"{model.name}: sha256 {digest[:12]}... but "
                            f"its provenance says {str(expected)[:12]}... (damaged or replaced)",
                            rebuild)]
    try:  # as the hub loads it: a file that is not a model fails here, not only at start
        OnnxEmbedder(model, 1, config.vision.max_pixels)
    except VisionError as exc:
        return [Finding("vision model", "fail", f"{model.name} cannot be loaded: {exc}", rebuild)]
    if not provenance.is_file():
        return [Finding("vision model", "warn", f"{model.name}: sha256 {digest[:12]}..., no "
                        f"provenance file {provenance.name}",
                        "keep the provenance JSON that 'retail-hub vision train' writes beside "
                        "the model, so a changed file can be told from the one measured")]
    return [Finding("vision model", "ok", f"{model.name}: sha256 matches its provenance")]


def _voice_model(config: HubConfig) -> list[Finding]:
    from hub.voice_search import open_configured_engine
    from voice.engine import EngineError
    from voice.engines import expected_language

    if not config.voice.enabled:
        return [Finding("voice model", "ok", "voice search is off")]
    settings = config.voice.engine
    try:
        engine = open_configured_engine(config.voice)
    except (EngineError, ValueError, OSError) as exc:  # ModelLayoutError is a ValueError
        fix = ("install the model with 'retail-hub voice install-model' and set "
               "voice.engine.model_dir" if settings.type == "vosk" else
               "do what the message says in [voice.engine]")
        return [Finding("voice model", "fail", str(exc),
                        f"{fix}, or turn voice off (voice.enabled = false)")]
    loaded = Finding("voice model", "ok", f"{settings.type} model loads "
                     f"(language {engine.language})")
    named = expected_language(settings.type, settings.model_dir, settings.language)
    if named is None and config.store.language is None:
        # the kiosk asks for its language as the hub starts, before the model has loaded
        return [loaded, Finding(
            "voice language", "warn",
            f"{settings.model_dir} does not name its language, so for the seconds the model "
            "loads the kiosk starts in English",
            f"set voice.engine.language = '{engine.language}' (or store.language)")]
    return [loaded]


def check_fleet(config: HubConfig) -> list[Finding]:
    """The beacon fleet file the hub reads at start (with beacons on), as ``config check``."""
    path = config.beacons.fleet_file
    if not config.beacons.enabled or path is None:
        return []
    try:
        fleet = load_fleet(path)
    except BeaconsError as exc:
        return [Finding("fleet", "fail", str(exc),
                        "fix the file ('retail-hub beacons validate FILE' lists every problem) "
                        "or unset beacons.fleet_file")]
    return [Finding("fleet", "ok",
                    f"{path}: {len(fleet.beacons)} beacons, {len(fleet.scanners)} scanners")]


def check_secret_files(config: HubConfig) -> list[Finding]:
    """The staff token and broker passwords give staff powers and the store's sync: a file any
    user of the hub can read (a copy made with the default umask) is said, with the fix."""
    secrets = {"web.staff_token_file": config.web.staff_token_file,
               "mqtt.password_file": config.mqtt.password_file,
               "beacons.relay_password_file": config.beacons.relay_password_file}
    findings = []
    for name, path in secrets.items():
        try:
            mode = path.stat().st_mode if path is not None else 0
        except OSError:
            continue  # missing or unreadable: the check that reads it says so
        if mode & 0o007:
            findings.append(Finding(
                "secret files", "warn", f"{name} {path} can be read by every user of this "
                f"machine (mode {stat.filemode(mode)})",
                f"sudo chown root:retail-hub {path} && sudo chmod 640 {path}"))
    if not findings and any(secrets.values()):
        return [Finding("secret files", "ok", "readable by their owner and group only")]
    return findings


#: Every check ``retail-hub doctor`` runs, in order; features append theirs.
CHECKS: list[Check] = [check_disk, check_database, check_kiosk_language, check_clock,
                       check_broker, check_bluetooth, check_relay_broker, check_fleet,
                       check_models, check_secret_files]


def run_checks(config: HubConfig, checks: list[Check] | None = None) -> list[Finding]:
    findings = []
    for check in checks if checks is not None else CHECKS:
        try:
            findings.extend(check(config))
        except Exception as exc:  # noqa: BLE001 - a broken check is itself a finding
            findings.append(Finding(check.__name__.removeprefix("check_"), "fail",
                                    f"the check itself failed: {exc}", None))
    return findings
