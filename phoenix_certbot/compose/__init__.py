"""Compose/stack file lint: port layout and certificate wiring, checked without Docker."""

from __future__ import annotations

from phoenix_certbot.compose.context import RULE_SEVERITY, Rule
from phoenix_certbot.compose.lint import RULES, lint_compose
from phoenix_certbot.compose.load import load_compose, parse_compose
from phoenix_certbot.compose.model import ComposeFile, ComposeService, UnsetVariable
from phoenix_certbot.compose.ports import InvalidPort, PortSpec, parse_port, parse_ports

__all__ = [
    "RULES",
    "RULE_SEVERITY",
    "ComposeFile",
    "ComposeService",
    "InvalidPort",
    "PortSpec",
    "Rule",
    "UnsetVariable",
    "lint_compose",
    "load_compose",
    "parse_compose",
    "parse_port",
    "parse_ports",
]
