"""phoenix-certbot: roll renewed TLS certificates into Docker Swarm services, verified."""

from __future__ import annotations

__version__ = "0.1.0"
