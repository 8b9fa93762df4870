from __future__ import annotations

from pathlib import Path

from phoenix_certbot.compose.load import load_compose
from phoenix_certbot.compose.tree import Scalar


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_later_file_overrides_service_keys_and_keeps_origins(tmp_path: Path) -> None:
    base = _write(
        tmp_path / "base.yml",
        "version: '3.8'\n"
        "services:\n"
        "  portainer:\n"
        "    image: portainer/portainer-ce:2.19.3\n"
        "    command: --sslcert /run/secrets/a\n"
        "    ports:\n"
        "      - '9443:9443'\n"
        "    secrets:\n"
        "      - source: cert\n"
        "        target: old\n"
        "      - key\n"
        "    deploy:\n"
        "      replicas: 1\n"
        "      placement:\n"
        "        constraints: [node.role == manager]\n"
        "  agent:\n"
        "    image: portainer/agent:2.19.3\n"
        "secrets:\n"
        "  cert: {external: true}\n",
    )
    override = _write(
        tmp_path / "override.yml",
        "services:\n"
        "  portainer:\n"
        "    image: portainer/portainer-ce:2.19.4\n"
        "    ports:\n"
        "      - '9443:9443'\n"
        "      - target: 8000\n"
        "        published: 8000\n"
        "        mode: host\n"
        "    secrets:\n"
        "      - source: cert\n"
        "        target: new\n"
        "    deploy:\n"
        "      update_config: {order: stop-first}\n"
        "  extra:\n"
        "    image: nginx\n"
        "secrets:\n"
        "  cert: {name: renamed}\n",
    )
    stack = load_compose([base, override], environ={})
    assert stack.files == (str(base), str(override))
    assert [s.name for s in stack.services] == ["portainer", "agent", "extra"]
    portainer, agent, extra = stack.services
    # A service defined in both files stays where it was first defined.
    assert (portainer.file, portainer.line) == (str(base), 3)
    assert (extra.file, extra.line) == (str(override), 14)
    image = portainer.node.entry("image")
    assert image is not None
    assert image.value == Scalar("portainer/portainer-ce:2.19.4", str(override), 3)
    assert image.key.file == str(override)
    command = portainer.node.entry("command")
    assert command is not None
    assert command.key.file == str(base)
    # Ports are combined; the identical 9443 is kept once (the later file's entry).
    assert [(p.published, p.mode, p.file, p.line) for p in portainer.valid_ports()] == [
        (9443, "ingress", str(override), 5),
        (8000, "host", str(override), 6),
    ]
    # Secrets are combined by source, the later definition winning.
    secrets = portainer.node.sequence("secrets")
    assert secrets is not None
    assert [(i.file, i.line) for i in secrets.items] == [(str(override), 10), (str(base), 11)]
    # deploy merges key by key.
    assert portainer.replica_count() == 1
    assert portainer.constraints() == ("node.role == manager",)
    order = portainer.update_order()
    assert order is not None
    assert (order.text, order.file, order.line) == ("stop-first", str(override), 13)
    assert agent.image == "portainer/agent:2.19.3"
    top = stack.objects("secrets")
    assert top is not None
    cert = top.mapping("cert")
    assert cert is not None
    assert cert.keys() == ("external", "name")


def test_later_scalar_replaces_list_and_unset_variables_accumulate(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.yml", "services:\n  web:\n    image: ${A}\n    command: [a, b]\n")
    b = _write(tmp_path / "b.yml", "services:\n  web:\n    command: run ${B}\n")
    stack = load_compose([a, b], environ={})
    (web,) = stack.services
    assert [c.text for c in web.command()] == ["run"]
    assert [(u.name, u.file) for u in stack.unset] == [("A", str(a)), ("B", str(b))]


def test_dotenv_of_the_first_file_serves_all_files(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _write(tmp_path / "one" / ".env", "TAG=one\n")
    _write(tmp_path / "two" / ".env", "TAG=two\n")
    a = _write(tmp_path / "one" / "a.yml", "services:\n  web:\n    image: x\n")
    b = _write(tmp_path / "two" / "b.yml", "services:\n  web:\n    image: nginx:${TAG}\n")
    assert load_compose([a, b], environ={}).services[0].image == "nginx:one"
