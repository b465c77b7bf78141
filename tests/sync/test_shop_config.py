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


def test_the_command_refuses_a_missing_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["shop", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 2
    assert "file not found" in result.output
