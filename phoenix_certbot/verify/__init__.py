"""`phoenix-cert verify`: file checks (compose, manifest, certificates) and live checks.

Pure core: `model` (report, exit code), `files` (file findings), `judge` (live
judgement), `render` (text/JSON). Adapters: `live` (Docker and network observations) and
`run` (reads the inputs and runs everything).
"""

from __future__ import annotations

from phoenix_certbot.verify.model import Checked, Group, VerifyReport
from phoenix_certbot.verify.render import report_json, report_text
from phoenix_certbot.verify.run import VerifyOptions, run_verify

__all__ = [
    "Checked",
    "Group",
    "VerifyOptions",
    "VerifyReport",
    "report_json",
    "report_text",
    "run_verify",
]
