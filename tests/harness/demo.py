"""`make demo`: the whole job on one machine, told step by step.

A one-node swarm, Pebble as the ACME server, the shipped Portainer stack deployed with the
stand-in image and a self-signed bootstrap certificate, `phoenix-cert wait-ready` until
Portainer reaches its agent on every node, then certbot issuing a real
certificate with phoenix-cert as its deploy hook, then a forced renewal. After each step
it says what 127.0.0.1:9443 serves. Everything it creates is removed at the end unless
`--keep` is given (then `make clean-lab` removes it later).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from phoenix_certbot.net.probe import probe_until
from tests.harness.certbot_runner import Certbot
from tests.harness.pebble import PebbleProcess
from tests.harness.ports import free_port
from tests.support import pki

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
STACK = "phoenix-lab"
CERT_NAME = "phoenix-lab"
DOMAIN = "portainer.lab.test"
URL = "https://127.0.0.1:9443/api/system/status"
SERVICE = f"{STACK}_portainer"
LAB_DIR = Path(os.environ.get("PHOENIX_LAB_DIR", "/tmp/phoenix-lab"))
BOOT_CERT, BOOT_KEY = "phoenix-lab.sslcert.bootstrap", "phoenix-lab.sslkey.bootstrap"
API_KEY_SECRET = "phoenix-lab.portainer-apikey"
# The shipped stack, plus the API key the stand-in accepts (a real Portainer keeps its
# access tokens in its database; the stand-in reads one from a secret).
API_KEY_OVERRIDE = f"""\
version: "3.8"
services:
  portainer:
    secrets:
      - source: portainer.apikey
        target: portainer.apikey
        mode: 0400
secrets:
  portainer.apikey:
    external: true
    name: {API_KEY_SECRET}
