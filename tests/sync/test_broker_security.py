"""``retail-hub broker config`` on a real mosquitto: TLS, passwords and a per-store ACL. A store's
credentials reach only its own tree; the shop reads every store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.cli import main
from hub.doctor import check_broker
from sync.broker_config import max_packet_size
from sync.broker_setup import password_hash
from sync.envelope import DEFAULT_MAX_PAYLOAD_BYTES, build
from sync.topics import StoreTopics
from tests.bounded import run_bounded
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.ports import free_port
from tests.sync.conftest import RawClient, SyncPair, wait_until
from tests.sync.pki import make_pki

NOT_AUTHORIZED = 0x87


@pytest.fixture
def secured(tmp_path: Path) -> tuple[Mosquitto, Path, Path]:
    """A TLS broker configured by the CLI for stores s1 and s2 and the shop."""
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    out = tmp_path / "broker"
    result = CliRunner().invoke(main, [
        "broker", "config", "--out", str(out), "--store", "s1", "--store", "s2",
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
        "--port", str(port), "--bind", "127.0.0.1", "--no-persistence"])
    assert result.exit_code == 0, result.output
    broker = Mosquitto(out, config_text=(out / "mosquitto.conf").read_text(), port=port)
    broker.start()
    yield broker, out / "credentials", pki.ca_cert
    broker.kill()


def raw(broker: Mosquitto, user: str, creds: Path, ca: Path) -> RawClient:
    password = (creds / f"{user}.password").read_text().strip()
    return RawClient(broker.port, f"raw-{user}", username=user, password=password, ca_file=ca)


async def test_stores_reach_only_their_own_tree(tmp_path: Path,
                                                secured: tuple[Mosquitto, Path, Path]) -> None:
    broker, creds, ca = secured
    pair = SyncPair(tmp_path / "pair", broker)
    pair.store = "s1"
    tls = {"tls_ca_file": str(ca), "password_file": str(creds / "s1.password"),
           "username": "s1"}
    try:
        pair.hub = await _start_hub(pair, tls)
        await pair.import_catalog()
        pair.shop = await _start_shop(pair, creds, ca)
        await pair.hub_api("POST", "/api/stock/movements",
                           {"sku": "OAT-1", "qty": 2, "reason": "sale"}, expect=201)
        await pair.settled()

        intruder = raw(broker, "s2", creds, ca)
        try:
            forged = build(store="s1", epoch=1, seq=999, type_="stock.movement", ts=1.0,
                           data={"bogus": True}, prev=0)
            s1 = StoreTopics("retail", "s1")
            assert intruder.publish(s1.event("stock.movement"), forged) == NOT_AUTHORIZED
            assert intruder.publish(s1.state, forged) == NOT_AUTHORIZED
            assert intruder.publish(s1.cmd, forged) == NOT_AUTHORIZED
            # mosquitto 2.0 grants these subscriptions but checks the ACL on each delivery,
            # so nothing of s1's ever arrives (checked below, after s1 got a command).
            intruder.subscribe(s1.cmd)
            intruder.subscribe("retail/v1/+/events/#")
            intruder.subscribe(s1.snapshot("+"))  # allowed: stock is shared in the chain, and
            # only s1's stock snapshots arrive: never its commands or events
            assert intruder.publish(StoreTopics("retail", "s2").event("stock.movement"),
                                    forged) == 0  # its own tree is fine
            placed = await pair.shop_api("POST", "/api/orders", {
                "store": "s1", "member": "m-1", "lines": [{"sku": "OAT-1", "qty": 1}]},
                expect=202)
            await wait_until(lambda: _state(pair, placed["id"]), what="order accepted")
            topics = {message.topic for message in intruder.received}
            assert topics == {s1.snapshot(sku) for sku in ("OAT-1", "BAN-1", "APL-1")}, topics
        finally:
            intruder.close()
        report = await pair.settled()
        assert report.applied_rows == report.ledger_rows
        assert pair.shop is not None
        conn = pair.shop.shop.store._conn()  # noqa: SLF001 - reading the replica directly
        assert conn.execute("SELECT count(*) FROM applied WHERE store = 's1' AND seq = 999"
                            ).fetchone()[0] == 0
    finally:
        await pair.close()


async def _start_hub(pair: SyncPair, tls: dict[str, str]):  # type: ignore[no-untyped-def]
    from hub.app import start_hub
    from tests.sync.conftest import hub_config

    return await start_hub(hub_config(pair.folder / "hub", pair.broker.port, "s1", **tls))


async def _start_shop(pair: SyncPair, creds: Path, ca: Path):  # type: ignore[no-untyped-def]
    from sync.shop.service import ShopService
    from tests.sync.conftest import shop_config

    config = shop_config(pair.folder / "shop", pair.broker.port)
    config.mqtt.username = "shop"
    config.mqtt.password_file = creds / "shop.password"
    config.mqtt.tls_ca_file = ca
    shop = ShopService(config)
    await shop.start()
    await wait_until(shop.shop.link.subscribed.is_set, 10, "the shop to subscribe")
    return shop


async def _state(pair: SyncPair, order_id: str) -> bool:
    order = await pair.shop_api("GET", f"/api/orders/{order_id}")
    return order["state"] == "accepted"


def test_wrong_password_anonymous_and_plain_text_are_refused(
        secured: tuple[Mosquitto, Path, Path]) -> None:
    broker, creds, ca = secured
    wrong = RawClient(broker.port, "wrong", username="s1", password="not-it", ca_file=ca)
    anonymous = RawClient(broker.port, "anon", ca_file=ca)
    try:
        assert wrong.connack is not None and wrong.connack >= 0x80
        assert anonymous.connack is not None and anonymous.connack >= 0x80
    finally:
        wrong.close()
        anonymous.close()
    plain = RawClient(broker.port, "plain", username="s1",
                      password=(creds / "s1.password").read_text().strip())
    try:
        assert plain.connack is None, "a client without TLS must never get a CONNACK"
    finally:
        plain.close()


def test_generated_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["broker", "config", "--out", str(tmp_path), "--store",
                                       "a-1", "--no-tls"])
    assert result.exit_code == 0, result.output
    first = (tmp_path / "credentials" / "a-1.password").read_text()
    assert (tmp_path / "credentials" / "a-1.password").stat().st_mode & 0o077 == 0
    acl = (tmp_path / "acl").read_text()
    # (the secured fixture's mosquitto starts with this line: the option is its own)
    assert f"\nmax_packet_size {max_packet_size(DEFAULT_MAX_PAYLOAD_BYTES)}\n" in (
        tmp_path / "mosquitto.conf").read_text()
    assert "user a-1\ntopic write retail/v1/a-1/state\n" in acl
    assert "user shop\n" in acl and "topic read retail/v1/+/events/#" in acl
    again = CliRunner().invoke(main, ["broker", "config", "--out", str(tmp_path), "--store",
                                      "a-1", "--store", "b-2", "--no-tls"])
    assert again.exit_code == 0
    assert (tmp_path / "credentials" / "a-1.password").read_text() == first
    raised = CliRunner().invoke(main, ["broker", "config", "--out", str(tmp_path), "--store",
                                       "a-1", "--no-tls", "--max-payload-bytes", "2097152"])
    assert raised.exit_code == 0, raised.output
    assert f"\nmax_packet_size {max_packet_size(2097152)}\n" in (
        tmp_path / "mosquitto.conf").read_text()
    for bad in (["--store", "Bad Store", "--no-tls"], ["--store", "shop", "--no-tls"],
                ["--store", "a-1", "--no-tls", "--max-payload-bytes", "100"],
                ["--store", "a"], ["--store", "a-1\n", "--no-tls"],
                ["--store", "a-1", "--shop-user", "shop\n", "--no-tls"]):
        refused = CliRunner().invoke(main, ["broker", "config", "--out", str(tmp_path), *bad])
        assert refused.exit_code == 2, bad
    assert password_hash("secret", b"\x00" * 12).startswith("$7$101$AAAAAAAAAAAAAAAA$")


def test_doctor_logs_in_over_verified_tls(make_config, secured: tuple[Mosquitto, Path, Path],
                                          tmp_path: Path) -> None:  # noqa: ANN001 - fixture
    """doctor checks the broker with the link's own TLS context (verified, TLS 1.2 at least)."""
    broker, creds, ca = secured
    mqtt = {"enabled": True, "host": "localhost", "port": broker.port, "username": "s1",
            "password_file": str(creds / "s1.password"), "tls_ca_file": str(ca)}
    (finding,) = check_broker(make_config(store={"id": "s1"}, mqtt=mqtt))
    assert (finding.status, finding.detail) == (
        "ok", f"localhost:{broker.port}: TLS verified, login accepted")
    other = make_pki(tmp_path / "other-pki").ca_cert  # a CA that did not sign the broker's
    (finding,) = check_broker(make_config(store={"id": "s1"}, mqtt={**mqtt,
                                                                    "tls_ca_file": str(other)}))
    assert finding.status == "fail" and "certificate verify failed" in finding.detail


