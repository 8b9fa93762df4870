"""Pure judgement of live observations: probe results, convergence and drift."""

from __future__ import annotations

import datetime as dt

import pytest

from phoenix_certbot.findings import Severity
from phoenix_certbot.manifest.model import ObjectKind, ServiceBinding, Source, SwarmObjectRef
from phoenix_certbot.naming import versioned_name
from phoenix_certbot.net.portainer import portainer_status_problem
from phoenix_certbot.net.probe import ProbeResult
from phoenix_certbot.swarm.model import (
    LABEL_BASE,
    LABEL_MANAGED,
    LABEL_SHA256,
    DeployedObject,
    MountRef,
    ServiceState,
    SwarmSnapshot,
    TaskState,
    UpdateState,
)
from phoenix_certbot.verify.judge import (
    LIVE_FINDING_IDS,
    ProbeTarget,
    judge_convergence,
    judge_mounts,
    judge_probe,
    service_missing,
)
from tests.support import pki
from tests.verify.builders import SANS, days, der

NOW = pki.utcnow()
URL = "https://127.0.0.1:9443/api/system/status"
STATUS_BODY = b'{"Version": "2.19.4", "InstanceID": "x"}'
LEAF = pki.issue(list(SANS))


def _target(
    expected: str | None = LEAF.sha256,
    *,
    url: str = URL,
    node: str | None = None,
    server_name: str = "portainer.test",
) -> ProbeTarget:
    return ProbeTarget("portainer", url, server_name, expected, "p_portainer", node)


def _served(
    leaf: pki.Issued = LEAF,
    status: int | None = 200,
    body: bytes = STATUS_BODY,
    error: str | None = None,
    stage: str = "",
) -> ProbeResult:
    return ProbeResult(URL, "portainer.test", der(leaf), status, body, error, stage)


def _ids(target: ProbeTarget, result: ProbeResult, attempts: int = 1) -> list[str]:
    findings = judge_probe(target, result, NOW, attempts)
    assert all(f.severity is Severity.ERROR for f in findings)
    assert all(f.certificate == "portainer" and f.fix for f in findings)
    return [f.id for f in findings]


def test_healthy_answer_has_no_finding() -> None:
    assert _ids(_target(), _served()) == []


def test_connect_failure() -> None:
    result = ProbeResult(
        URL,
        "portainer.test",
        error="connect to 127.0.0.1:9443 failed: [Errno 111] Connection refused",
        stage="connect",
    )
    findings = judge_probe(_target(), result, NOW, 5)
    assert [f.id for f in findings] == ["live.connect"]
    assert "after 5 attempts" in findings[0].message
    assert "not under deploy" in findings[0].fix


def test_tls_failure() -> None:
    result = ProbeResult(URL, "portainer.test", error="TLS handshake timed out", stage="tls")
    assert _ids(_target(), result) == ["live.tls"]


@pytest.mark.parametrize("leaf_der", [None, b"not DER"])
def test_no_or_unparsable_certificate(leaf_der: bytes | None) -> None:
    result = ProbeResult(URL, "portainer.test", leaf_der=leaf_der, status=200, body=STATUS_BODY)
    assert _ids(_target(), result) == ["live.tls"]


def test_wrong_certificate() -> None:
    other = pki.issue(list(SANS))
    findings = judge_probe(_target(), _served(other), NOW)
    assert [f.id for f in findings] == ["live.wrong-cert"]
    assert other.sha256[:16] in findings[0].message
    assert LEAF.sha256[:16] in findings[0].message


def test_unknown_expectation_skips_the_fingerprint_comparison() -> None:
    assert _ids(_target(expected=None), _served(pki.issue(list(SANS)))) == []


def test_san_not_covering_the_server_name() -> None:
    findings = judge_probe(_target(server_name="other.test"), _served(), NOW)
    assert [f.id for f in findings] == ["live.san"]
    assert "other.test" in findings[0].message


def test_expired_served_certificate() -> None:
    old = pki.issue(list(SANS), not_before=NOW - days(100), not_after=NOW - days(10))
    assert _ids(_target(old.sha256), _served(old)) == ["live.expired"]
    # Serving the old, expired certificate instead of the one on disk: both are said.
    assert _ids(_target(), _served(old)) == ["live.wrong-cert", "live.expired"]


