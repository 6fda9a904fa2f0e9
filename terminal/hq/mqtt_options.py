"""The broker options every ``posterm-hq`` command that talks MQTT takes, and the client config
they make: HQ's client certificate (CN hq) over TLS."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Protocol

from terminal.protocol.mqtt import MqttConfig, TlsFiles
from terminal.protocol.topics import DEFAULT_ROOT


class _Options(Protocol):  # a parser, a sub-command's parser or an argument group
    def add_argument(self, *names: str, **how: Any) -> Any: ...


def add_broker_options(parser: _Options, client_id: str, *, optional: bool = False,
                       ca: str = "--ca") -> None:
    """``--host --port CA --cert --key --topic-root --client-id``. ``optional``: no broker
    unless ``--host`` is given (then CA, cert and key are checked by :func:`mqtt_config`)."""
    if optional:
        parser.add_argument("--host", help="the MQTT broker; commands are off without it")
    else:
        parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8883)
    parser.add_argument(ca, type=Path, required=not optional,
                        help="the broker's CA (chain.pem)" if ca != "--ca" else None)
    parser.add_argument("--cert", type=Path, required=not optional,
                        help="HQ client certificate (CN hq)")
    parser.add_argument("--key", type=Path, required=not optional)
    parser.add_argument("--topic-root", default=DEFAULT_ROOT)
    parser.add_argument("--client-id", default=client_id)


def mqtt_config(args: argparse.Namespace, *, backoff_max: float,
                ca: Path | None = None) -> MqttConfig:
    """The client config from :func:`add_broker_options`' options (``ca``: when the CA option
    has another name)."""
    ca = ca or args.ca
    missing = [f"--{name}" for name, value in (("ca", ca), ("cert", args.cert), ("key", args.key))
               if value is None]
    if missing:
        raise ValueError(f"--host needs {', '.join(missing)} (TLS with HQ's certificate)")
    return MqttConfig(args.host, args.port, args.client_id,
                      tls=TlsFiles(ca, args.cert, args.key), backoff_max=backoff_max)