def test_a_stores_file_that_cannot_be_used_is_one_sentence(tmp_path: Path) -> None:
    """Why: a missing file, bytes that are not UTF-8 and a folder this user may not write in
    ended broker config with a traceback, and a big file (/dev/zero) was read whole (24 GB)."""
    latin = tmp_path / "stores.txt"
    latin.write_bytes(b"s1\n\xff\n")
    for stores, said in (
        ("nope.txt", "cannot read nope.txt: No such file or directory"),
        (str(latin), f"{latin} is not UTF-8 text (byte 4); save it as UTF-8"),
        ("/dev/zero", "/dev/zero is larger than 1 MiB: not a list of store ids"),
    ):
        result = run_bounded(["broker", "config", "--out", str(tmp_path / "b"), "--stores-file",
                              stores, "--no-tls"], tmp_path)
        assert result.returncode == 2, result.stderr
        assert said in result.stderr and "Traceback" not in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["broker", "config", "--out", str(blocker / "b"),
                                       "--store", "s1", "--no-tls"])
    assert result.exit_code == 1
    assert f"Error: cannot write {blocker / 'b' / 'credentials'}: Not a directory" in (
        result.output
    )


@pytest.mark.parametrize(("option", "value", "said"), [
    ("--prefix", "x/#", "topic prefix 'x/#' is not valid"),
    ("--prefix", "a+", "topic prefix 'a+' is not valid"),
    ("--bind", "x\nlistener 1 0.0.0.0", "bind address 'x\\nlistener 1 0.0.0.0' is not an IP"),
    ("--bind", "0.0.0.0 1", "bind address '0.0.0.0 1' is not an IP"),
])
def test_options_that_would_widen_the_acl_or_the_listeners_are_refused(
    tmp_path: Path, option: str, value: str, said: str
) -> None:
    """Why: --prefix 'x/#' put a wildcard into every store's write grant, and a newline in
    --bind added a listener of its own to mosquitto.conf; config check refuses the like."""
    result = CliRunner().invoke(main, ["broker", "config", "--out", str(tmp_path), "--store",
                                       "s1", "--no-tls", option, value])
    assert result.exit_code == 2 and said in result.output
    assert not (tmp_path / "acl").exists()


