"""What an operator allows a task's LLM config to reach: key variables and hosts.

A task names the environment variable holding its LLM key (``api_key_env``) and the server to
send it to (``base_url``). Without limits, an admin key could name any variable of the server
process (``VERBCAL_DATABASE_URL``, the session secret, ``PATH``) and have it sent as a Bearer
token to a host it controls, or point the server at a cloud metadata address. The policy:

- ``api_key_env`` must match one of ``key_env_patterns`` (exact names, or prefixes written
  ``NAME_*``), and is never one of the service's own settings variables (``VERBCAL_<SETTING>``)
  even when a pattern matches it.
- ``base_url``'s host must match ``allowed_hosts`` when that list is set (exact host names or
  addresses, or ``*.example.com`` for any subdomain); empty means any host.
- Link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, and the
  metadata host names ``metadata.google.internal`` / ``metadata``) are refused unless
  ``allow_link_local``. A host name is also resolved when a config is saved (``resolve=True``)
  and refused if any of its addresses is such an address; at call time only the literal host is
  checked (a name that later resolves elsewhere is what ``allowed_hosts`` guards against).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.llm.config import LLMConfig

METADATA_HOSTNAMES = frozenset({"metadata.google.internal", "metadata"})
_METADATA_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


@dataclass(frozen=True)
class Violation:
    """One part of an LLM config the policy refuses: the field and why."""

    field: str
    message: str


@dataclass(frozen=True)
class EndpointPolicy:
    """The operator's limits on LLM configs (built from ``Settings``)."""

    key_env_patterns: tuple[str, ...]
    forbidden_key_envs: frozenset[str]
    allowed_hosts: tuple[str, ...] = ()
    allow_link_local: bool = False

    def violations(self, config: LLMConfig, *, resolve: bool = False) -> list[Violation]:
        """Every refused part of ``config`` (empty when it is allowed)."""
        problems = []
        if config.api_key_env is not None:
            problem = self._key_env_problem(config.api_key_env)
            if problem:
                problems.append(Violation("llm.api_key_env", problem))
        problem = self._host_problem(_host_of(config.base_url), resolve=resolve)
        if problem:
            problems.append(Violation("llm.base_url", problem))
        return problems

    def _key_env_problem(self, name: str) -> str | None:
        if name.upper() in self.forbidden_key_envs:
            return f"{name} is one of verbcal's own settings and can never hold an LLM key"
        if not any(_name_matches(name, pattern) for pattern in self.key_env_patterns):
            allowed = ", ".join(self.key_env_patterns) or "none"
            return (
                f"{name} is not an allowed LLM key variable (allowed: {allowed}; the operator "
                "sets them with VERBCAL_ALLOWED_LLM_KEY_ENVS)"
            )
        return None

    def _host_problem(self, host: str, *, resolve: bool) -> str | None:
        if self.allowed_hosts and not any(_host_matches(host, p) for p in self.allowed_hosts):
            return (
                f"host {host} is not an allowed LLM host (allowed: "
                f"{', '.join(self.allowed_hosts)}; the operator sets them with "
                "VERBCAL_ALLOWED_LLM_HOSTS)"
            )
        if self.allow_link_local:
            return None
        addresses = _resolved(host) if resolve else ()
        if _is_metadata(host) or any(_is_metadata(address) for address in addresses):
            return (
                f"host {host} is a link-local or cloud-metadata address, refused unless "
                "VERBCAL_LLM_ALLOW_LINK_LOCAL is set"
            )
        return None


def _host_of(base_url: str) -> str:
    return (urlsplit(base_url).hostname or "").lower()


def _name_matches(name: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower().strip("[]")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _is_metadata(host: str) -> bool:
    if host in METADATA_HOSTNAMES:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _METADATA_NETWORKS)


def _resolved(host: str) -> Iterable[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return ()
    return [str(info[4][0]) for info in infos]