def test_http_status_not_2xx() -> None:
    findings = judge_probe(_target(), _served(status=503, body=b""), NOW)
    assert [f.id for f in findings] == ["live.http-status"]
    assert "503" in findings[0].message


def test_http_answer_missing() -> None:
    result = _served(status=None, body=b"", error="HTTP request failed: timed out", stage="http")
    assert _ids(_target(), result) == ["live.http-status"]


@pytest.mark.parametrize("body", [b"<html>login</html>", b'{"Status": "ok"}', b"[1, 2]", b"\xff"])
def test_portainer_status_needs_json_with_version(body: bytes) -> None:
    assert _ids(_target(), _served(body=body)) == ["live.portainer-json"]
    assert portainer_status_problem(body) is not None


def test_other_paths_need_no_json() -> None:
    url = "https://127.0.0.1:9443/"
    assert _ids(_target(url=url), _served(body=b"<html></html>")) == []


def test_node_handshake() -> None:
    node = _target(url="https://10.213.0.2:9443/api/system/status", node="worker1")
    refused = ProbeResult(node.url, "portainer.test", error="refused", stage="connect")
    findings = judge_probe(node, refused, NOW)
    assert [f.id for f in findings] == ["live.node-unreachable"]
    assert "worker1" in findings[0].message and "10.213.0.2:9443" in findings[0].message
    # A node check is about the handshake: an HTTP problem is the URL check's business.
    assert _ids(node, _served(status=None, body=b"", error="HTTP failed", stage="http")) == []
    assert _ids(node, _served(pki.issue(list(SANS)))) == ["live.wrong-cert"]


# -- services ----------------------------------------------------------------------------
def _service(
    refs: tuple[MountRef, ...] = (),
    update_state: UpdateState = UpdateState.NONE,
    update_message: str = "",
) -> ServiceState:
    return ServiceState(
        id="svc1",
        name="p_portainer",
        version=3,
        refs=refs,
        replicas=1,
        update_state=update_state,
        update_message=update_message,
        monitor_s=5.0,
    )


def _task(
    state: str = "running",
    age_s: float = 60.0,
    refs: tuple[MountRef, ...] = (),
    desired: str = "running",
    error: str = "",
) -> TaskState:
    return TaskState(
        id=f"t{age_s}{state}",
        service_id="svc1",
        node_id="node1",
        desired_state=desired,
        state=state,
        since=NOW - dt.timedelta(seconds=age_s),
        refs=refs,
        force_update=0,
        error=error,
    )


def test_converged_service() -> None:
    assert judge_convergence(_service(), [_task()], ["portainer"], NOW) == []


def test_task_failing_at_start_is_not_converged() -> None:
    tasks = [_task("failed", 3, desired="shutdown", error="task: non-zero exit (1)")]
    findings = judge_convergence(_service(), tasks, ["portainer"], NOW)
    assert [(f.id, f.severity) for f in findings] == [("live.not-converged", Severity.ERROR)]
    assert findings[0].service == "p_portainer" and findings[0].certificate == "portainer"


def test_paused_update_is_not_converged() -> None:
    service = _service(update_state=UpdateState.PAUSED, update_message="update paused")
    findings = judge_convergence(service, [_task()], ["a", "b"], NOW)
    assert [f.id for f in findings] == ["live.not-converged"]
    assert findings[0].certificate is None  # the service carries two certificates


@pytest.mark.parametrize(
    ("service", "task"),
    [
        (_service(), _task(age_s=1.0)),  # within the monitor period
        (_service(update_state=UpdateState.UPDATING), _task("starting", 0.5)),
    ],
)
def test_settling_service_is_a_warning(service: ServiceState, task: TaskState) -> None:
    findings = judge_convergence(service, [task], ["portainer"], NOW)
    assert [(f.id, f.severity) for f in findings] == [("live.converging", Severity.WARNING)]


def test_missing_service() -> None:
    finding = service_missing("p_portainer", ["portainer"])
    assert (finding.id, finding.severity, finding.service) == (
        "live.service-missing",
        Severity.ERROR,
        "p_portainer",
    )


