"""``AgentConfig``: the one configuration, validated once, built from small parts.

Sources, later wins: the YAML file (``/etc/fleet-agent/config.yaml`` by
default), then ``FLEET_AGENT_...`` environment variables (``__`` separates
levels: ``FLEET_AGENT_SNMP__TIMEOUT=5``, ``FLEET_AGENT_STATE_DIR=/data``;
values are parsed as YAML, so lists work: ``'["10.0.0.0/24"]'``). Any secret
(``community``, ``auth_key``, ``priv_key``, ``password``) may instead be given
as ``<name>_file: /path`` and is read from that file. Each component is handed
only its own part.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.errors import ConfigError
from agent.validation import dotted
from agent.yamlconf import Loc, read_yaml, validate
from collectors.credentials import Credential, SnmpSettings
from collectors.targets import (
    TargetError,
    check_spec,
    is_host_name,
    parse_targets,
    split_list,
)
from uploader.config import MqttSettings

DEFAULT_CONFIG_PATH = Path("/etc/fleet-agent/config.yaml")
DEFAULT_STATE_DIR = Path("/var/lib/fleet-agent")
ENV_PREFIX = "FLEET_AGENT_"
SECRET_NAMES = ("community", "auth_key", "priv_key", "password")
# Variables that configure the CLI itself rather than the file's settings.
_ENV_NOT_SETTINGS = frozenset({"FLEET_AGENT_CONFIG"})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """``"15m"``, ``"4h"``, ``"1d"``, ``"30s"`` or a number of seconds."""
    if isinstance(value, bool):
        # ValueError, not TypeError: pydantic turns only ValueError into a validation error
        raise ValueError("a duration like 15m, 4h, 1d or a number of seconds")  # noqa: TRY004
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError("a duration like 15m, 4h, 1d or a number of seconds")


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SnmpConfig(SnmpSettings):
    """SNMP transport settings plus the credential profiles, tried in order."""

    credentials: list[Credential] = Field(
        default_factory=lambda: [Credential(name="public", version="v2c", community="public")]
    )
    concurrency: int = Field(default=64, ge=1, le=4096, description="SNMP reads at once.")

    @field_validator("credentials")
    @classmethod
    def _unique_names(cls, value: list[Credential]) -> list[Credential]:
        if not value:
            raise ValueError("at least one credential profile is needed")
        names = [c.name for c in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"credential profile names must be unique: {', '.join(duplicates)}")
        return value

    def transport_settings(self) -> SnmpSettings:
        return SnmpSettings.model_validate(self.model_dump(include=set(SnmpSettings.model_fields)))


def _target_spec(value: str, info: ValidationInfo) -> str:
    """One ``discovery.targets`` entry: the checks ``scan``/``discover`` run (names unresolved)."""
    try:
        check_spec(value, allow_public=bool(info.data.get("allow_public", False)))
    except TargetError as exc:
        raise ValueError(str(exc)) from None
    return value


def _exclude_spec(value: str) -> str:
    """An exclusion as ``--exclude`` takes it: a comma list, each item with an optional port."""
    try:
        check_spec(value, allow_public=None)
    except TargetError as exc:
        raise ValueError(str(exc)) from None
    return value


class DiscoveryConfig(_Part):
    # The permissions come first: the target checks read them.
    allow_huge: bool = Field(default=False, description="Allow sweeps over four /16 blocks.")
    allow_public: bool = Field(
        default=False,
        description="Allow targets outside private, shared, link-local, loopback and "
        "unique-local address space.",
    )
    exclude: list[Annotated[str, AfterValidator(_exclude_spec)]] = Field(default_factory=list)
    targets: list[Annotated[str, AfterValidator(_target_spec)]] = Field(
        default_factory=list, description="Addresses, names, CIDR, ranges."
    )
    rate: float = Field(default=200.0, gt=0, le=100_000, description="Packets per second.")
    max_in_flight: int = Field(default=64, ge=1, le=4096)

    @field_validator("targets")
    @classmethod
    def _sweep_size(cls, value: list[str], info: ValidationInfo) -> list[str]:
        """The whole sweep within the size limit (names are counted once resolved, later)."""
        if "exclude" not in info.data:
            return value  # an exclusion is invalid: reported on its own line
        addresses = [spec for spec in split_list(value) if not is_host_name(spec)]
        excluded = [spec for spec in split_list(info.data["exclude"]) if not is_host_name(spec)]
        try:
            parse_targets(addresses, exclude=excluded, allow_huge=bool(info.data.get("allow_huge")))
        except TargetError as exc:
            raise ValueError(str(exc)) from None
        return value


class ScheduleConfig(_Part):
    discovery: Duration = Field(default=86400.0, gt=0, description="Discovery interval.")
    meters: Duration = Field(default=4 * 3600.0, gt=0, description="Meter read interval.")
    supplies: Duration = Field(default=15 * 60.0, gt=0, description="Supply/status interval.")
    jitter: Duration = Field(default=60.0, ge=0, description="Random delay added to each run.")
    discovery_at_start: bool = True
    misfire_grace: Duration = Field(default=300.0, gt=0)


class LivenessConfig(_Part):
    """Device silence and the agent's heartbeat (docs/operations.md, "Liveness")."""

    device_silent_after: int = Field(
        default=3,
        ge=1,
        le=10_000,
        description="Scheduled reads a device may miss in a row before a device_silent event.",
    )
    heartbeat_interval: Duration = Field(
        default=300.0,
        gt=0,
        le=86400.0,
        description="How often the agent sends its signed heartbeat (also once at start).",
    )


