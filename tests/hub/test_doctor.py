"""`retail-hub doctor`: real checks on this machine, each failure with a fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import HubConfig
from hub.doctor import (
    check_bluetooth,
    check_broker,
    check_database,
    check_disk,
    check_fleet,
    check_kiosk_language,
    check_secret_files,
    run_checks,
)
from hub.services import build_services
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_database_states(make_config) -> None:
    config: HubConfig = make_config()
    assert check_database(config)[0].status == "warn"
    build_services(config, with_features=False).close()
    assert check_database(config)[0].status == "ok"
    data = bytearray(config.store.database.read_bytes())
    data[5000:9000] = b"\xa5" * 4000
    config.store.database.write_bytes(bytes(data))
    for side in ("-wal", "-shm"):
        config.store.database.with_name(config.store.database.name + side).unlink(missing_ok=True)
    finding = check_database(config)[0]
    assert finding.status == "fail" and "restore" in (finding.fix or "")


def test_a_kiosk_language_without_names_is_said(make_config, catalog_rows, tmp_path) -> None:
    """Why: store.language = 'zh' on a catalogue without Chinese names was passed over by the
    kiosk without a word anywhere."""
    config: HubConfig = make_config(store={"language": "zh"})
    assert check_kiosk_language(config) == []  # no database yet: check_database says so
    services = build_services(config, with_features=False)
    assert not services.catalog.import_rows(catalog_rows, tmp_path).rejected
    services.close()
    (finding,) = check_kiosk_language(config)
    assert (finding.status, finding.detail) == ("warn", "store.language = 'zh', but no product "
                                                "has a name in it (the catalogue's languages: "
                                                "en, ko), so the kiosk starts in another")
    config.store.language = "ko"
    assert [(f.status, f.detail) for f in check_kiosk_language(config)] == [
        ("ok", "the kiosk starts in ko")]


def test_every_failure_has_a_fix(make_config) -> None:
    findings = run_checks(make_config())
    assert {f.check for f in findings} >= {"disk", "database", "clock", "bluetooth"}
    assert all(f.fix for f in findings if f.status != "ok")
    assert check_disk(make_config())[0].status in ("ok", "fail")


def test_broken_check_is_reported_not_raised(make_config) -> None:
    def check_exploding(_config: HubConfig) -> list:
        raise OSError("sensor unplugged")

    findings = run_checks(make_config(), [check_exploding])
    assert findings[0].check == "exploding" and "sensor unplugged" in findings[0].detail


def test_doctor_command_json(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[store]\nid = "doc"\nname = "Doc"\ndatabase = "hub.db"\n')
    result = subprocess.run([sys.executable, "-m", "hub.cli", "doctor", "--json", "--config",
                             str(config)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    findings = json.loads(result.stdout)
    failed = any(f["status"] == "fail" for f in findings)
    assert result.returncode == (1 if failed else 0)
    assert {"check", "status", "detail", "fix"} <= set(findings[0])


def test_broker_reachable_refused_and_absent(make_config, tmp_path: Path) -> None:
    assert check_broker(make_config())[0].status == "ok"  # sync off
    open_broker = Mosquitto(tmp_path / "open")
    locked = Mosquitto(tmp_path / "locked", "listener {port} 127.0.0.1\nallow_anonymous false\n")
    open_broker.start()
    locked.start()
    try:
        ok = check_broker(make_config(mqtt={"enabled": True, "port": open_broker.port}))[0]
        assert ok.status == "ok" and "login accepted" in ok.detail
        refused = check_broker(make_config(mqtt={"enabled": True, "port": locked.port}))[0]
        assert refused.status == "fail" and "refused" in refused.detail
        assert "password_file" in (refused.fix or "")
    finally:
        open_broker.stop()
        locked.stop()
    absent = check_broker(make_config(mqtt={"enabled": True, "port": free_port()}))[0]
    assert absent.status == "fail" and "cannot reach" in absent.detail


def test_bluetooth_is_checked_only_when_scanning(make_config) -> None:
    finding = check_bluetooth(make_config())[0]
    assert finding.status == "ok" and "no adapter needed" in finding.detail


def test_fleet_file_is_checked_when_the_hub_would_read_it(make_config, tmp_path: Path) -> None:
    """Why: doctor said all was well on a config whose fleet file stopped the hub at start."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("beacons: []\nbeacons: []\n")
    beacons = {"enabled": True, "source": "simulate", "fleet_file": str(fleet)}
    (finding,) = check_fleet(make_config(beacons=beacons))
    assert finding.status == "fail" and "given twice" in finding.detail and finding.fix
    assert check_fleet(make_config(beacons={**beacons, "enabled": False})) == []
    fleet.write_text("beacons: []\n")
    assert check_fleet(make_config(beacons=beacons))[0].status == "ok"


def test_a_provenance_that_gives_the_sha256_twice_or_is_huge_is_refused(
        make_config, tmp_path: Path) -> None:
    """Why: the last of two sha256 keys was compared, where a reader taking the first (a
    person, another tool) saw another digest: the check said ok for a file nobody vouched for."""
    from hub.config.vision import PACKAGED_MODEL
    from hub.doctor import check_models
    from vision.embedder import file_sha256

    copy = tmp_path / "model.onnx"
    copy.write_bytes(PACKAGED_MODEL.read_bytes())
    (tmp_path / "model.json").write_text(
        f'{{"sha256": "{"0" * 64}",\n "sha256": "{file_sha256(copy)}"}}')
    vision, *_ = check_models(make_config(vision={"model_path": str(copy)},
                                          voice={"enabled": False}))
    assert (vision.status, vision.detail) == (
        "fail", f'{tmp_path / "model.json"} cannot be read: the key "sha256" appears twice in '
        "one object")
    (tmp_path / "model.json").write_text(" " * (2 * 1024 * 1024))
    vision, *_ = check_models(make_config(vision={"model_path": str(copy)},
                                          voice={"enabled": False}))
    assert (vision.status, vision.detail) == (
        "fail", f'{tmp_path / "model.json"} cannot be read: larger than 1024 kB, no provenance '
        "file is")


