"""Managed-print eligibility: a pure, data-driven rules engine.

* :mod:`.policy`: the contract's YAML policy (``load_policy``), errors name file, line, field.
* :mod:`.rules`: per-device rules, ``evaluate_read(read, policy) -> Verdict``.
* :mod:`.fleet`: fleet rules across one site, ``evaluate_fleet(reads, policy) -> FleetReport``.
* :mod:`.contacts`: supplies contacts, ``load_contacts(path)`` (all-or-nothing CSV import).
* :mod:`.report`: the fleet report as a table, JSON or CSV.
* :mod:`.inputs`: the policy and contacts the daemon runs with (``load_eligibility``).

Reason codes and the policy reference: docs/eligibility.md.
"""

from agent.eligibility.contacts import Contact, ContactImportError, load_contacts, parse_contacts
from agent.eligibility.fleet import evaluate_fleet
from agent.eligibility.models import REASON_CODES, FleetReport, Reason, ReasonCode, Verdict
from agent.eligibility.policy import Policy, load_policy, parse_policy
from agent.eligibility.rules import evaluate_read

__all__ = [
    "REASON_CODES",
    "Contact",
    "ContactImportError",
    "FleetReport",
    "Policy",
    "Reason",
    "ReasonCode",
    "Verdict",
    "evaluate_fleet",
    "evaluate_read",
    "load_contacts",
    "load_policy",
    "parse_contacts",
    "parse_policy",
]
