"""Remote configuration, the pure part: what a document may set, the merge, the provenance.

A configuration document from the backend (:class:`uploader.remote_config.ConfigDocument`)
carries ``settings``, a partial configuration in the same shape as the local
file, limited to :data:`REMOTE_KEYS` (discovery targets and exclusions, schedules,
SNMP tuning, credential profiles *by name*), plus the contract **policy** inline
(:data:`POLICY_SECTION`: the content of a policy file, validated exactly like one,
:func:`check_policy`). Anything else (state directory, broker, HTTP, agent id,
secrets) is refused: it can only be set locally.

Merge rule: the local file (and ``FLEET_AGENT_...`` variables) stay authoritative
for what they set. A remote key is used only where the local sources give no
value at that key (lists are one value: a local ``discovery.targets`` replaces
the remote list whole). ``snmp.credentials`` is the one key that differs: the
document names profiles (``["site-v3", "public"]``) and the agent uses the
*locally defined* profiles of those names, in that order; secrets never travel.
The pushed policy is used only while the local sources name no policy file
(``eligibility.policy``): :func:`pushed_policy`.

The merged tree is validated by :func:`agent.yamlconf.validate` with
:class:`agent.config.AgentConfig`: the very models and target checks of
``config check``, and errors that name ``remote config v7 (site lab): field``
for a remote value and ``file:line: field`` for a local one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

from agent.config import AgentConfig, LocalSettings, SnmpConfig
from agent.eligibility.policy import Policy
from agent.errors import ConfigError
from agent.validation import dotted
from agent.yamlconf import Loc, validate
from uploader.remote_config import ConfigDocument

__all__ = [
    "LOCAL_POLICY",
    "POLICY_SECTION",
    "REMOTE_KEYS",
    "Provenance",
    "PushedPolicy",
    "check_json",
    "check_policy",
    "check_settings",
    "effective_config",
    "merge",
    "provenance",
    "pushed_policy",
]

#: What a document may set, per section (docs/remote-config.md lists the meaning of each).
REMOTE_KEYS: dict[str, tuple[str, ...]] = {
    "discovery": ("targets", "exclude", "allow_public", "allow_huge", "rate", "max_in_flight"),
    "schedule": (
        "discovery",
        "meters",
        "supplies",
        "jitter",
        "discovery_at_start",
        "misfire_grace",
    ),
    "snmp": ("credentials", "timeout", "retries", "max_repetitions", "use_bulk", "concurrency"),
}
#: The section holding the contract policy inline (a policy file's content).
POLICY_SECTION = "policy"
#: Where the local sources name a policy file; set there, it wins over a pushed policy.
LOCAL_POLICY: Loc = ("eligibility", "policy")


def check_settings(settings: Mapping[str, JsonValue], label: str) -> None:
    """Refuse what a document may not set; :class:`ConfigError` names ``label: field``."""
    problems: list[str] = []
    for section, values in settings.items():
        if section == POLICY_SECTION:
            if not isinstance(values, dict):
                problems.append(
                    f"{label}: {section}: must be a mapping of fields (a policy file's content)"
                )
            continue
        if section not in REMOTE_KEYS:
            allowed = ", ".join((*REMOTE_KEYS, POLICY_SECTION))
            problems.append(
                f"{label}: {section}: cannot be set remotely (only {allowed}); set it in the "
                "local file"
            )
            continue
        if not isinstance(values, dict):
            problems.append(f"{label}: {section}: must be a mapping of fields")
            continue
        for key in values:
            if key not in REMOTE_KEYS[section]:
                allowed = ", ".join(REMOTE_KEYS[section])
                problems.append(
                    f"{label}: {section}.{key}: cannot be set remotely (in {section}: {allowed})"
                )
        names = values.get("credentials") if section == "snmp" else None
        if names is not None and (
            not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        ):
            problems.append(
                f"{label}: snmp.credentials: must be a list of profile names defined in the "
                "local file (credentials are never sent over the wire)"
            )
    if problems:
        raise ConfigError("\n".join(problems), path=label)


def _not_json(node: object, loc: Loc) -> list[tuple[Loc, str]]:
    if node is None or isinstance(node, bool | int | str):
        return []
    if isinstance(node, float):
        return [] if math.isfinite(node) else [(loc, f"{node!r}")]
    if isinstance(node, list):
        return [found for i, item in enumerate(node) for found in _not_json(item, (*loc, i))]
    if isinstance(node, dict):
        out: list[tuple[Loc, str]] = []
        for key, value in node.items():
            if not isinstance(key, str):
                out.append(((*loc, str(key)), f"a {type(key).__name__} key"))
            else:
                out.extend(_not_json(value, (*loc, key)))
        return out
    return [(loc, f"a {type(node).__name__}")]


def check_json(settings: Mapping[str, Any], where: Callable[[Loc], str], *, source: str) -> None:
    """Refuse what a signed document cannot carry: YAML dates and times, NaN, non-text keys.

    (YAML reads ``2026-11-30`` as a date: quoted, it is text.) :class:`ConfigError`
    lines read ``push.yaml:4: schedule.meters: not a JSON value (a date): quote it``.
    """
    problems = [
        f"{where(loc)}: {dotted(loc)}: not a JSON value ({what}): quote it"
        for loc, what in _not_json(dict(settings), ())
    ]
    if problems:
        raise ConfigError("\n".join(problems), path=source)


def _local_profiles(local: LocalSettings) -> list[Any]:
    snmp = local.data.get("snmp")
    if isinstance(snmp, dict) and isinstance(snmp.get("credentials"), list):
        return list(snmp["credentials"])
    default = SnmpConfig.model_fields["credentials"].get_default(call_default_factory=True)
    return [credential.model_dump() for credential in default]


def _pick_profiles(local: LocalSettings, names: list[str], label: str) -> list[Any]:
    """The locally defined profiles named by the document, in its order."""
    profiles = _local_profiles(local)
    by_name = {p.get("name"): p for p in profiles if isinstance(p, dict)}
    missing = [(i, name) for i, name in enumerate(names) if name not in by_name]
    if missing:
        defined = ", ".join(str(name) for name in by_name) or "none"
        raise ConfigError(
            "\n".join(
                f"{label}: snmp.credentials[{i}]: no credential profile named {name!r} in the "
                f"local configuration (defined: {defined})"
                for i, name in missing
            ),
            path=label,
        )
    return [by_name[name] for name in names]


@dataclass(frozen=True)
class Merged:
    """The merged tree, which leaves came from the document, which it could not override."""

    data: dict[str, Any]
    remote: frozenset[Loc]
    overridden: tuple[str, ...]


def merge(local: LocalSettings, document: ConfigDocument) -> Merged:
    """The local tree with the document's settings where the local sources set nothing."""
    check_settings(document.settings, document.label)
    data = copy.deepcopy(local.data)
    remote: set[Loc] = set()
    overridden: list[str] = []
    for section, values in document.settings.items():
        assert isinstance(values, dict)  # checked above
        if section == POLICY_SECTION:  # not a configuration key: see pushed_policy()
            if local.sets(LOCAL_POLICY):
                overridden.append(section)
            continue
        for key, value in values.items():
            loc: Loc = (section, key)
            if section == "snmp" and key == "credentials":
                assert isinstance(value, list)
                names = [str(name) for name in value]
                picked = _pick_profiles(local, names, document.label)
                data.setdefault("snmp", {})["credentials"] = picked
                remote.add(loc)
            elif local.sets(loc):
                overridden.append(dotted(loc))
            else:
                target = data.setdefault(section, {})
                if not isinstance(target, dict):
                    overridden.append(dotted(loc))  # the local file set the whole section
                    continue
                target[key] = copy.deepcopy(value)
                remote.add(loc)
    return Merged(data, frozenset(remote), tuple(overridden))


