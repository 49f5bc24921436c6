"""``fleet-agent run`` (the daemon) and ``fleet-agent status`` (what it is doing)."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from agent.config import DEFAULT_CONFIG_PATH, HttpConfig, config_path_from_env, load_config
from agent.errors import FleetAgentError


def _run(args: argparse.Namespace) -> int:
    from agent.daemon import run_daemon

    return run_daemon(args.config, once=args.once)


def fetch_health(host: str, port: int, *, timeout: float = 3.0) -> dict[str, Any]:
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:  # 503 still carries the health document
        data = json.load(exc)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FleetAgentError(
            f"the daemon does not answer on {url} ({reason}); is `fleet-agent run` running "
            "with http.enabled?"
        ) from exc
    return data


def _age(value: object) -> str:
    return "never" if value in (None, "") else str(value)


def _yes_no(value: object) -> str:
    return (
        {True: "yes", False: "no"}.get(value, "unknown") if isinstance(value, bool) else "unknown"
    )


def _status(args: argparse.Namespace) -> int:
    http = HttpConfig()  # no config file: the daemon's defaults
    if args.config is not None or config_path_from_env().exists():
        http = load_config(args.config).http
    health = fetch_health(args.host or http.listen, args.port or http.port)
    ok = health.get("status") == "ok"
    if args.quiet:
        pass  # the exit status says it all
    elif args.format == "json":
        print(json.dumps(health, indent=2))
    else:
        broker = health.get("broker", {})
        queue = health.get("queue", {})
        reads = health.get("reads", {})
        print(
            f"fleet-agent {health.get('version')}  agent {health.get('agent_id')}  "
            f"site {health.get('site')}  status {health.get('status')}"
        )
        for problem in health.get("problems", []):
            print(f"  problem: {problem}")
        print(f"  devices known: {health.get('devices_known')}")
        print("  reads: " + ", ".join(f"{k} {v}" for k, v in reads.items()))
        snmp = health.get("snmp", {})
        print(f"  snmp requests: {snmp.get('requests')}, timeouts: {snmp.get('timeouts')}")
        oldest = queue.get("oldest_age_s")
        print(
            f"  upload queue: {queue.get('depth')} waiting"
            + (f", oldest {oldest:.0f}s" if isinstance(oldest, int | float) else "")
            + f"; {queue.get('memory_only', 0)} in memory only"
        )
        if queue.get("memory_only") or queue.get("memory_dropped"):
            print(
                f"  disk full: {queue.get('memory_only')} messages held in memory only (at most "
                f"{queue.get('memory_limit')}; lost if the daemon stops before space returns), "
                f"{queue.get('memory_dropped')} dropped past that bound"
            )
        print(
            f"  broker: {broker.get('endpoint') or 'upload disabled'}, connected "
            f"{_yes_no(broker.get('connected'))}, last ack {_age(broker.get('last_ack_at'))}"
        )
        remote = health.get("config", {})
        version = remote.get("version")
        print(
            "  configuration: local file"
            + (f" + remote version {version}" if version is not None else " only")
            + (f" (remote: {remote['remote_error']})" if remote.get("remote_error") else "")
        )
        if remote.get("policy_source"):
            print(
                f"  contract policy: version {remote.get('policy_version')} from "
                f"{remote['policy_source']}"
            )
        elif "policy_source" in remote:
            print("  contract policy: none (no verdicts)")
        for name, job in health.get("jobs", {}).items():
            error = f", last error: {job['last_error']}" if job.get("last_error") else ""
            print(
                f"  job {name}: runs {job.get('runs')}, last success "
                f"{_age(job.get('last_success'))}{error}"
            )
    return 0 if ok else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config_help = f"config file (default {DEFAULT_CONFIG_PATH}, or $FLEET_AGENT_CONFIG)"
    run = subparsers.add_parser(
        "run",
        help="run the daemon (discovery, reads, upload)",
        description="Run the agent: discover printers on the configured targets, read them "
        "on schedule, sign and queue every read and upload it over MQTT. Under systemd it is "
        "a Type=notify service (packaging/systemd/fleet-agent.service); SIGHUP reloads the "
        "configuration, SIGTERM stops it after the reads in progress. Exit status 0 after "
        "an orderly stop, 1 on a failure, 2 for a bad argument or configuration.",
    )
    run.add_argument("--config", type=Path, default=None, metavar="FILE", help=config_help)
    run.add_argument(
        "--once",
        action="store_true",
        help="one discovery and one meter read, wait for the upload queue to drain, then exit",
    )
    run.set_defaults(handler=_run)
    status = subparsers.add_parser(
        "status",
        help="summarise what the running daemon is doing",
        description="Ask the running daemon's health endpoint (http.listen and http.port of the "
        "configuration) what it is doing: its jobs, the last read, the upload queue, the "
        "broker. Exit status 0 when it is healthy, 1 when it is not or does not answer.",
    )
    status.add_argument("--config", type=Path, default=None, metavar="FILE", help=config_help)
    status.add_argument(
        "--host", default=None, metavar="ADDRESS", help="health endpoint address (default: config)"
    )
    status.add_argument(
        "--port", type=int, default=None, metavar="PORT", help="health endpoint port"
    )
    status.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or JSON"
    )
    status.add_argument("--quiet", action="store_true", help="no output; exit 0 only if healthy")
    status.set_defaults(handler=_status)
