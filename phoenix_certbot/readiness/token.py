"""The Portainer API token: read from its file only (never argv or the environment)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from phoenix_certbot.errors import BadInput
from phoenix_certbot.readiness.model import ApiToken

MAX_TOKEN_FILE_BYTES = 4096
# What may travel in an HTTP header value; anything else is not a token (and http.client
# would quote the value in its error, which must never happen).
_TOKEN = re.compile(r"[\x21-\x7e]{8,1024}")


class TokenFileError(BadInput):
    """The token file cannot give a token: missing, unreadable, empty, or too open."""

    def __init__(self, file: Path, message: str) -> None:
        self.file = str(file)
        self.message = message
        super().__init__(f"{file}: {message}")


def read_token(path: Path, *, euid: int | None = None) -> ApiToken:
    """The one token line of `path`. When run as root, a file that group or others may
    read is refused: the token gives Portainer's admin rights to whoever holds it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise TokenFileError(path, "token file not found") from None
    except OSError as exc:
        raise TokenFileError(path, f"cannot read the token file: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise TokenFileError(path, "the token file is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if (os.geteuid() if euid is None else euid) == 0 and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenFileError(
            path,
            f"readable by group or others (mode {mode:04o}) while running as root; "
            f"run: chmod 600 {path}",
        )
    if st.st_size > MAX_TOKEN_FILE_BYTES:
        raise TokenFileError(path, f"larger than {MAX_TOKEN_FILE_BYTES} bytes: not a token file")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise TokenFileError(path, "cannot read the token file as ASCII text") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise TokenFileError(path, "the token file is empty")
    if len(lines) > 1 or not _TOKEN.fullmatch(lines[0]):
        raise TokenFileError(
            path, "the token file must hold one API access token on one line, nothing else"
        )
    return ApiToken(lines[0])
