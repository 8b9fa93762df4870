from __future__ import annotations

from pathlib import Path

import pytest

from phoenix_certbot.compose.load import load_compose, parse_compose
from phoenix_certbot.compose.model import UnsetVariable
from phoenix_certbot.compose.tree import MapNode, Scalar, SeqNode
from phoenix_certbot.errors import EXIT_BAD_INPUT, ComposeError


def _error(text: str, env: dict[str, str] | None = None) -> ComposeError:
    with pytest.raises(ComposeError) as raised:
        parse_compose(text, "stack.yml", env or {})
    return raised.value


def test_tree_carries_lines_and_files() -> None:
    stack = parse_compose(
        "version: '3.8'\nservices:\n  web:\n    image: nginx\n    ports:\n      - 443:443\n",
        "stack.yml",
        {},
    )
    (web,) = stack.services
    assert (web.name, web.file, web.line) == ("web", "stack.yml", 3)
    image = web.node.entry("image")
    assert image is not None
    assert (image.key.line, image.value) == (4, Scalar("nginx", "stack.yml", 4))
    ports = web.node.get("ports")
    assert isinstance(ports, SeqNode)
    assert (ports.line, ports.items[0]) == (6, Scalar("443:443", "stack.yml", 6))
    assert stack.files == ("stack.yml",)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("services:\n  web:\n    image: nginx\n   bad: indent\n", 4, "invalid YAML"),
        ("services:\n  web: [a, b\n", 3, "invalid YAML"),
        ("services:\n  web:\n    image: 'unterminated\n", 4, "invalid YAML"),
        ("services:\n\tweb: {}\n", 2, "invalid YAML"),
        ("a: 1\n---\nb: 2\n", 2, "invalid YAML"),
    ],
)
def test_yaml_syntax_errors_name_file_and_line(text: str, line: int, problem: str) -> None:
    error = _error(text)
    assert (error.file, error.line) == ("stack.yml", line)
    assert error.message.startswith(problem)
    assert str(error).startswith(f"stack.yml:{line}: invalid YAML")
    assert error.exit_code == EXIT_BAD_INPUT


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", None, "the top level must be a mapping (services: ...)"),
        ("- a\n", 1, "the top level must be a mapping (services: ...)"),
        ("services: [web]\n", 1, "'services' must be a mapping"),
        ("services:\n  web: nginx\n", 2, "service 'web' must be a mapping"),
        (
            "services:\n  web:\n    image: a\n    image: b\n",
            4,
            "duplicate key 'image' (first at line 3)",
        ),
        ("services:\n  ? [a]\n  : 1\n", 2, "mapping keys must be strings"),
        ("services:\n  web:\n    <<: 1\n", 3, "'<<' merges mappings only (an alias to a mapping)"),
    ],
)
def test_structure_errors(text: str, line: int | None, message: str) -> None:
    error = _error(text)
    assert (error.line, error.message) == (line, message)


def test_missing_required_variable_names_file_and_line() -> None:
    error = _error(
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "secrets:\n"
        "  cert:\n"
        "    external: true\n"
        "    name: ${CERT_NAME:?run phoenix-cert stack-env}\n"
    )
    assert (error.file, error.line) == ("stack.yml", 7)
    assert (
        error.message
        == "required variable CERT_NAME is missing a value: run phoenix-cert stack-env"
    )
    assert str(error) == (
        "stack.yml:7: required variable CERT_NAME is missing a value: run phoenix-cert stack-env"
    )


def test_invalid_interpolation_names_the_line() -> None:
    error = _error("services:\n  web:\n    command: echo costs 5$\n")
    assert error.line == 3
    assert "invalid interpolation format" in error.message


