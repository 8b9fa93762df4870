"""Run Pebble, a real ACME server, on loopback for the length of a test session."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support import pki

PEBBLE = Path("/usr/bin/pebble")
LISTEN = "127.0.0.1:14000"
MANAGEMENT = "127.0.0.1:15000"
HTTP_PORT = 5002
TLS_PORT = 5001


class PebbleError(RuntimeError):
    pass


@dataclass(frozen=True)
class Pebble:
    directory_url: str
    management_url: str
    listener_ca_path: Path
    """PEM of the CA that signed Pebble's own HTTPS listener: the REQUESTS_CA_BUNDLE to use."""
    log_path: Path

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.listener_ca_path))

    def fetch(self, url: str, timeout: float = 5.0) -> bytes:
        with urllib.request.urlopen(url, timeout=timeout, context=self._context()) as response:  # noqa: S310 - fixed https URL
            body: bytes = response.read()
        return body

    def root_pem(self) -> bytes:
        """The issuing root in force now; Pebble makes a new one at every start."""
        return self.fetch(f"{self.management_url}/roots/0")

    def intermediate_pem(self) -> bytes:
        return self.fetch(f"{self.management_url}/intermediates/0")


def write_config(
    folder: Path, listen: str = LISTEN, management: str = MANAGEMENT
) -> tuple[Path, Path]:
    """Listener certificate and config file for Pebble in `folder`; returns (config, CA)."""
    ca = pki.make_ca("phoenix test Pebble listener CA")
    leaf = pki.issue(["127.0.0.1", "localhost"], ca)
    (folder / "listener-ca.pem").write_bytes(ca.cert_pem)
    (folder / "listener.pem").write_bytes(leaf.cert_pem)
    (folder / "listener.key").write_bytes(leaf.key_pem)
    config = {
        "pebble": {
            "listenAddress": listen,
            "managementListenAddress": management,
            "certificate": str(folder / "listener.pem"),
            "privateKey": str(folder / "listener.key"),
            "httpPort": HTTP_PORT,
            "tlsPort": TLS_PORT,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    config_path = folder / "pebble-config.json"
    config_path.write_text(json.dumps(config, indent=2))
    return config_path, folder / "listener-ca.pem"


class PebbleProcess:
    """Starts Pebble in `folder`; `stop()` ends it. Use as a context manager."""

    def __init__(
        self,
        folder: Path,
        start_timeout: float = 20.0,
        listen: str = LISTEN,
        management: str = MANAGEMENT,
    ) -> None:
        # The demo passes free ports so that it can run beside a test session.
        self.listen = listen
        self.management = management
        self.folder = folder
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Pebble:
        config_path, ca_path = write_config(self.folder, self.listen, self.management)
        log_path = self.folder / "pebble.log"
        env = dict(os.environ)
        env.update(
            PEBBLE_VA_ALWAYS_VALID="1",
            PEBBLE_VA_NOSLEEP="1",
            # Pebble rejects 5% of good nonces by default to exercise clients' retries;
            # tests here want the same result at every run.
            PEBBLE_WFE_NONCEREJECT="0",
        )
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(PEBBLE), "-config", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        pebble = Pebble(
            directory_url=f"https://{self.listen}/dir",
            management_url=f"https://{self.management}",
            listener_ca_path=ca_path,
            log_path=log_path,
        )
        self._wait_ready(pebble)
        return pebble

    def _wait_ready(self, pebble: Pebble) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer yet"
        for _attempt in range(int(self.start_timeout / 0.1) + 1):
            if self.process.poll() is not None:
                log = pebble.log_path.read_text(errors="replace")
                raise PebbleError(f"pebble exited with {self.process.returncode}:\n{log}")
            try:
                pebble.fetch(pebble.directory_url, timeout=2.0)
                pebble.root_pem()
            except (OSError, urllib.error.URLError) as exc:
                last_error = str(exc)
            else:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.stop()
        raise PebbleError(f"pebble did not answer within {self.start_timeout} s: {last_error}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
