"""The packaged systemd units, `phoenix-cert install-systemd`, and `systemd-analyze`."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoenix_certbot.cli import systemd_cmd
from phoenix_certbot.cli.main import cli
from phoenix_certbot.cli.systemd_cmd import PLACEHOLDERS, render_units, unit_templates
from phoenix_certbot.errors import UsageError
from tests.conftest import REPO_ROOT, unavailable

VENV_BIN = Path(sys.executable).parent
PHOENIX_CERT = VENV_BIN / "phoenix-cert"
CERTBOT = VENV_BIN / "certbot"
UNITS = (
    "phoenix-cert-renew.service",
    "phoenix-cert-renew.timer",
    "phoenix-cert-rotate.service",
    "phoenix-cert-rotate.timer",
)
SERVICES = ("phoenix-cert-renew.service", "phoenix-cert-rotate.service")


def parse(text: str) -> dict[str, dict[str, str]]:
    """A unit file as section -> key -> value; a key given more than once (ReadWritePaths=)
    has its values joined by spaces, as systemd adds them up."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current[key] = f"{current[key]} {value}" if key in current else value
    return sections


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        unavailable("systemd-analyze is missing (apt-get install systemd)")
    return found


def rendered() -> dict[str, str]:
    return render_units(unit_templates(), PHOENIX_CERT, CERTBOT)


def test_hooks_systemd_holds_the_packaged_units_as_symlinks() -> None:
    package = REPO_ROOT / "phoenix_certbot" / "data" / "systemd"
    assert sorted(unit_templates()) == sorted(UNITS)
    for name in UNITS:
        link = REPO_ROOT / "hooks" / "systemd" / name
        assert link.is_symlink(), f"{link} should be a symlink to the package data"
        assert link.resolve() == (package / name).resolve()


def test_templates_name_the_executables_only_through_placeholders() -> None:
    templates = unit_templates()
    assert PLACEHOLDERS["certbot"] in templates["phoenix-cert-renew.service"]
    assert PLACEHOLDERS["phoenix_cert"] in templates["phoenix-cert-renew.service"]
    assert PLACEHOLDERS["phoenix_cert"] in templates["phoenix-cert-rotate.service"]
    for text in rendered().values():
        assert "@PHOENIX_CERT@" not in text and "@CERTBOT@" not in text
        assert "/usr/bin/certbot" not in text and "/usr/local/bin" not in text


def test_renew_runs_certbot_renew_with_the_hooks_on_certbots_schedule() -> None:
    units = {name: parse(text) for name, text in rendered().items()}
    service = units["phoenix-cert-renew.service"]["Service"]
    assert service["ExecStart"] == f"{CERTBOT} renew --quiet"
    # The renewal hooks find phoenix-cert through this variable.
    assert service["Environment"] == f"PHOENIX_CERT_BIN={PHOENIX_CERT}"
    assert service["Type"] == "oneshot"
    timer = units["phoenix-cert-renew.timer"]["Timer"]
    assert timer["OnCalendar"] == "*-*-* 00,12:00:00"
    assert timer["RandomizedDelaySec"] == "43200"
    assert timer["Persistent"] == "true"
    assert units["phoenix-cert-renew.timer"]["Install"]["WantedBy"] == "timers.target"


def test_rotate_runs_rotate_all_every_hour() -> None:
    units = {name: parse(text) for name, text in rendered().items()}
    assert units["phoenix-cert-rotate.service"]["Service"]["ExecStart"] == (
        f"{PHOENIX_CERT} rotate --all"
    )
    timer = units["phoenix-cert-rotate.timer"]["Timer"]
    assert timer["OnCalendar"] == "hourly"
    assert timer["Persistent"] == "true"


@pytest.mark.parametrize("name", SERVICES)
def test_services_are_hardened_but_reach_the_docker_socket(name: str) -> None:
    service = parse(rendered()[name])["Service"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
    }.items():
        assert service[key] == value, key
    assert service["StateDirectory"].split()[0] == "phoenix-certbot"
    writable = service["ReadWritePaths"].split()
    assert "-/run/docker.sock" in writable
    assert "AF_UNIX" in service["RestrictAddressFamilies"].split()
    if name == "phoenix-cert-renew.service":
        # certbot's folders: writable, and made when missing (a fresh host has none).
        assert service["ConfigurationDirectory"] == "letsencrypt"
        assert service["StateDirectory"].split() == ["phoenix-certbot", "letsencrypt"]
        assert service["LogsDirectory"] == "letsencrypt"