"""


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def docker(*args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    if check and done.returncode:
        raise SystemExit(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def standin_image() -> str:
    out = subprocess.run(
        ["bash", str(REPO / "tests/harness/standin/build.sh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout.strip().splitlines()[-1]


def tasks_started() -> int:
    return len(docker("service", "ps", SERVICE, "-q", check=False).split())


def account(step: str, expected: Path | None = None) -> None:
    result, attempts = probe_until(URL, DOMAIN, None, timeout_s=60)
    if result.leaf_der is None:
        print(f"   {step}: nothing served at {URL}: {result.error}")
        return
    leaf = x509.load_der_x509_certificate(result.leaf_der)
    issuer = leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    print(f"   served at {URL} (SNI {DOMAIN}), after {attempts} probe(s):")
    print(f"     SHA-256  {result.leaf_sha256}")
    print(f"     issuer   {issuer[0].value if issuer else leaf.issuer.rfc4514_string()}")
    print(f"     expires  {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    print(f"     HTTP     {result.status} {result.body[:80].decode(errors='replace')}")
    print(f"     tasks of {SERVICE} started so far: {tasks_started()}")
    if expected is not None:
        on_disk = x509.load_pem_x509_certificate(expected.read_bytes())
        match = on_disk.fingerprint(hashes.SHA256()).hex() == result.leaf_sha256
        print(f"     equals {expected}: {'yes' if match else 'NO'}")
        if not match:
            raise SystemExit("the served certificate is not the one certbot wrote")


def write_manifest(lab: Path, live: Path) -> Path:
    manifest = {
        "version": 2,
        "settings": {
            "certbot_live_dir": str(live),
            "state_dir": str(lab / "state"),
            "update_timeout_s": 120,
            "keep_versions": 2,
        },
        "certificates": [
            {
                "name": CERT_NAME,
                "sans": [DOMAIN],
                "services": [
                    {
                        "service": SERVICE,
                        "secrets": [
                            {
                                "name": "phoenix-lab.sslcert",
                                "source": "fullchain",
                                "target": "portainer.sslcert",
                            },
                            {
                                "name": "phoenix-lab.sslkey",
                                "source": "privkey",
                                "target": "portainer.sslkey",
                                "mode": "0400",
                            },
                        ],
                    }
                ],
                "verify": [{"url": URL, "server_name": DOMAIN}],
            }
        ],
    }
    path = lab / "certificate-manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    path.chmod(0o600)
    return path


def create_secret(name: str, data: bytes) -> None:
    done = subprocess.run(
        ["docker", "secret", "create", name, "-"],
        input=data,
        capture_output=True,
        check=False,
        timeout=60,
    )
    if done.returncode:
        raise SystemExit(f"docker secret create failed: {done.stderr.decode().strip()}")


def deploy_stack(image: str, lab: Path) -> tuple[Path, Path]:
    """The shipped stack with a self-signed bootstrap certificate; returns that
    certificate's file (the CA to trust for it) and the API token's file."""
    boot = pki.issue([DOMAIN], common_name="bootstrap (self-signed)")
    create_secret(BOOT_KEY, boot.key_pem)
    create_secret(BOOT_CERT, boot.cert_pem)
    token = lab / "portainer.token"
    token.write_text(f"ptr_demo{secrets.token_hex(16)}\n")
    token.chmod(0o600)
    create_secret(API_KEY_SECRET, token.read_bytes())
    override = lab / "portainer-apikey.yml"
    override.write_text(API_KEY_OVERRIDE)
    boot_pem = lab / "bootstrap-certificate.pem"
    boot_pem.write_bytes(boot.cert_pem)
    env = {
        "PORTAINER_SSLCERT": BOOT_CERT,
        "PORTAINER_SSLKEY": BOOT_KEY,
        "PORTAINER_IMAGE": image,
        "PORTAINER_AGENT_IMAGE": image,
    }
    docker(
        "stack",
        "deploy",
        "--resolve-image",
        "never",
        "-c",
        str(REPO / "manifests/portainer-stack.yml"),
        "-c",
        str(override),
        STACK,
        env=env,
    )
    return boot_pem, token


def clean() -> None:
    docker("stack", "rm", STACK, check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and docker(
        "ps", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}", check=False
    ):
        time.sleep(0.5)
    docker("volume", "rm", f"{STACK}_portainer_data", check=False)
    ours = docker(
        "secret", "ls", "-q", "--filter", f"label=io.phoenix-certbot.cert={CERT_NAME}", check=False
    ).split()
    for name in (BOOT_CERT, BOOT_KEY, API_KEY_SECRET, *ours):
        docker("secret", "rm", name, check=False)
    shutil.rmtree(LAB_DIR, ignore_errors=True)


def certbot_step(certbot: Certbot, *args: str) -> bool:
    started = time.monotonic()
    done = certbot.run(*args)
    print(f"   certbot exit {done.returncode} in {time.monotonic() - started:.1f} s")
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-4000:], sep="\n")
    return done.returncode == 0


def phoenix_cert(*args: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [str(VENV_BIN / "phoenix-cert"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    print(f"   phoenix-cert {args[0]}: exit {done.returncode}")
    for line in (done.stdout + done.stderr).strip().splitlines():
        print(f"     {line}")


def run_lab(pebble_process: PebbleProcess, http_port: str) -> int:
    say(f"1. Pebble (a real ACME server) on {pebble_process.listen}")
    pebble = pebble_process.start()
    certbot = Certbot(
        base=LAB_DIR / "certbot", server=pebble.directory_url, ca_bundle=pebble.listener_ca_path
    )
    manifest = write_manifest(LAB_DIR, certbot.live)
    hook = f"{VENV_BIN / 'phoenix-cert'} deploy-hook --manifest {manifest}"
    lineage_cert = certbot.live / CERT_NAME / "cert.pem"

    say(
        f"2. Portainer stack '{STACK}' from manifests/portainer-stack.yml "
        "(stand-in image, self-signed bootstrap certificate)"
    )
    boot_pem, token = deploy_stack(standin_image(), LAB_DIR)
    account("bootstrap")

    say("2b. phoenix-cert wait-ready: bounded, until Portainer reaches the agent on every node")
    portainer = ["--portainer-url", "https://127.0.0.1:9443", "--portainer-server-name", DOMAIN]
    print("   without the self-signed certificate to trust (--timeout 3):")
    phoenix_cert("wait-ready", *portainer, "--timeout", "3", "--interval", "1")
    print("   with it, and the API token:")
    phoenix_cert(
        "wait-ready",
        *portainer,
        "--portainer-ca-file",
        str(boot_pem),
        "--portainer-token-file",
        str(token),
        "--timeout",
        "90",
    )

    say(f"3. certbot certonly -d {DOMAIN} with --deploy-hook 'phoenix-cert deploy-hook'")
    if not certbot_step(
        certbot,
        "certonly",
        "--standalone",
        "--http-01-port",
        http_port,
        "-d",
        DOMAIN,
        "--cert-name",
        CERT_NAME,
        "--deploy-hook",
        hook,
    ):
        return 1
    account("issued", lineage_cert)
    phoenix_cert(
        "verify",
        "--offline",
        "--manifest",
        str(manifest),
        "--compose",
        str(REPO / "manifests/portainer-stack.yml"),
        "--stack",
        STACK,
        env={"PORTAINER_SSLCERT": BOOT_CERT, "PORTAINER_SSLKEY": BOOT_KEY},
    )

    say("4. certbot renew --force-renewal (same deploy hook)")
    if not certbot_step(certbot, "renew", "--force-renewal", "--deploy-hook", hook):
        return 1
    account("renewed", lineage_cert)

    say("5. phoenix-cert plan (nothing left to do) and the versions in the swarm")
    phoenix_cert("plan", "--all", "--manifest", str(manifest))
    print(
        docker(
            "secret",
            "ls",
            "--filter",
            f"label=io.phoenix-certbot.cert={CERT_NAME}",
            "--format",
            "{{.Name}}  created {{.CreatedAt}}",
        )
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    parser.add_argument("--clean", action="store_true", help="only remove a kept lab")
    args = parser.parse_args()
    if args.clean:
        clean()
        print("lab removed")
        return 0
    clean()  # a lab left by an interrupted run
    LAB_DIR.mkdir(parents=True)
    # Free ports: the lab can run beside a test session's Pebble.
    pebble_process = PebbleProcess(
        LAB_DIR, listen=f"127.0.0.1:{free_port()}", management=f"127.0.0.1:{free_port()}"
    )
    started = time.monotonic()
    try:
        status = run_lab(pebble_process, str(free_port()))
        print(
            f"\nlab {'finished' if status == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s"
        )
        return status
    finally:
        pebble_process.stop()
        if args.keep:
            print(f"\nlab kept: stack {STACK}, files in {LAB_DIR}; remove with `make clean-lab`")
        else:
            clean()
            print("\nlab removed (pass KEEP=1 to keep it)")


if __name__ == "__main__":
    sys.exit(main())
