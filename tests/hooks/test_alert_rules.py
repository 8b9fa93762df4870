"""The shipped alerting rules: valid for Prometheus, behaving as their tests say, and
written against metrics that phoenix-cert really exports."""

from __future__ import annotations

import re

import yaml

from phoenix_certbot.status.metrics import FAMILIES
from tests.conftest import REPO_ROOT
from tests.status.promtool import promtool

RULES = REPO_ROOT / "hooks" / "prometheus" / "phoenix-certbot.rules.yml"
RULE_TESTS = REPO_ROOT / "tests" / "hooks" / "phoenix-certbot.rules.test.yml"
WANTED = {
    "PhoenixCertExpiresSoon",  # under 14 days
    "PhoenixCertExpiresVerySoon",  # under 3 days
    "PhoenixCertRotationFailed",
    "PhoenixCertNotDeployed",  # deployed version behind the disk
    "PhoenixCertNotServed",  # verification failing
    "PhoenixCertFilesBroken",
    "PhoenixCertMetricsStale",  # the timer stopped
    "PhoenixCertIntentOpen",  # an interrupted update the next runs did not resolve
}


def _rules() -> list[dict[str, object]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_check_rules_accepts_the_file() -> None:
    out = promtool("check", "rules", str(RULES))
    assert f"SUCCESS: {len(WANTED)} rules found" in out


def test_promtool_rule_tests_pass() -> None:
    # Relative rule_files resolve from the test file's folder.
    out = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert "SUCCESS" in out


def test_every_wanted_alert_is_there_and_tested() -> None:
    assert {str(rule["alert"]) for rule in _rules()} == WANTED
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert tested == WANTED


def test_the_rules_use_only_metrics_phoenix_cert_writes() -> None:
    used = {m for rule in _rules() for m in re.findall(r"phoenix_cert_\w+", str(rule["expr"]))}
    assert used and used <= set(FAMILIES)
