"""The eligibility policy and contacts the daemon runs with, and where the policy came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.eligibility.contacts import Contact, load_contacts
from agent.eligibility.policy import Policy, load_policy

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.remote_config import PushedPolicy


@dataclass(frozen=True)
class EligibilityInputs:
    policy: Policy
    contacts: tuple[Contact, ...] | None
    #: Where the policy came from: its file, or ``remote config v7 (site lab)``.
    source: str | None = None


def load_eligibility(
    config: AgentConfig, pushed: PushedPolicy | None = None
) -> EligibilityInputs | None:
    """The policy and contacts to run with (file errors name file and line).

    The policy file named by ``eligibility.policy`` wins; else the policy pushed
    inline in the remote configuration (:func:`agent.remote_config.pushed_policy`).
    """
    path = config.eligibility.policy
    if path is not None:
        policy, source = load_policy(path), str(path)
    elif pushed is not None:
        policy, source = pushed.policy, pushed.label
    else:
        return None
    contacts = load_contacts(config.eligibility.contacts) if config.eligibility.contacts else None
    return EligibilityInputs(policy, contacts, source)
