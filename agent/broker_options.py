"""The backend commands' broker options (``ingest``, ``config push``), parsed once.

``add_broker_options(parser)`` adds ``--broker``, ``--port``, TLS, credentials,
transport, proxy, topic prefix and client id; ``settings_from_args(args)`` turns
them into :class:`uploader.config.MqttSettings`, every mistake a
:class:`~agent.errors.UsageError` naming the option.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pydantic import SecretStr, ValidationError

from agent.errors import UsageError
from uploader.config import MqttSettings, ProxySettings

PASSWORD_ENV = "FLEET_INGEST_PASSWORD"  # noqa: S105 - the variable's name, not a secret
PROXY_PASSWORD_ENV = "FLEET_INGEST_PROXY_PASSWORD"  # noqa: S105 - the variable's name

_OPTION_OF_FIELD = {
    "host": "--broker",
    "port": "--port",
    "ca_file": "--ca-file",
    "cert_file": "--cert-file",
    "key_file": "--key-file",
    "username": "--username",
    "password": f"--password-file/${PASSWORD_ENV}",
    "topic_prefix": "--topic-prefix",
    "client_id": "--client-id",
    "connect_timeout": "--connect-timeout",
    "transport": "--transport",
    "websocket_path": "--websocket-path",
    "proxy": "--proxy",
}


def add_broker_options(
    parser: argparse.ArgumentParser, *, client_id_help: str
) -> argparse._ArgumentGroup:
    """The broker options, in a group of their own (returned: a command may add to it)."""
    broker = parser.add_argument_group("broker")
    broker.add_argument("--broker", required=True, metavar="HOST", help="MQTT broker host")
    broker.add_argument(
        "--port", type=int, default=None, metavar="PORT", help="default 8883 (TLS) / 1883"
    )
    broker.add_argument("--no-tls", action="store_true", help="plain TCP (TLS is the default)")
    broker.add_argument(
        "--ca-file", type=Path, metavar="FILE", help="CA bundle (default: system trust store)"
    )
    broker.add_argument("--cert-file", type=Path, metavar="FILE", help="client certificate (mTLS)")
    broker.add_argument(
        "--key-file", type=Path, metavar="FILE", help="client certificate key (mTLS)"
    )
    broker.add_argument("--username", metavar="USER", help="broker user name")
    broker.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the password (or ${PASSWORD_ENV})",
    )
    broker.add_argument(
        "--protocol", choices=("5", "3.1.1"), default="5", help="MQTT version (default 5)"
    )
    broker.add_argument(
        "--transport",
        choices=("tcp", "websockets"),
        default="tcp",
        help="MQTT over TCP, or over WebSockets (default port then 443 with TLS)",
    )
    broker.add_argument(
        "--websocket-path", default="/mqtt", metavar="PATH", help="HTTP path (default /mqtt)"
    )
    broker.add_argument(
        "--proxy",
        metavar="URL",
        help="outbound proxy: http://[user@]host[:port] (CONNECT) or socks5://[user@]host[:port]",
    )
    broker.add_argument(
        "--proxy-password-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the proxy password (or ${PROXY_PASSWORD_ENV})",
    )
    broker.add_argument(
        "--topic-prefix",
        default="fleet",
        metavar="PREFIX",
        help="first level of every topic (default fleet)",
    )
    broker.add_argument("--client-id", metavar="ID", help=client_id_help)
    broker.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up connecting after this long (default 10)",
    )
    return broker


def _secret(path: Path | None, option: str, env: str) -> SecretStr | None:
    if path is not None:
        try:
            return SecretStr(path.read_text().strip())
        except OSError as exc:
            raise UsageError(f"{option} {path}: {exc.strerror}") from exc
    if os.environ.get(env):
        return SecretStr(os.environ[env])
    return None


def _proxy(args: argparse.Namespace) -> ProxySettings | None:
    password = _secret(args.proxy_password_file, "--proxy-password-file", PROXY_PASSWORD_ENV)
    if args.proxy is None:
        if args.proxy_password_file is not None:
            raise UsageError("--proxy-password-file: needs --proxy")
        return None
    try:
        return ProxySettings.from_url(args.proxy, password=password)
    except ValidationError as exc:
        raise UsageError(f"--proxy: {exc.errors()[0]['msg']}") from None
    except ValueError as exc:
        raise UsageError(f"--proxy: {exc}") from None


def settings_from_args(args: argparse.Namespace) -> MqttSettings:
    password = _secret(args.password_file, "--password-file", PASSWORD_ENV)
    proxy = _proxy(args)
    try:
        return MqttSettings(
            host=args.broker,
            port=args.port,
            tls=not args.no_tls,
            ca_file=args.ca_file,
            cert_file=args.cert_file,
            key_file=args.key_file,
            username=args.username,
            password=password,
            protocol=args.protocol,
            transport=args.transport,
            websocket_path=args.websocket_path,
            proxy=proxy,
            topic_prefix=args.topic_prefix,
            client_id=args.client_id,
            connect_timeout=args.connect_timeout,
            backoff_min=0.2,
            backoff_max=10.0,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        option = _OPTION_OF_FIELD.get(name, name or "options")
        raise UsageError(f"{option}: {error['msg']}") from None