def effective_config(local: LocalSettings, document: ConfigDocument | None) -> AgentConfig:
    """The configuration to run: local alone, or merged with ``document``, validated once."""
    if document is None:
        return validate(AgentConfig, local.data, local.place, source=str(local.path))
    merged = merge(local, document)

    def where(loc: Loc) -> str:
        probe = tuple(str(part) for part in loc)
        while probe:
            if probe in merged.remote:
                return document.label
            probe = probe[:-1]
        return local.place(loc)

    return validate(AgentConfig, merged.data, where, source=str(local.path))


class _PolicySection(BaseModel):
    """A document's ``policy`` section: field paths in errors start with ``policy.``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: Policy


def check_policy(
    settings: Mapping[str, JsonValue], where: Callable[[Loc], str], *, source: str
) -> Policy | None:
    """The ``policy`` section of ``settings`` validated like a policy file, or ``None``.

    ``where(loc)`` names the place of a field (``remote config v7 (site lab)``, or
    ``push.yaml:12`` before a push): :class:`ConfigError` lines read
    ``remote config v7 (site lab): policy.replenishment.lead_time_days: must be ...``.
    """
    if POLICY_SECTION not in settings:
        return None
    section = {POLICY_SECTION: settings[POLICY_SECTION]}
    return validate(_PolicySection, section, where, source=source).policy


@dataclass(frozen=True)
class PushedPolicy:
    """A contract policy that came inline in a configuration document."""

    policy: Policy
    document: ConfigDocument

    @property
    def label(self) -> str:
        """``remote config v7 (site lab)``: where the policy came from."""
        return self.document.label


def pushed_policy(local: LocalSettings, document: ConfigDocument | None) -> PushedPolicy | None:
    """The document's policy to run with: ``None`` without one, or when the local sources
    name a policy file (``eligibility.policy``: the local file wins).

    The policy is validated either way (a document with a bad policy is refused, even
    where the local file would win); :class:`ConfigError` names the document and field.
    """
    if document is None:
        return None
    label = document.label
    policy = check_policy(document.settings, lambda _loc: label, source=label)
    if policy is None or local.sets(LOCAL_POLICY):
        return None
    return PushedPolicy(policy, document)


@dataclass(frozen=True)
class Provenance:
    """One effective value and where it came from."""

    key: str
    value: Any
    source: str


def _leaves(node: Any, loc: Loc) -> list[tuple[Loc, Any]]:
    if isinstance(node, dict) and node:
        out: list[tuple[Loc, Any]] = []
        for key, value in node.items():
            out.extend(_leaves(value, (*loc, key)))
        return out
    return [(loc, node)]


def provenance(
    config: AgentConfig, local: LocalSettings, document: ConfigDocument | None
) -> list[Provenance]:
    """Every effective value (secrets masked) with its source: local place, remote, default."""
    remote = merge(local, document).remote if document is not None else frozenset()
    pushed = pushed_policy(local, document)
    overrides = (
        document is not None and POLICY_SECTION in document.settings and local.sets(LOCAL_POLICY)
    )
    rows = []
    for loc, leaf in _leaves(config.model_dump(mode="json"), ()):
        value = leaf
        if loc == LOCAL_POLICY and pushed is not None:
            value = f"inline, policy version {pushed.policy.version}"
            source = pushed.label
        elif loc in remote and document is not None:
            source = document.label
            if loc == ("snmp", "credentials"):
                source += " (profiles defined locally)"
        elif local.sets(loc):
            source = local.place(loc)
            if loc == LOCAL_POLICY and overrides and document is not None:
                source += f" (wins over the policy in {document.label})"
        else:
            source = "default"
        rows.append(Provenance(dotted(loc), value, source))
    return rows
