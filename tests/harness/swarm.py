"""Typed doors to the docker SDK's service calls, which types-docker leaves untyped.

Keeping the `type: ignore` comments here lets every other test module stay strictly typed.
"""

from __future__ import annotations

from typing import Any, cast

import docker
from docker.models.services import Service


def create_service(client: docker.DockerClient, image: str, **kwargs: Any) -> Service:
    return cast(Service, client.services.create(image, **kwargs))  # type: ignore[no-untyped-call]


def service_tasks(service: Service) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], service.tasks())  # type: ignore[no-untyped-call]


def remove_service(service: Service) -> None:
    service.remove()  # type: ignore[no-untyped-call]


def host_port(published: int, target: int) -> dict[str, Any]:
    """One port published in host mode: the routing mesh does not work on these machines."""
    return {
        "Protocol": "tcp",
        "PublishedPort": published,
        "TargetPort": target,
        "PublishMode": "host",
    }