def test_interpolation_applies_to_values_of_the_docker_sections_only() -> None:
    env = {"TAG": "1.25", "NET": "front", "KEY": "renamed"}
    stack = parse_compose(
        "version: ${TAG}\n"
        "x-note: ${UNSET:?extension fields are not interpolated}\n"
        "services:\n"
        "  web:\n"
        "    image: nginx:${TAG}\n"
        "    environment:\n"
        "      ${KEY}: $$HOME\n"
        "networks:\n"
        "  net:\n"
        "    name: ${NET}\n",
        "stack.yml",
        env,
    )
    assert stack.root.text("version") == "${TAG}"
    (web,) = stack.services
    assert web.image == "nginx:1.25"
    environment = web.node.mapping("environment")
    assert environment is not None
    assert environment.keys() == ("${KEY}",)
    assert environment.text("${KEY}") == "$HOME"
    network = stack.root.mapping("networks")
    assert network is not None
    net = network.mapping("net")
    assert net is not None
    name = net.scalar("name")
    assert name is not None
    assert (name.text, name.written, name.has_variables) == ("front", "${NET}", True)


def test_unset_variables_are_recorded_with_their_line() -> None:
    stack = parse_compose(
        'services:\n  web:\n    image: nginx:${TAG}\n    command: ["$A", "${A}", "${B:-x}"]\n',
        "stack.yml",
        {},
    )
    assert stack.unset == (
        UnsetVariable("TAG", "stack.yml", 3),
        UnsetVariable("A", "stack.yml", 4),
    )
    assert stack.services[0].image == "nginx:"


def test_interpolated_empty_value_is_a_string_not_null() -> None:
    stack = parse_compose("secrets:\n  s:\n    name: ${UNSET}\n    file: ~\n", "stack.yml", {})
    secrets = stack.objects("secrets")
    assert secrets is not None
    s = secrets.mapping("s")
    assert s is not None
    assert s.scalar("name") == Scalar("", "stack.yml", 3, raw="${UNSET}")
    assert s.scalar("file") is None


def test_anchors_and_merge_keys() -> None:
    stack = parse_compose(
        "x-deploy: &deploy\n"
        "  replicas: ${N:-2}\n"
        "  mode: replicated\n"
        "x-labels: &labels\n"
        "  labels: {a: b}\n"
        "  mode: global\n"
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "    deploy:\n"
        "      <<: [*deploy, *labels]\n"
        "      mode: global\n",
        "stack.yml",
        {"N": "3"},
    )
    (web,) = stack.services
    deploy = web.deploy
    assert deploy is not None
    assert deploy.keys() == ("mode", "replicas", "labels")
    # Explicit keys win over merged ones; the merged value keeps the anchor's line and is
    # interpolated, because it is used inside `services`.
    assert (web.mode, web.replica_count()) == ("global", 3)
    replicas = web.replicas()
    assert replicas is not None
    assert replicas.line == 2
    labels = deploy.mapping("labels")
    assert isinstance(labels, MapNode)
    assert labels.line == 5


def test_load_compose_reads_files_and_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=from-dotenv\nPORT=1\n", encoding="utf-8")
    env_file = tmp_path / "prod.env"
    env_file.write_text("PORT=8443\n", encoding="utf-8")
    stack_file = tmp_path / "stack.yml"
    stack_file.write_text(
        "services:\n  web:\n    image: nginx:${TAG}\n    ports: ['${PORT}:443']\n",
        encoding="utf-8",
    )
    stack = load_compose([stack_file], env_files=[env_file], environ={})
    (web,) = stack.services
    assert web.image == "nginx:from-dotenv"
    assert [(p.published, p.target) for p in web.valid_ports()] == [(8443, 443)]
    assert web.file == str(stack_file)
    stack = load_compose([stack_file], env_files=[env_file], environ={"TAG": "env"})
    assert stack.services[0].image == "nginx:env"


def test_load_compose_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ComposeError) as raised:
        load_compose([tmp_path / "nope.yml"], environ={})
    assert (raised.value.file, raised.value.line) == (str(tmp_path / "nope.yml"), None)


def test_load_compose_needs_a_file() -> None:
    with pytest.raises(ComposeError):
        load_compose([], environ={})
