"""``shop.toml``: the example is valid, mistakes are reported with their key, paths resolve."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from sync.shop.config import ShopConfigError, load_shop_config

EXAMPLE = Path(__file__).resolve().parents[2] / "sync" / "shop" / "shop.example.toml"


def test_the_example_loads_and_paths_resolve_against_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "shop.toml"
    copy.write_text(EXAMPLE.read_text())
    config = load_shop_config(copy)
    assert config.database == tmp_path / "var" / "shop.db"
    assert config.mqtt.password_file == tmp_path / "credentials" / "shop.password"
    assert config.mqtt.shared_group == "shop"


def test_mistakes_name_their_key(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_text('[http]\nprot = 1\n[mqtt]\nport = 0\n')
    with pytest.raises(ShopConfigError) as caught:
        load_shop_config(path)
    assert "http.prot: unknown setting" in str(caught.value)
    assert "mqtt.port" in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    ('[http]\nport = "8090"\n', 'http.port: expected a whole number such as 8090, found the text '
     '"8090"; remove the quotes'),
    ("[http]\nport = 8090.0\n", "http.port: expected a whole number, found 8090.0; write 8090"),
    ('[http]\nbody_timeout_s = "30s"\n', 'http.body_timeout_s: expected a number, found the text '
     '"30s"'),
])
def test_a_value_of_the_wrong_type_is_refused_not_converted(
        tmp_path: Path, text: str, message: str) -> None:
    """Why: in lax mode ``port = "8090"`` loaded as 8090, so a stray quote passed unseen."""
    path = tmp_path / "shop.toml"
    path.write_text(text)
    with pytest.raises(ShopConfigError) as caught:
        load_shop_config(path)
    assert message in str(caught.value)


@pytest.mark.parametrize("make", ["folder", "huge"])
def test_a_config_that_is_no_settings_file_is_refused(tmp_path: Path, make: str) -> None:
    path = tmp_path / "shop.toml"
    if make == "folder":
        path.mkdir()
    else:
        path.write_text("# " + "x" * (2 * 1024 * 1024))
    with pytest.raises(ShopConfigError,
                       match="cannot read: Is a directory" if make == "folder" else "larger than"):
        load_shop_config(path)


def test_the_command_refuses_a_missing_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["shop", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 2
    assert "file not found" in result.output
