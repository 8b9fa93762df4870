"""The release artefacts: what the wheel and sdist hold, and that an installed wheel works
on its own (console script, packaged data, certbot plugin registration)."""

from __future__ import annotations

import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

from tests.packaging.conftest import Built, Installed

DATA = (
    "phoenix_certbot/data/certificate-manifest.schema.json",
    "phoenix_certbot/data/certificate-manifest.example.json",
    "phoenix_certbot/data/certificate-manifest.legacy.example.json",
    "phoenix_certbot/data/systemd/phoenix-cert-renew.service",
    "phoenix_certbot/data/systemd/phoenix-cert-renew.timer",
    "phoenix_certbot/data/systemd/phoenix-cert-rotate.service",
    "phoenix_certbot/data/systemd/phoenix-cert-rotate.timer",
)


def run(installed: Installed, *command: str | Path) -> subprocess.CompletedProcess[str]:
    # No PHOENIX_CERT_MANIFEST or PYTHONPATH from the test run may leak into the fresh venv.
    env = {k: v for k, v in os.environ.items() if k not in {"PHOENIX_CERT_MANIFEST", "PYTHONPATH"}}
    env["PATH"] = f"{installed.venv / 'bin'}:/usr/bin:/bin"
    return subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=installed.venv,  # not the repository: its phoenix_certbot/ must not shadow the wheel
    )


def packaged(installed: Installed, name: str) -> Path:
    """Where the installed package keeps a data file, asked of the fresh venv's Python."""
    result = run(
        installed,
        installed.python,
        "-c",
        "import sys; from importlib import resources; "
        "print(resources.files('phoenix_certbot').joinpath(sys.argv[1]))",
        name,
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def test_wheel_and_sdist_carry_the_schema_examples_and_systemd_units(built: Built) -> None:
    print(f"\nbuild (sdist + wheel): {built.seconds:.1f} s")
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    assert set(DATA) <= names
    assert not any(n.startswith("tests/") for n in names)
    assert "phoenix-cert = phoenix_certbot.cli.main:main" in entry_points
    assert "phoenix-swarm = phoenix_certbot.certbot_plugin:SwarmInstaller" in entry_points
    with tarfile.open(built.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert set(DATA) <= members


def test_installed_wheel_runs_from_its_own_venv(installed: Installed) -> None:
    print(f"\nvenv + pip install (with dependencies): {installed.seconds:.1f} s")
    where = run(
        installed, installed.python, "-c", "import phoenix_certbot; print(phoenix_certbot.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)

    version = run(installed, installed.bin("phoenix-cert"), "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("phoenix-cert, version ")


def test_packaged_example_manifests_pass_the_check(installed: Installed) -> None:
    for name in ("certificate-manifest.example.json", "certificate-manifest.legacy.example.json"):
        example = packaged(installed, f"data/{name}")
        assert example.is_relative_to(installed.venv)
        check = run(
            installed, installed.bin("phoenix-cert"), "manifest", "check", "--no-certs",
            "--manifest", example,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"{example}: version " in check.stdout


def test_certbot_lists_the_phoenix_swarm_plugin(installed: Installed, tmp_path: Path) -> None:
    # certbot writes logs even for `plugins`: keep every folder in tmp_path.
    result = run(
        installed,
        installed.bin("certbot"),
        "plugins",
        "--config-dir", tmp_path / "config",
        "--work-dir", tmp_path / "work",
        "--logs-dir", tmp_path / "logs",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "* phoenix-swarm\n" in result.stdout
    assert "Interfaces: Installer, Plugin" in result.stdout


def test_install_systemd_renders_the_packaged_units_with_the_venvs_paths(
    installed: Installed, tmp_path: Path
) -> None:
    result = run(installed, installed.bin("phoenix-cert"), "install-systemd", "--dry-run",
                 "--unit-dir", tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"ExecStart={installed.bin('phoenix-cert')} rotate --all\n" in result.stdout
    assert f"ExecStart={installed.bin('certbot')} renew --quiet\n" in result.stdout
    assert result.stdout.count("# " + str(tmp_path)) == 4