CERT_SHA = "a" * 64
OLD_SHA = "b" * 64
REF = SwarmObjectRef(ObjectKind.SECRET, "portainer.sslcert", Source.FULLCHAIN, "portainer.sslcert")
BINDING = ServiceBinding("p_portainer", secrets=(REF,))
CURRENT = versioned_name("portainer.sslcert", CERT_SHA)
OLD = versioned_name("portainer.sslcert", OLD_SHA)


def _obj(ident: str, name: str, sha: str | None, managed: bool = True) -> DeployedObject:
    labels = {LABEL_SHA256: sha} if sha else {}
    if managed:  # as the engine labels its versions
        labels.update({LABEL_MANAGED: "true", LABEL_BASE: REF.name})
    return DeployedObject(ObjectKind.SECRET, ident, name, NOW, tuple(sorted(labels.items())))


def _mounting(
    ident: str, name: str, target: str = "portainer.sslcert", mode: int = 0o444
) -> ServiceState:
    return _service((MountRef(ObjectKind.SECRET, ident, name, target, mode=mode),))


def _drift(service: ServiceState, *objects: DeployedObject) -> list[str]:
    snapshot = SwarmSnapshot(services=(service,), objects=objects)
    findings = judge_mounts("portainer", BINDING, service, snapshot, {Source.FULLCHAIN: CERT_SHA})
    assert all(f.service == "p_portainer" and f.certificate == "portainer" for f in findings)
    return [f.id for f in findings]


def test_mount_of_the_current_version() -> None:
    assert _drift(_mounting("s1", CURRENT), _obj("s1", CURRENT, CERT_SHA)) == []
    # Another name with the same content (labelled by us) is just as current.
    assert _drift(_mounting("s9", "renamed"), _obj("s9", "renamed", CERT_SHA)) == []


def test_drift_behind() -> None:
    objects = (_obj("s0", OLD, OLD_SHA), _obj("s1", CURRENT, CERT_SHA))
    assert _drift(_mounting("s0", OLD), *objects) == ["live.drift-behind"]
    assert _drift(_mounting("s0", OLD), objects[0]) == ["live.drift-behind"]


def test_drift_reverted_by_a_stack_redeploy() -> None:
    objects = (_obj("b0", "portainer.sslcert", None, managed=False), _obj("s1", CURRENT, CERT_SHA))
    assert _drift(_mounting("b0", "portainer.sslcert"), *objects) == ["live.drift-reverted"]


def test_never_rotated() -> None:
    bootstrap = _obj("b0", "portainer.sslcert", None, managed=False)
    assert _drift(_mounting("b0", "portainer.sslcert"), bootstrap) == ["live.drift-unrotated"]


def test_drift_attrs_the_right_version_with_another_mode() -> None:
    service = _mounting("s1", CURRENT, mode=0o440)
    snapshot = SwarmSnapshot(services=(service,), objects=(_obj("s1", CURRENT, CERT_SHA),))
    (finding,) = judge_mounts("portainer", BINDING, service, snapshot, {Source.FULLCHAIN: CERT_SHA})
    assert finding.id == "live.drift-attrs"
    assert finding.message == (
        f"service p_portainer mounts secret {CURRENT} at portainer.sslcert as 0:0 0440; "
        "the manifest says 0:0 0444"
    )


def test_a_version_of_another_base_is_not_behind() -> None:
    other = DeployedObject(
        ObjectKind.SECRET,
        "o1",
        "other_" + "b" * 12,
        NOW,
        ((LABEL_BASE, "other"), (LABEL_MANAGED, "true"), (LABEL_SHA256, OLD_SHA)),
    )
    objects = (other, _obj("s1", CURRENT, CERT_SHA))
    assert _drift(_mounting("o1", other.name), *objects) == ["live.drift-reverted"]
    assert _drift(_mounting("o1", other.name), other) == ["live.drift-unrotated"]


def test_mount_missing() -> None:
    service = _mounting("s1", CURRENT, target="elsewhere")
    assert _drift(service, _obj("s1", CURRENT, CERT_SHA)) == ["live.mount-missing"]


def test_live_ids_are_unique_and_prefixed() -> None:
    assert len(set(LIVE_FINDING_IDS)) == len(LIVE_FINDING_IDS)
    assert all(i.startswith("live.") for i in LIVE_FINDING_IDS)