def test_paths_systemd_would_misread_are_refused() -> None:
    templates = unit_templates()
    for bad in ("relative/phoenix-cert", "/opt/my venv/bin/phoenix-cert", "/opt/100%/x", "/$X/y"):
        with pytest.raises(UsageError):
            render_units(templates, Path(bad), CERTBOT)


def test_dry_run_prints_every_unit_and_writes_nothing(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    result = CliRunner().invoke(
        cli,
        [
            "install-systemd",
            "--dry-run",
            "--unit-dir", str(unit_dir),
            "--phoenix-cert", str(PHOENIX_CERT),
            "--certbot", str(CERTBOT),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name, text in rendered().items():
        assert f"# {unit_dir / name}\n{text}" in result.stdout
    assert not unit_dir.exists()


def test_default_paths_are_the_running_phoenix_cert_and_the_certbot_beside_it(
    tmp_path: Path,
) -> None:
    # The console script as its own process: sys.argv[0] is then the installed executable.
    result = subprocess.run(
        [str(PHOENIX_CERT), "install-systemd", "--dry-run", "--unit-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"ExecStart={PHOENIX_CERT} rotate --all\n" in result.stdout
    assert f"ExecStart={CERTBOT} renew --quiet\n" in result.stdout


def test_installed_units_are_written_0644_and_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = systemd_analyze()
    unit_dir = tmp_path / "system"
    result = CliRunner().invoke(
        cli,
        [
            "install-systemd",
            "--unit-dir", str(unit_dir),
            "--phoenix-cert", str(PHOENIX_CERT),
            "--certbot", str(CERTBOT),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in unit_dir.iterdir()) == sorted(UNITS)
    for name, text in rendered().items():
        path = unit_dir / name
        assert path.read_text() == text
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert "systemctl daemon-reload" in result.stderr

    # Needs no running systemd: it loads the units and checks every executable exists.
    verify = subprocess.run(
        [analyze, "verify", *(str(unit_dir / n) for n in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout + verify.stderr == ""

    # The hardening keeps systemd's own exposure score low (10 is unprotected).
    for name in SERVICES:
        security = subprocess.run(
            [analyze, "security", "--offline=true", "--threshold=30", str(unit_dir / name)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert security.returncode == 0, security.stdout[-600:]


def test_systemd_analyze_verify_rejects_units_whose_executables_are_missing(
    tmp_path: Path,
) -> None:
    # The counterpart of the test above: verify does look at the paths we write.
    analyze = systemd_analyze()
    missing = tmp_path / "nowhere" / "phoenix-cert"
    for name, text in render_units(unit_templates(), missing, CERTBOT).items():
        (tmp_path / name).write_text(text)
    verify = subprocess.run(
        [analyze, "verify", str(tmp_path / "phoenix-cert-rotate.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode != 0
    assert f"{missing} is not executable" in verify.stdout + verify.stderr


def test_an_install_the_units_cannot_reach_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if tmp_path/home were /root: what ProtectHome= hides from the units.
    home = tmp_path / "home"
    monkeypatch.setattr(systemd_cmd, "HIDDEN", {home: "ProtectHome="})
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "venv" / "bin" / "phoenix-cert").write_text("#!/usr/bin/python3\n")
    opt = tmp_path / "opt" / "bin"
    opt.mkdir(parents=True)
    scripts = {
        "python-under-home": f"#!{home}/pyenv/bin/python3.11\nimport sys\n",
        "python-elsewhere": "#!/usr/bin/python3\nimport sys\n",
        "not-a-script": "\x7fELF",
    }
    for name, text in scripts.items():
        (opt / name).write_text(text)
        (opt / name).chmod(0o755)
    (opt / "link").symlink_to(home / "venv" / "bin" / "phoenix-cert")

    assert systemd_cmd.hidden_by_units(opt / "python-under-home") == (
        home / "pyenv" / "bin" / "python3.11",
        "ProtectHome=",
    )
    assert systemd_cmd.hidden_by_units(opt / "link") == (
        home / "venv" / "bin" / "phoenix-cert",
        "ProtectHome=",
    )
    assert systemd_cmd.hidden_by_units(opt / "python-elsewhere") is None
    assert systemd_cmd.hidden_by_units(opt / "not-a-script") is None

    result = CliRunner().invoke(
        cli,
        [
            "install-systemd", "--dry-run",
            "--phoenix-cert", str(opt / "python-under-home"),
            "--certbot", str(opt / "python-elsewhere"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "(ProtectHome=)" in warnings[0] and "status=203/EXEC" in warnings[0]