def test_bind_takes_addresses_and_host_names(tmp_path: Path) -> None:
    for bind in ("127.0.0.1", "::", "hub-1.local"):
        result = CliRunner().invoke(main, ["broker", "config", "--out", str(tmp_path), "--store",
                                           "s1", "--no-tls", "--bind", bind])
        assert result.exit_code == 0, result.output
        assert f"\nlistener 8883 {bind}\n" in (tmp_path / "mosquitto.conf").read_text()


def test_the_tls_files_must_be_a_pem_certificate_and_its_key(tmp_path: Path) -> None:
    """Why: --tls-cert /etc/hostname --tls-key /etc/hostname was written into mosquitto.conf,
    which then failed at its start, in its own log."""
    pki = make_pki(tmp_path / "pki")
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    text = tmp_path / "hostname"
    text.write_text("hub-1\n")
    for cert, key, said in (
        (text, text, f"{text} is not a PEM certificate"),
        (pki.server_cert, pki.server_cert, f"{pki.server_cert} is not a PEM private key"),
        (pki.ca_cert, pki.server_key, f"{pki.server_key} is not the private key of {pki.ca_cert}"),
        (pki.server_cert, encrypted, f"{encrypted} is encrypted"),
    ):
        result = CliRunner().invoke(main, ["broker", "config", "--out", str(tmp_path / "b"),
                                           "--store", "s1", "--tls-cert", str(cert),
                                           "--tls-key", str(key)])
        assert result.exit_code == 2 and said in result.output, result.output
    result = CliRunner().invoke(main, ["broker", "config", "--out", str(tmp_path / "b"),
                                       "--store", "s1", "--tls-cert", str(pki.server_cert),
                                       "--tls-key", str(pki.server_key)])
    assert result.exit_code == 0, result.output
