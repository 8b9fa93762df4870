"""hooks/deploy/phoenix-cert and hooks/post/phoenix-cert, run by a POSIX shell against a
stand-in phoenix-cert that records how it was called."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

HOOKS = REPO_ROOT / "hooks"
DEPLOY = HOOKS / "deploy" / "phoenix-cert"
POST = HOOKS / "post" / "phoenix-cert"
FALLBACK = Path("/usr/local/bin/phoenix-cert")
# Debian's /bin/sh is dash; busybox's ash is the other small shell these hooks meet.
SHELLS = [s for s in ("/bin/sh", "/bin/dash", "/bin/busybox") if Path(s).exists()]

RECORDER = """#!/bin/sh
# Writes its arguments and the variables the hooks pass on, as JSON lines, then exits $FAKE_EXIT.
out=$FAKE_RECORD
{
    printf '{"argv0": "%s", "args": [' "$0"
    sep=
    for arg in "$@"; do printf '%s"%s"' "$sep" "$arg"; sep=', '; done
    printf '], "lineage": "%s"}\\n' "${RENEWED_LINEAGE:-}"
} >> "$out"
exit "${FAKE_EXIT:-0}"
"""


def fake_phoenix_cert(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "phoenix-cert"
    path.write_text(RECORDER)
    path.chmod(0o755)
    return path


def run_hook(
    hook: Path, shell: str, record: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    command = [shell, "sh", str(hook)] if shell.endswith("busybox") else [shell, str(hook)]
    base = {"PATH": "/usr/bin:/bin", "FAKE_RECORD": str(record)}
    return subprocess.run(
        command, env={**base, **env}, capture_output=True, text=True, timeout=30, check=False
    )


def calls(record: Path) -> list[dict[str, object]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_hooks_are_executable_files_as_certbot_requires() -> None:
    # certbot skips a file in renewal-hooks/ that is not executable, with only a warning.
    for hook in (DEPLOY, POST):
        mode = hook.stat().st_mode
        assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, f"{hook}: mode {mode:o}"
        assert hook.read_text().startswith("#!/bin/sh\n")


@pytest.mark.parametrize("shell", SHELLS)
def test_deploy_hook_defers_and_post_hook_deploys(shell: str, tmp_path: Path) -> None:
    fake = fake_phoenix_cert(tmp_path / "bin")
    record = tmp_path / "calls.jsonl"
    env = {"PHOENIX_CERT_BIN": str(fake), "RENEWED_LINEAGE": "/etc/letsencrypt/live/a.test"}

    deploy = run_hook(DEPLOY, shell, record, env)
    post = run_hook(POST, shell, record, {"PHOENIX_CERT_BIN": str(fake)})

    assert deploy.returncode == 0, deploy.stderr
    assert post.returncode == 0, post.stderr
    assert calls(record) == [
        {
            "argv0": str(fake),
            "args": ["deploy-hook", "--defer"],
            "lineage": "/etc/letsencrypt/live/a.test",
        },
        {"argv0": str(fake), "args": ["post-hook"], "lineage": ""},
    ]


@pytest.mark.parametrize("hook", [DEPLOY, POST], ids=["deploy", "post"])
def test_phoenix_cert_bin_wins_over_path_and_path_is_used_without_it(
    hook: Path, tmp_path: Path
) -> None:
    chosen = fake_phoenix_cert(tmp_path / "chosen")
    on_path = fake_phoenix_cert(tmp_path / "on-path")
    record = tmp_path / "calls.jsonl"
    path = f"{on_path.parent}:/usr/bin:/bin"

    with_bin = run_hook(hook, "/bin/sh", record, {"PHOENIX_CERT_BIN": str(chosen), "PATH": path})
    without = run_hook(hook, "/bin/sh", record, {"PATH": path})

    assert (with_bin.returncode, without.returncode) == (0, 0), with_bin.stderr + without.stderr

    assert [c["argv0"] for c in calls(record)] == [str(chosen), str(on_path)]


@pytest.mark.parametrize("hook", [DEPLOY, POST], ids=["deploy", "post"])
def test_without_bin_or_path_it_falls_back_to_usr_local_bin(hook: Path, tmp_path: Path) -> None:
    if FALLBACK.exists():
        pytest.skip(f"{FALLBACK} exists here; running it would run the real phoenix-cert")
    result = run_hook(hook, "/bin/sh", tmp_path / "calls.jsonl", {"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert f"{FALLBACK} is not executable; set PHOENIX_CERT_BIN" in result.stderr


@pytest.mark.parametrize("hook", [DEPLOY, POST], ids=["deploy", "post"])
def test_manifest_is_passed_as_one_argument_and_never_evaluated(hook: Path, tmp_path: Path) -> None:
    fake = fake_phoenix_cert(tmp_path / "bin")
    record = tmp_path / "calls.jsonl"
    canary = tmp_path / "evaluated"
    manifest = f"{tmp_path}/my manifests/$(touch {canary}) `touch {canary}`;*.json"

    result = run_hook(
        hook,
        "/bin/sh",
        record,
        {"PHOENIX_CERT_BIN": str(fake), "PHOENIX_CERT_MANIFEST": manifest, "RENEWED_LINEAGE": "x"},
    )

    assert result.returncode == 0, result.stderr
    (call,) = calls(record)
    args = call["args"]
    assert isinstance(args, list) and args[-2:] == ["--manifest", manifest]
    assert not canary.exists()


@pytest.mark.parametrize("hook", [DEPLOY, POST], ids=["deploy", "post"])
def test_phoenix_cert_exit_status_is_the_hooks(hook: Path, tmp_path: Path) -> None:
    # certbot reports a failed hook (and `certbot renew` exits non-zero): it must see ours.
    fake = fake_phoenix_cert(tmp_path / "bin")
    env = {"PHOENIX_CERT_BIN": str(fake), "FAKE_EXIT": "4", "RENEWED_LINEAGE": "x"}
    assert run_hook(hook, "/bin/sh", tmp_path / "calls.jsonl", env).returncode == 4


def test_shellcheck_finds_nothing() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (optional: apt-get install shellcheck)")
    result = subprocess.run(
        [shellcheck, "--shell=sh", str(DEPLOY), str(POST)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