class UploadConfig(_Part):
    enabled: bool = True
    queue_max_messages: int = Field(default=200_000, ge=100)
    disk_reserve: int = Field(
        default=4 * 1024 * 1024,
        ge=0,
        description="Bytes preallocated beside the outbox and released when the disk fills, "
        "so acks and billing reads still fit (0: none).",
    )
    memory_buffer: int = Field(
        default=20_000,
        ge=0,
        description="Messages held in memory while the disk is full; beyond, they are dropped.",
    )
    mqtt: MqttSettings | None = Field(
        default=None, description="The broker; required while upload is enabled."
    )


class EligibilityConfig(_Part):
    policy: Path | None = Field(default=None, description="Contract policy YAML.")
    contacts: Path | None = Field(default=None, description="Supplies contacts CSV.")


class HttpConfig(_Part):
    enabled: bool = True
    listen: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class AgentConfig(_Part):
    agent_id: str = Field(
        default_factory=lambda: socket.gethostname() or "fleet-agent",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    )
    site: str = Field(default="default", min_length=1, max_length=128, pattern=r"^[^/#+\s]+$")
    state_dir: Path = DEFAULT_STATE_DIR
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_deadline: Duration = Field(default=20.0, gt=0, le=600)
    snmp: SnmpConfig = Field(default_factory=SnmpConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    upload: UploadConfig = Field(default_factory=UploadConfig)
    liveness: LivenessConfig = Field(default_factory=LivenessConfig)
    eligibility: EligibilityConfig = Field(default_factory=EligibilityConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)

    @model_validator(mode="after")
    def _broker_when_enabled(self) -> Self:
        if self.upload.enabled and self.upload.mqtt is None:
            raise ValueError(
                "upload.mqtt: a broker (at least upload.mqtt.host) is required while upload is "
                "enabled; set upload.enabled: false to collect without uploading"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _site_for_broker(cls, data: Any) -> Any:
        """The broker topics use the agent's ``site`` unless upload.mqtt.site says otherwise."""
        if isinstance(data, dict):
            upload = data.get("upload")
            if not isinstance(upload, dict):
                return data
            mqtt = upload.get("mqtt")
            if isinstance(mqtt, dict) and "site" not in mqtt and "site" in data:
                data = {**data, "upload": {**upload, "mqtt": {**mqtt, "site": data["site"]}}}
        return data


def _resolve_secret_files(node: Any, loc: Loc, where: Callable[[Loc], str], base: Path) -> Any:
    """Replace ``<secret>_file: path`` by ``<secret>: <file content>``, anywhere in the tree."""
    if isinstance(node, list):
        return [_resolve_secret_files(item, (*loc, i), where, base) for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = str(key)
        secret = name.removesuffix("_file")
        if name.endswith("_file") and secret in SECRET_NAMES:
            if secret in node:
                raise ConfigError(
                    f"{where((*loc, name))}: {dotted((*loc, name))}: give {secret} or "
                    f"{name}, not both"
                )
            secret_path = Path(str(value))
            if not secret_path.is_absolute():
                secret_path = base / secret_path
            try:
                out[secret] = secret_path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"{where((*loc, name))}: {dotted((*loc, name))}: cannot read secret file "
                    f"{secret_path}: {exc.strerror or exc}"
                ) from exc
        else:
            out[name] = _resolve_secret_files(value, (*loc, name), where, base)
    return out


def _apply_environment(
    data: dict[str, Any], environ: Mapping[str, str], sources: dict[Loc, str]
) -> None:
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_SETTINGS:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        if path[-1] in SECRET_NAMES or path[-1] == "agent_id":
            value = raw  # secrets and ids are taken verbatim, never YAML-interpreted
        target = data
        for part in path[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        target[path[-1]] = value
        sources[tuple(path)] = f"environment variable {name}"


def config_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """``$FLEET_AGENT_CONFIG``, else ``/etc/fleet-agent/config.yaml``."""
    env = os.environ if environ is None else environ
    return Path(env.get("FLEET_AGENT_CONFIG", str(DEFAULT_CONFIG_PATH)))


@dataclass(frozen=True)
class LocalSettings:
    """What the local sources set, before validation: the file, then the environment.

    ``data`` is the merged tree (secret files read); ``place(loc)`` names where a
    value came from: ``file:line`` or ``environment variable NAME``.
    """

    path: Path
    data: dict[str, Any]
    place: Callable[[Loc], str]

    def sets(self, loc: Loc) -> bool:
        """True when the file or the environment gives a value at ``loc`` (or above it)."""
        node: Any = self.data
        for part in loc:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True


def read_local(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    require_file: bool = True,
) -> LocalSettings:
    """Read and merge the file and the environment; :class:`ConfigError` names the place."""
    env = os.environ if environ is None else environ
    config_path = path or config_path_from_env(env)
    data: dict[str, Any] = {}
    file_where: Callable[[Loc], str] = lambda loc: str(config_path)  # noqa: E731
    if config_path.exists() or require_file:
        document = read_yaml(config_path, what="configuration file")
        data, file_where = document.data, document.place
    env_sources: dict[Loc, str] = {}
    data = _resolve_secret_files(data, (), file_where, config_path.parent)
    _apply_environment(data, env, env_sources)

    def where(loc: Loc) -> str:
        probe = tuple(str(p) for p in loc)
        while probe:
            if probe in env_sources:
                return env_sources[probe]
            probe = probe[:-1]
        return file_where(loc)

    return LocalSettings(config_path, data, where)


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    require_file: bool = True,
) -> AgentConfig:
    """Read, merge and validate the local configuration; :class:`ConfigError` names the place."""
    local = read_local(path, environ=environ, require_file=require_file)
    return validate(AgentConfig, local.data, local.place, source=str(local.path))
