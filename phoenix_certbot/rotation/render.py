"""Plans and outcomes as text for people and as JSON for programs (pure)."""

from __future__ import annotations

from typing import Any

from phoenix_certbot.rotation.outcome import Outcome, ServiceOutcome
from phoenix_certbot.rotation.plan import Plan


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "certificates": list(plan.certs),
        "create": [
            {
                "kind": n.kind.value,
                "name": n.name,
                "base": n.base,
                "certificate": n.cert,
                "source": n.source.value,
                "sha256": n.sha256,
            }
            for n in plan.creates
        ],
        "services": [
            {
                "service": c.service,
                "certificates": list(c.certs),
                "force": c.force,
                "mounts": [
                    {
                        "kind": m.kind.value,
                        "target": m.target,
                        "from": m.old_name,
                        "to": m.new_name,
                        "uid": m.uid,
                        "gid": m.gid,
                        "mode": f"{m.mode:04o}",
                    }
                    for m in c.mounts
                ],
                "files": [
                    {
                        "path": str(f.path),
                        "source": f.source.value,
                        "mode": f"{f.mode:04o}",
                        "sha256": f.sha256,
                    }
                    for f in c.files
                ],
            }
            for c in plan.changes
        ],
        "verify": [
            {
                "certificate": v.cert,
                "url": v.url,
                "server_name": v.server_name,
                "expect_sha256": v.expected_sha256,
            }
            for v in plan.checks
        ],
        "up_to_date": list(plan.up_to_date),
        "problems": list(plan.problems),
    }


def plan_text(plan: Plan) -> str:
    lines: list[str] = []
    if plan.empty and not plan.problems:
        lines.append(f"nothing to do: {', '.join(plan.up_to_date) or 'no services'} up to date")
    for new in plan.creates:
        lines.append(f"create {new.kind.value} {new.name} ({new.cert} {new.source.value})")
    for change in plan.changes:
        why = " (forced restart)" if change.force and not change.mounts and not change.files else ""
        lines.append(f"update service {change.service} once{why}: {', '.join(change.certs)}")
        for m in change.mounts:
            lines.append(
                f"  {m.kind.value} {m.target}: {m.old_name or '(not mounted)'} -> {m.new_name}"
            )
        for f in change.files:
            lines.append(f"  file {f.path} <- {f.cert} {f.source.value} (mode {f.mode:04o})")
    for check in plan.checks:
        lines.append(
            f"verify {check.url} (SNI {check.server_name}) serves {check.expected_sha256[:16]}"
        )
    if plan.up_to_date and not plan.empty:
        lines.append(f"up to date: {', '.join(plan.up_to_date)}")
    lines.extend(f"problem: {p}" for p in plan.problems)
    return "\n".join(lines)


def _services_json(services: tuple[ServiceOutcome, ...]) -> list[dict[str, Any]]:
    return [
        {
            "service": s.service,
            "certificates": list(s.certs),
            "result": s.result.value,
            "detail": s.detail,
        }
        for s in services
    ]


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "ok": outcome.exit_code == 0,
        "exit_code": outcome.exit_code,
        "plan": plan_json(outcome.plan),
        "recovered": _services_json(outcome.recovered),
        "created": list(outcome.created),
        "services": _services_json(outcome.services),
        "verify": [
            {
                "url": c.check.url,
                "certificate": c.check.cert,
                "ok": c.ok,
                "served_sha256": c.served_sha256,
                "status": c.status,
                "error": c.error,
                "attempts": c.attempts,
                "failing_before": c.failing_before,
            }
            for c in outcome.checks
        ],
        "backing_off": [
            {"certificate": w.cert, "failures": w.failures, "until": w.until.isoformat()}
            for w in outcome.waiting
        ],
        "pruned": list(outcome.pruned),
        "errors": list(outcome.errors),
    }


def _service_line(s: ServiceOutcome) -> str:
    return f"{s.service}: {s.result.value}" + (f" ({s.detail})" if s.detail else "")


def outcome_text(outcome: Outcome) -> str:
    lines = [f"recovered {_service_line(s)}" for s in outcome.recovered]
    lines.extend(_service_line(s) for s in outcome.services)
    for c in outcome.checks:
        state = "ok" if c.ok else f"FAILED: {c.error}"
        if not c.ok and c.failing_before:
            state += f" (already failing before the run: {c.failing_before})"
        served = f"served {str(c.served_sha256)[:16]}, {c.attempts} attempt(s)"
        lines.append(f"verify {c.check.url}: {state} ({served})")
    for w in outcome.waiting:
        lines.append(
            f"backing off: {w.cert} (rollout failed {w.failures} time(s); next try after "
            f"{w.until.strftime('%Y-%m-%d %H:%M')} UTC, or `phoenix-cert rotate {w.cert} --force`)"
        )
    if outcome.pruned:
        lines.append(f"pruned: {', '.join(outcome.pruned)}")
    lines.extend(f"problem: {p}" for p in outcome.plan.problems)
    lines.extend(f"error: {e}" for e in outcome.errors)
    if not (outcome.services or outcome.checks or outcome.plan.problems or outcome.waiting):
        lines.append("nothing to do: every service already serves the certificates on disk")
    return "\n".join(lines)
