"""Config loading: strict models, line-level errors, described fields, the staff token."""

from __future__ import annotations

import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from beacons.settings import PresenceSettings
from hub.config import (
    ConfigError,
    HubConfig,
    check_config,
    load_config,
    load_presence,
    parse_config,
)
from hub.config.beacons import RemindersConfig
from tests.bounded import run_bounded
from tests.hub.test_foreign_files import as_another_user

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "hub.cli"]


def models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for field in model.model_fields.values():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.extend(models(annotation))
    return found


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Copied as the README says, it passes config check (which the Pi's service runs first).
    (tmp_path / "hub.toml").write_text((ROOT / "hub.example.toml").read_text())
    result = subprocess.run([*CLI, "config", "check", str(tmp_path / "hub.toml")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = load_config(ROOT / "hub.example.toml")
    assert config.store.id == "stockholm-01"
    assert config.store.database.is_absolute()
    assert config.store.database == (ROOT / "var" / "hub.db").resolve()


def test_file_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    """The reference pack too: it had to be absolute while the model beside it could be
    relative."""
    (tmp_path / "hub.toml").write_text(
        '[store]\nid = "s"\nname = "S"\n[vision]\nmodel_path = "m/model.onnx"\n'
        'reference_pack = "m/pack.npz"\n'
    )
    config = load_config(tmp_path / "hub.toml")
    assert config.vision.model_path == tmp_path / "m" / "model.onnx"
    assert config.vision.reference_pack == tmp_path / "m" / "pack.npz"


def test_every_field_has_a_description() -> None:
    missing = [f"{m.__name__}.{name}" for m in models(HubConfig)
               for name, field in m.model_fields.items() if not field.description]
    assert missing == []


def test_every_section_forbids_unknown_keys() -> None:
    assert all(m.model_config.get("extra") == "forbid" for m in models(HubConfig))


def test_errors_name_line_and_key() -> None:
    text = ('[store]\nid = "Bad Id"\nname = "x"\ntimezone = "Mars/Base"\n\n'
            '[web]\nport = 99999\ncolor = 1\n')
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("hub.toml"))
    problems = {(p.line, p.key) for p in info.value.problems}
    assert problems == {(2, "store.id"), (4, "store.timezone"), (7, "web.port"), (8, "web.color")}
    assert "unknown setting" in str(info.value)
    # "$" lets a trailing newline through re.match: a store id the broker's ACL would not match
    with pytest.raises(ConfigError) as info:
        parse_config('[store]\nid = "demo-1\\n"\nname = "x"\n', Path("hub.toml"))
    assert [p.key for p in info.value.problems] == ["store.id"]


def test_the_kiosk_language_is_a_catalogue_language_code() -> None:
    """Why: 'zh-TW' names could be imported but store.language could not name them, and a bad
    code got the regular expression it failed instead of an example."""
    config = parse_config('[store]\nid = "s"\nname = "x"\nlanguage = "zh-TW"\n', Path("h.toml"))
    assert config.store.language == "zh-TW"
    with pytest.raises(ConfigError):
        parse_config('[store]\nid = "s"\nname = "x"\nlanguage = "ko\\n"\n', Path("h.toml"))
    with pytest.raises(ConfigError) as info:
        parse_config('[store]\nid = "s"\nname = "x"\nlanguage = "KO"\n', Path("h.toml"))
    assert "'KO' is not a language code as the catalogue's names are keyed, such as 'en', 'ko' " \
        "or 'zh-TW'" in str(info.value)


def test_missing_section_and_bad_toml() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[web]\nport = 80\n", Path("hub.toml"))
    assert [p.key for p in info.value.problems] == ["store"]
    with pytest.raises(ConfigError) as info:
        parse_config('[store]\nid = "a"\nname = \n', Path("hub.toml"))
    assert info.value.problems[0].line == 3
    assert "not valid TOML" in info.value.problems[0].message


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


def test_staff_token_from_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = '[store]\nid = "s1"\nname = "S"\n'
    config = parse_config(base, tmp_path / "hub.toml")
    monkeypatch.setenv("RETAIL_HUB_STAFF_TOKEN", "from-the-environment-123")
    token = config.web.load_staff_token()
    assert token is not None and token.get_secret_value() == "from-the-environment-123"
    assert "from-the-environment" not in repr(config.web) + repr(token)
    (tmp_path / "token").write_text("short\n")
    config = parse_config(base + '[web]\nstaff_token_file = "token"\n', tmp_path / "hub.toml")
    with pytest.raises(ValueError, match="at least 16"):
        config.web.load_staff_token()


def test_config_check_command(tmp_path: Path) -> None:
    bad = tmp_path / "hub.toml"
    bad.write_text('[store]\nid = "ok"\nname = "S"\nsurprise = 1\n')
    result = subprocess.run([*CLI, "config", "check", str(bad)], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 2
    assert "line 4: store.surprise: unknown setting" in result.stderr
    assert "Traceback" not in result.stderr
    good = tmp_path / "good.toml"
    good.write_text('[store]\nid = "ok"\nname = "S"\n')
    result = subprocess.run([*CLI, "config", "check", str(good)], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "ok (store ok)" in result.stdout


def test_run_with_bad_config_stops_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "hub.toml"
    bad.write_text('[store]\nid = "UPPER"\nname = "S"\n')
    result = subprocess.run([*CLI, "run", "--config", str(bad)], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert "line 2: store.id" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_fleet_file_is_reported_by_check_and_stops_run_cleanly(tmp_path: Path) -> None:
    """Why: config check said "ok" for a missing or invalid beacons.fleet_file, and run then
    stopped with a 20-frame traceback."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("beacons: []\nbeacons: []\n")
    config = tmp_path / "hub.toml"
    config.write_text(f'[store]\nid = "ok"\nname = "S"\n[beacons]\nfleet_file = "{fleet}"\n'
                      'enabled = true\nsource = "simulate"\n')
    for command in (["config", "check", str(config)], ["run", "--config", str(config)]):
        result = subprocess.run([*CLI, *command], capture_output=True, text=True, cwd=ROOT,
                                timeout=60)
        assert result.returncode == 2, result.stderr
        assert "beacons.fleet_file: " in result.stderr and "given twice" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_fleet_file_of_another_store_is_reported(tmp_path: Path) -> None:
    """Why: relay nodes flashed from a fleet file of another store publish under that store's
    topics, which this hub never subscribes to, and nothing said so."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("store: other-shop\nbeacons: []\n")
    config = tmp_path / "hub.toml"
    config.write_text(f'[store]\nid = "ok"\nname = "S"\n[beacons]\nfleet_file = "{fleet}"\n'
                      'enabled = true\nsource = "simulate"\n')
    result = subprocess.run([*CLI, "config", "check", str(config)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert "is for store 'other-shop' but this hub is store.id = 'ok'" in result.stderr


def test_config_check_names_every_missing_broker_file(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[store]\nid = "ok"\nname = "S"\n[mqtt]\nenabled = true\nhost = "b.example"\n'
                      'username = "ok"\npassword_file = "pw"\ntls_ca_file = "ca.pem"\n')
    result = subprocess.run([*CLI, "config", "check", str(config)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert f"mqtt.password_file: {tmp_path / 'pw'}: No such file or directory" in result.stderr
    assert f"mqtt.tls_ca_file: {tmp_path / 'ca.pem'}: no such file" in result.stderr


def test_relay_broker_files_are_relative_to_the_config_and_a_password_needs_a_user(
    tmp_path: Path,
) -> None:
    (tmp_path / "hub.toml").write_text(
        '[store]\nid = "s"\nname = "S"\n[beacons]\nrelay_username = "hub"\n'
        'relay_password_file = "secrets/relay.password"\nrelay_tls_ca_file = "ca.pem"\n'
    )
    config = load_config(tmp_path / "hub.toml")
    assert config.beacons.relay_password_file == tmp_path / "secrets" / "relay.password"
    assert config.beacons.relay_tls_ca_file == tmp_path / "ca.pem"
    with pytest.raises(ConfigError, match="relay_password_file needs relay_username"):
        parse_config('[store]\nid = "s"\nname = "S"\n[beacons]\nrelay_password_file = "pw"\n',
                     tmp_path / "hub.toml")


def test_config_check_names_the_relay_brokers_missing_or_broken_files(tmp_path: Path) -> None:
    """Why: the relay nodes' broker took only anonymous clients; now that the hub logs in with
    a password file and verifies TLS with a CA file, a missing or wrong one must stop start-up
    with its name, not as a traceback at the first connection."""
    config = tmp_path / "hub.toml"
    relay = ('[beacons]\nenabled = true\nsource = "mqtt"\nchain_prefix = "0011223344556677"\n'
             'relay_username = "hub"\nrelay_password_file = "pw"\nrelay_tls_ca_file = "{ca}"\n')
    config.write_text('[store]\nid = "ok"\nname = "S"\n' + relay.format(ca="ca.pem"))
    result = subprocess.run([*CLI, "config", "check", str(config)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert (f"beacons.relay_password_file: {tmp_path / 'pw'}: No such file or directory"
            in result.stderr)
    assert f"beacons.relay_tls_ca_file: {tmp_path / 'ca.pem'}: no such file" in result.stderr
    (tmp_path / "pw").write_text("secret\n")
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    config.write_text('[store]\nid = "ok"\nname = "S"\n' + relay.format(ca="notes.txt"))
    for command in (["config", "check", str(config)], ["run", "--config", str(config)]):
        result = subprocess.run([*CLI, *command], capture_output=True, text=True, cwd=ROOT,
                                timeout=60)
        assert result.returncode == 2, result.stderr
        assert (f"beacons.relay_tls_ca_file: {tmp_path / 'notes.txt'}: not a PEM CA certificate"
                in result.stderr)
        assert "password_file" not in result.stderr and "secret" not in result.stderr
        assert "Traceback" not in result.stderr


def test_voice_accents_are_espeak_ng_english_accents() -> None:
    """Why: an accent the hub cannot make pronunciations for must stop the start with the list
    of those it can, not be ignored while the store believes British customers are heard."""
    base = '[store]\nid = "s"\nname = "x"\n\n[voice.engine]\ntype = "pocketsphinx"\n'
    config = parse_config(base + 'accents = ["en-gb", "en-gb"]\n', Path("h.toml"))
    assert config.voice.engine.type == "pocketsphinx"
    assert config.voice.engine.accents == ["en-gb"]
    with pytest.raises(ConfigError) as info:
        parse_config(base + 'accents = ["british"]\n', Path("h.toml"))
    assert "unknown accent 'british': one of en-gb, en-gb-x-rp" in str(info.value)
    assert info.value.problems[0].key == "voice.engine.accents"  # not ...pocketsphinx.accents
    assert info.value.problems[0].line == 7


def test_a_vosk_engine_is_told_accents_belong_to_pocketsphinx() -> None:
    """Why: a store that switched to a Vosk model and kept its accents was told "unknown
    setting", which reads as a misspelling of a setting it had copied from the docs."""
    text = '[store]\nid = "s"\nname = "x"\n\n[voice.engine]\ntype = "vosk"\naccents = ["en-gb"]\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("h.toml"))
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (5, "voice.engine")
    assert "accents is a setting of the pocketsphinx engine" in problem.message
    assert "remove voice.engine.accents" in problem.message


def test_a_missing_setting_and_an_array_of_tables_are_located() -> None:
    text = '[store]\nname = "x"\n\n[[beacons.scanners]]\nname = "door"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("h.toml"))
    problems = {(p.line, p.key) for p in info.value.problems}
    assert problems == {(1, "store.id"), (4, "beacons.scanners")}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("window_s = 1\n", "line 1: window_s: unknown setting"),
        ("\n[presence]\nwindow_s = 1\n", "line 2: presence: unknown setting"),
        ('[store]\nid = "s1"\n[beacons.presense]\nwindow_s = 1\n', "line 3: beacons.presense: "),
    ],
)
def test_presence_settings_outside_their_table_are_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    """Why: replay and eval read only [beacons.presence], so these were skipped and the
    defaults used while the file seemed to set something else."""
    path = tmp_path / "presence.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_presence(path)
    assert f"{path}: {problem}" in str(caught.value)


def test_presence_of_a_whole_hub_config_without_the_table_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[store]\nid = "s1"\nname = "Shop"\n\n[web]\nport = 8080\n\n[beacons]\n'
                    "enabled = true\n")
    assert load_presence(path) == PresenceSettings()
    path.write_text("[beacons.presence]\nwindow_s = 2\n")
    assert load_presence(path).window_s == 2


def test_quiet_hours_with_an_offset_are_refused() -> None:
    """Why: "21:00+01:00" passed the config check, then every arrival failed comparing it with
    the store's local time, and its staff alert and reminder were lost."""
    with pytest.raises(ValidationError, match="write 21:00 without an offset"):
        RemindersConfig(quiet_start="21:00+01:00", quiet_end="08:00")
    assert RemindersConfig(quiet_start="21:30", quiet_end="07:00").quiet_start == time(21, 30)


def test_an_endless_file_is_refused_after_a_bounded_read(tmp_path: Path) -> None:
    """Why: the size check used stat(), which says 0 for /dev/zero, a FIFO or a /proc file, and
    config check then read on until the kernel killed it (24 GB); replay --config and run too."""
    members = tmp_path / "m.json"
    members.write_text('{"chain_prefix": "0011223344556677", "members": []}')
    (tmp_path / "t.jsonl").write_text("")
    for command in (["config", "check", "/dev/zero"],
                    ["beacons", "replay", "t.jsonl", "--members", "m.json", "--config",
                     "/dev/zero"]):
        result = run_bounded(command, tmp_path)
        assert result.returncode == 2, result.stderr
        assert "/dev/zero: file is larger than 1 MiB" in result.stderr
        assert "Traceback" not in result.stderr


def test_deep_nesting_is_one_sentence_not_a_traceback(tmp_path: Path) -> None:
    """Why: tomllib recurses per nested array or inline table, and 5 000 of them ended config
    check, replay --config and run with a RecursionError traceback; a fleet file as deep the
    same through config check."""
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    tables = tmp_path / "tables.toml"
    tables.write_text("x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n")
    fleet = tmp_path / "deep.yaml"
    fleet.write_text("beacons: " + "[" * 20000 + "]" * 20000 + "\n")
    config = tmp_path / "hub.toml"
    config.write_text(f'[store]\nid = "ok"\nname = "S"\n[beacons]\nfleet_file = "{fleet}"\n'
                      'enabled = true\nsource = "simulate"\n')
    (tmp_path / "m.json").write_text('{"chain_prefix": "0011223344556677", "members": []}')
    (tmp_path / "t.jsonl").write_text("")
    for command, said in (
        (["config", "check", str(deep)], f"{deep}: nested too deeply"),
        (["config", "check", str(tables)], f"{tables}: nested too deeply"),
        (["beacons", "replay", "t.jsonl", "--members", "m.json", "--config", str(deep)],
         f"{deep}: nested too deeply"),
        (["run", "--config", str(deep)], f"{deep}: nested too deeply"),
        (["config", "check", str(config)], f"{fleet}: nested too deeply"),
    ):
        result = subprocess.run([*CLI, *command], capture_output=True, text=True, cwd=tmp_path,
                                timeout=60)
        assert result.returncode == 2, (command, result.stderr)
        assert said in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_byte_order_mark_before_the_config_is_skipped(tmp_path: Path) -> None:
    """Why: Windows Notepad writes one, and the file was then "not valid TOML (at line 1,
    column 1)" while every other file the hub reads skips it."""
    path = tmp_path / "hub.toml"
    path.write_bytes(b'\xef\xbb\xbf[store]\nid = "s"\nname = "S"\n')
    assert load_config(path).store.id == "s"


@pytest.mark.parametrize(("setting", "value"), [
    ("[vision]\nconfidence_threshold", "nan"),
    ("[beacons.presence]\nwindow_s", "inf"),
    ("[mqtt]\nack_timeout_s", "-inf"),
])
def test_nan_and_infinity_are_said_to_be_no_number(setting: str, value: str) -> None:
    """Why: "confidence_threshold = nan" got "Input should be less than or equal to 1", a range
    problem to someone reading it, not a value that is no number at all."""
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[store]\nid = "s"\nname = "S"\n{setting} = {value}\n', Path("hub.toml"))
    (problem,) = caught.value.problems
    assert problem.line == 5
    assert problem.message == (f"{value} is not a number here (NaN and infinity are refused): "
                               "give a finite number")


def test_check_names_the_files_the_features_would_miss(tmp_path: Path) -> None:
    """Why: config check said "ok", and run then turned photo search, voice search or presence
    off with an error in the log (doctor found them); a file where the images folder belongs
    stopped run. The first are warnings: the service runs the check before it starts, and a
    hub without photo search still takes orders."""
    config = tmp_path / "hub.toml"
    config.write_text(
        '[store]\nid = "s"\nname = "S"\n'
        '[vision]\nmodel_path = "nope.onnx"\nreference_pack = "nope.npz"\n'
        '[voice]\nengine = {type = "vosk", model_dir = "nope"}\n'
        '[beacons]\nenabled = true\nsource = "replay"\nreplay_file = "nope.jsonl"\n'
        'chain_prefix = "0011223344556677"\n[beacons.presence]\n'
    )
    _, warnings = check_config(config)
    assert [str(p) for p in warnings] == [
        f"line 5: vision.model_path: {tmp_path}/nope.onnx does not exist: photo search will be "
        "off",
        f"line 6: vision.reference_pack: {tmp_path}/nope.npz does not exist: photo search will "
        "be off",
        f"line 8: voice.engine.model_dir: {tmp_path}/nope does not exist: voice search will be "
        "off",
        f"line 12: beacons.replay_file: {tmp_path}/nope.jsonl does not exist: presence will be "
        "off",
    ]
    result = subprocess.run([*CLI, "config", "check", str(config)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"warning: {config}: line 5: vision.model_path: " in result.stderr
    config.write_text('[store]\nid = "s"\nname = "S"\ndatabase = "/etc/passwd/var/hub.db"\n'
                      'images_dir = "/etc/passwd"\n')
    with pytest.raises(ConfigError) as caught:
        check_config(config)
    assert [str(p) for p in caught.value.problems] == [
        "line 4: store.database: /etc/passwd is a file, so /etc/passwd/var/hub.db cannot be "
        "made",
        "line 5: store.images_dir: /etc/passwd is a file, not a folder",
    ]
    # what start makes itself (the database and images folders) need not be there yet
    config.write_text('[store]\nid = "s"\nname = "S"\ndatabase = "new/var/hub.db"\n'
                      'images_dir = "new/images"\n')
    assert check_config(config) == (load_config(config), [])


def check_as_another_user(tmp_path: Path, database: str,
                          theirs: list[Path]) -> subprocess.CompletedProcess:
    """``config check`` of a config naming ``database`` and ``theirs/images`` (relative to
    ``tmp_path``), run as a user the folders ``theirs`` do not belong to; refused (exit 2)."""
    for folder in theirs:
        folder.chmod(0o755)  # open to look into (a closed one is not this check's to judge)
    config = tmp_path / "hub.toml"
    config.write_text(f'[store]\nid = "s"\nname = "S"\ndatabase = "{database}"\n'
                      'images_dir = "theirs/images"\n')
    hub = Path(sys.executable).with_name("retail-hub")
    result = as_another_user([str(hub), "config", "check", str(config)], theirs)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    return result


def test_check_names_a_data_folder_this_user_cannot_write_in(tmp_path: Path) -> None:
    """Why: config check said "ok" for an existing database in a folder the hub's user may not
    write in, and run then stopped at its first write: SQLite writes its journal beside the
    database. The same for an images folder that exists."""
    theirs = tmp_path / "theirs"
    (theirs / "images").mkdir(parents=True)
    (theirs / "hub.db").write_bytes(b"")
    result = check_as_another_user(tmp_path, "theirs/hub.db", [theirs, theirs / "images"])
    fix = "run the check as the hub's user, or give the folder to it: sudo chown"
    assert (f"line 4: store.database: this user may not write in {theirs}, where the hub writes "
            f"its journal (-wal and -shm files) beside the database; {fix} "
            f"retail-hub:retail-hub {theirs}\n") in result.stderr
    assert (f"line 5: store.images_dir: this user may not write in {theirs}/images, where the "
            f"hub writes its photos; {fix} retail-hub:retail-hub {theirs}/images\n"
            ) in result.stderr


def test_check_names_a_data_folder_this_user_cannot_make(tmp_path: Path) -> None:
    """Why: config check said "ok" for a database and images folder to be made where the hub's
    user may not write, and run (started by the service on the strength of that check) then
    stopped at its first start with "permission denied"."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    result = check_as_another_user(tmp_path, "theirs/var/hub.db", [theirs])
    fix = "run the check as the hub's user, or make the folder for it: sudo install -d"
    assert (f"line 4: store.database: {theirs}/var/hub.db does not exist and cannot be made: "
            f"this user may not write in {theirs}; {fix} -o retail-hub -g retail-hub -m 750 "
            f"{theirs}/var\n") in result.stderr
    assert (f"line 5: store.images_dir: {theirs}/images does not exist and cannot be made: "
            f"this user may not write in {theirs}; {fix} -o retail-hub -g retail-hub -m 750 "
            f"{theirs}/images\n") in result.stderr


def test_settings_that_contradict_each_other_are_refused() -> None:
    """Why: accept_score 0.5 with suggest_score 0.9 never offers "did you mean", and a longest
    wait below the first cannot be what was meant; config check said "ok" to both."""
    with pytest.raises(ConfigError) as caught:
        parse_config('[store]\nid = "s"\nname = "S"\n[mqtt]\nbackoff_max_s = 1\n'
                     'backoff_initial_s = 10\nack_timeout_max_s = 1\nack_timeout_s = 50\n'
                     '[voice]\naccept_score = 0.5\nsuggest_score = 0.9\n', Path("hub.toml"))
    assert [str(p) for p in caught.value.problems] == [
        "line 4: mqtt: backoff_max_s 1 is below backoff_initial_s 10; ack_timeout_max_s 1 is "
        "below ack_timeout_s 50: the longest wait cannot be shorter than the first; raise the "
        "longest or lower the first",
        "line 9: voice: suggest_score 0.9 is above accept_score 0.5, so nothing would ever be "
        "offered under 'did you mean': set it below accept_score (equal to it turns suggestions "
        "off)",
    ]
    # one of a pair raised past the other's default: the default gives way, as documented
    config = parse_config('[store]\nid = "s"\nname = "S"\n[mqtt]\nack_timeout_s = 600\n'
                          'backoff_initial_s = 45\n[voice]\nsuggest_score = 0.8\n',
                          Path("hub.toml"))
    assert config.mqtt.ack_timeout_s == 600 and config.voice.suggest_score == 0.8


@pytest.mark.parametrize(("setting", "message"), [
    ('[web]\nport = "8080"',
     'expected a whole number such as 8080, found the text "8080"; remove the quotes'),
    ('[web]\nport = 8080.0', "expected a whole number, found 8080.0; write 8080"),
    ("[web]\nport = 8080.5", "expected a whole number, found 8080.5"),
    ("[web]\nport = true", "expected a whole number, found true"),
    ('[mqtt]\nenabled = "yes"', 'expected true or false, found the text "yes"'),
    ('[mqtt]\nenabled = "true"',
     'expected true or false, found the text "true"; remove the quotes'),
    ("[mqtt]\nenabled = 1", "expected true or false, found 1"),
    ('[mqtt]\nack_timeout_s = "2.5"',
     'expected a number such as 2.5, found the text "2.5"; remove the quotes'),
    ('[mqtt]\nport = "secure"', 'expected a whole number, found the text "secure"'),
    ('[beacons.presence]\nwindow_s = "3"',
     'expected a number such as 3, found the text "3"; remove the quotes'),
    ("[beacons.presence]\nmin_sightings = 2.0", "expected a whole number, found 2.0; write 2"),
])
def test_a_number_or_yes_no_setting_refuses_other_types(setting: str, message: str) -> None:
    """Why: pydantic's lax mode took port = "8080" as 8080, enabled = "yes" as true and
    port = 8080.0 as 8080, so a value in stray quotes loaded without a word; the sections
    embedded from beacons and sync (presence, the broker connection) included."""
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[store]\nid = "s"\nname = "S"\n{setting}\n', Path("hub.toml"))
    table, line = setting.split("\n")
    (problem,) = caught.value.problems
    assert (problem.line, problem.key) == (5, f"{table.strip('[]')}.{line.split(' =')[0]}")
    assert problem.message == message


def test_settings_read_from_text_still_take_text(tmp_path: Path) -> None:
    """Paths, choices, times (as TOML times or as text), store tables and whole numbers for
    numbers: what strict validation must not refuse."""
    config = parse_config(
        '[store]\nid = "s"\nname = "S"\ndatabase = "d/hub.db"\n[mqtt]\nprotocol = "3.1.1"\n'
        'ack_timeout_s = 20\nnearby_stores = {s2 = "Two"}\n[voice.engine]\ntype = "vosk"\n'
        'model_dir = "m"\n[beacons.reminders]\nquiet_start = 22:30:00\nquiet_end = "07:15"\n',
        tmp_path / "hub.toml")
    assert config.store.database == tmp_path / "d" / "hub.db"
    assert (config.mqtt.protocol, config.mqtt.ack_timeout_s) == ("3.1.1", 20.0)
    assert config.mqtt.nearby_stores == {"s2": "Two"}
    assert config.voice.engine.model_dir == tmp_path / "m"
    reminders = config.beacons.reminders
    assert (reminders.quiet_start, reminders.quiet_end) == (time(22, 30), time(7, 15))


def test_presence_and_config_check_refuse_a_quoted_number(tmp_path: Path) -> None:
    """The other two readers of the file: `beacons replay`'s load_presence and config check."""
    path = tmp_path / "hub.toml"
    path.write_text('[store]\nid = "s"\nname = "S"\n[beacons.presence]\nmin_sightings = "3"\n'
                    '[web]\nport = "8080"\n')
    with pytest.raises(ConfigError) as caught:
        load_presence(path)
    assert [str(p) for p in caught.value.problems] == [
        'line 5: beacons.presence.min_sightings: expected a whole number such as 3, found the '
        'text "3"; remove the quotes']
    result = subprocess.run([*CLI, "config", "check", str(path)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2
    assert ('line 7: web.port: expected a whole number such as 8080, found the text "8080"; '
            "remove the quotes") in result.stderr
    assert "line 5: beacons.presence.min_sightings" in result.stderr
    assert "Traceback" not in result.stderr