def test_model_checks_catch_a_changed_photo_model_and_a_missing_speech_model(
        make_config, tmp_path: Path) -> None:
    from hub.config.vision import PACKAGED_MODEL
    from hub.doctor import check_models

    config: HubConfig = make_config(voice={"enabled": False})
    assert [f.status for f in check_models(config)] == ["ok", "ok", "ok"]  # the shipped model
    copy = tmp_path / "model.onnx"
    data = bytearray(PACKAGED_MODEL.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte
    copy.write_bytes(bytes(data))
    (tmp_path / "model.json").write_text(PACKAGED_MODEL.with_suffix(".json").read_text())
    changed = make_config(vision={"model_path": str(copy)},
                          voice={"engine": {"type": "vosk",
                                            "model_dir": str(tmp_path / "no-model")}})
    vision, voice, noise, speech = check_models(changed)
    assert vision.status == "fail" and "provenance" in vision.detail and vision.fix
    (tmp_path / "model.json").unlink()  # no provenance to compare: loading it tells
    broken, *_ = check_models(changed)
    assert broken.status == "fail" and "model.onnx cannot be loaded" in broken.detail
    copy.write_bytes(PACKAGED_MODEL.read_bytes())
    assert check_models(changed)[0].status == "warn"  # a model, but not the one measured
    assert voice.status == "fail" and "install-model" in (voice.fix or "")
    assert noise.status == "ok" and "librnnoise.so" in noise.detail  # make setup installs it
    assert speech.detail == "espeak-ng reads the kiosk's answers aloud"


def test_doctor_says_to_name_the_language_of_a_vosk_model_whose_folder_does_not(
        make_config, tmp_path: Path) -> None:
    """Why: a kiosk that starts with the hub asks for its language before a Vosk model in a
    folder such as 'model' has loaded, and started in English in a Korean store."""
    from hub.doctor import _voice_model
    from voice.vosk_model import packaged_korean_model

    packaged = packaged_korean_model()
    assert packaged is not None
    (tmp_path / "model").symlink_to(packaged, target_is_directory=True)
    config: HubConfig = make_config(voice={"engine": {"type": "vosk",
                                                      "model_dir": str(tmp_path / "model")}})
    loaded, language = _voice_model(config)
    assert loaded.status == "ok" and "language ko" in loaded.detail
    assert language.status == "warn" and language.fix is not None
    assert "voice.engine.language = 'ko'" in language.fix
    named = make_config(voice={"engine": {"type": "vosk", "language": "ko",
                                          "model_dir": str(tmp_path / "model")}})
    assert [f.status for f in _voice_model(named)] == ["ok"]
    chosen = make_config(store={"language": "ko"},  # the kiosk starts in the store's choice
                         voice={"engine": {"type": "vosk", "model_dir": str(tmp_path / "model")}})
    assert [f.status for f in _voice_model(chosen)] == ["ok"]


def test_doctor_tells_a_pocketsphinx_store_without_espeak_ng_to_fix_its_accents(
        make_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Why: the fix line spoke of installing a Vosk model to a store whose English engine
    failed only because espeak-ng, needed for its accents, was missing."""
    from hub.doctor import _voice_model

    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng
    config = make_config(voice={"engine": {"type": "pocketsphinx", "accents": ["en-gb"]}})
    (failed,) = _voice_model(config)
    assert failed.status == "fail" and "apt-get install espeak-ng" in failed.detail
    assert failed.fix is not None and "install-model" not in failed.fix


def test_doctor_says_when_the_noise_suppression_library_is_missing(
        make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.doctor import check_models
    from voice import rnnoise

    monkeypatch.setattr(rnnoise, "library_path", lambda: None)  # no wheel here
    monkeypatch.setattr(rnnoise, "_load", rnnoise._load.__wrapped__)  # uncached
    noise = check_models(make_config())[2]
    assert noise.status == "warn" and "not installed" in noise.detail
    assert "make setup" in noise.fix and "spectral" in noise.fix
    spectral = check_models(make_config(voice={"noise_suppression": "spectral"}))[2]
    assert (spectral.check, spectral.status) == ("noise suppression", "ok")
    assert "spectral" in spectral.detail


def test_doctor_says_when_answers_cannot_be_read_aloud(
        make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.doctor import check_models

    monkeypatch.setenv("PATH", "/nonexistent")  # a machine without espeak-ng
    speech = check_models(make_config(voice={"enabled": False}))[-1]
    assert speech.status == "warn" and speech.fix == "sudo apt-get install espeak-ng"


def test_a_secret_file_every_user_can_read_is_said(make_config, tmp_path: Path) -> None:  # noqa: ANN001
    """Why: a staff token copied with the default umask (0644) gave every user of the hub's
    machine the staff's powers, and neither doctor nor config check said a word."""
    token = tmp_path / "staff-token"
    token.write_text("a-staff-token-of-some-length\n")
    token.chmod(0o644)
    config = make_config(web={"staff_token_file": str(token)})
    (finding,) = check_secret_files(config)
    assert finding.status == "warn" and "-rw-r--r--" in finding.detail
    assert finding.fix == f"sudo chown root:retail-hub {token} && sudo chmod 640 {token}"
    token.chmod(0o640)
    assert [f.status for f in check_secret_files(config)] == ["ok"]
