"""SNMP credential profiles and transport settings (value objects, validated once)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

AuthProtocol = Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["DES", "AES", "AES192", "AES256"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Credential(_Frozen):
    """One named way of talking to a device: a v1/v2c community or a v3 user."""

    name: str = Field(min_length=1, description="Profile name, shown in logs and inventory.")
    version: Literal["v1", "v2c", "v3"] = "v2c"
    community: SecretStr | None = None
    username: str | None = None
    auth_protocol: AuthProtocol | None = None
    auth_key: SecretStr | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: SecretStr | None = None
    context_name: str = ""

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
        if self.version in ("v1", "v2c"):
            if self.community is None:
                raise ValueError(f"{self.version} profile needs a community")
            if self.username or self.auth_key or self.priv_key:
                raise ValueError(f"{self.version} profile takes no v3 user, auth or priv key")
            return self
        if not self.username:
            raise ValueError("v3 profile needs a username")
        if self.community is not None:
            raise ValueError("v3 profile takes no community")
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("v3 auth_protocol and auth_key go together")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ValueError("v3 priv_protocol and priv_key go together")
        if self.priv_key is not None and self.auth_key is None:
            raise ValueError("v3 privacy needs authentication (authPriv)")
        for label, key in (("auth_key", self.auth_key), ("priv_key", self.priv_key)):
            if key is not None and len(key.get_secret_value()) < 8:
                raise ValueError(f"v3 {label} must be at least 8 characters (RFC 3414)")
        return self


class SnmpSettings(_Frozen):
    """How hard to try one device."""

    port: int = Field(default=161, ge=1, le=65535)
    timeout: float = Field(default=2.0, gt=0, le=60, description="Seconds per request attempt.")
    retries: int = Field(default=1, ge=0, le=10)
    max_repetitions: int = Field(default=10, ge=1, le=100)
    use_bulk: bool = Field(default=True, description="GETBULK for v2c/v3 (v1 always GETNEXT).")
    read_deadline: float = Field(
        default=30.0, gt=0, le=600, description="Cap on the total time one device read may take."
    )
