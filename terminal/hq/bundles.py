"""`posterm-hq bundle build|push`.

``build RULES.toml`` checks the rules with the terminal's own engine, writes the canonical bundle
(``-o``, default ``bundle-{scope}-v{N}.json``) and beside it ``.sig`` (base64 Ed25519 signature),
``.delegation.json`` (the statement vouching for the signing key) and ``.rules.toml`` (the rules
as written). ``push BUNDLE.json --db URL --as NAME`` verifies them against ``root.pub``, records
the bundle in the rules studio's release history as the console user NAME (whose role must
allow it, audited; :func:`terminal.hq.rules_studio.releases.record`) and publishes it retained
on ``{root}/bundles/{scope}``, recording the outcome: a push by command is in the same history,
version sequence and audit log as the studio's own releases.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import datetime as dt
import importlib
import sys
import tomllib
from pathlib import Path
from typing import Any

from terminal.hq.mqtt_options import add_broker_options, mqtt_config
from terminal.protocol import bundle, canonical
from terminal.protocol.keys import load_private, load_public
from terminal.protocol.mqtt import MqttClient, MqttConfig, MqttError
from terminal.protocol.topics import TopicError, Topics, check_scope


class BuildError(ValueError):
    """An input file is unusable; the message names the file and the problem."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="sign a bundle from a rules file")
    build.add_argument("rules", type=Path, help="rules TOML")
    build.add_argument("--catalogue", type=Path, help="products as CSV (header row) or JSON list")
    build.add_argument("--settings", type=Path, help="terminal settings TOML")
    build.add_argument("--scope", required=True, help="chain or store/{store}")
    build.add_argument("--version", type=int, required=True, help="above every earlier one")
    build.add_argument("--expires", required=True,
                       help="ISO-8601 time with a zone, or a number of days such as 30d")
    build.add_argument("--keys", type=Path, required=True, help="directory made by keygen")
    build.add_argument("-o", "--output", type=Path)
    push = sub.add_parser("push", help="publish a built bundle, retained")
    push.add_argument("bundle", type=Path, help="the .json written by build")
    push.add_argument("--keys", type=Path, required=True, help="directory holding root.pub")
    push.add_argument("--db", required=True,
                      help="HQ's database: the push is recorded in the release history")
    push.add_argument("--as", dest="actor", required=True,
                      help="the console user pushing (marketing or admin to a store, admin "
                           "to the chain)")
    add_broker_options(push, "posterm-hq-push")
    push.add_argument("--timeout", type=float, default=10.0)


def run(args: argparse.Namespace) -> int:
    try:
        return build(args) if args.action == "build" else push(args)
    except (BuildError, bundle.BundleRejected, OSError, ValueError, MqttError) as exc:
        print(f"bundle {args.action}: {exc}", file=sys.stderr)
        return 1


# ------------------------------------------------------------------ build


def _jsonable(value: Any) -> Any:
    """TOML values as canonical JSON accepts them: times as ISO strings, floats as exact text."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return value


def read_toml(path: Path) -> dict[str, Any]:
    return toml_mapping(path.read_text(encoding="utf-8"), str(path))


def toml_mapping(text: str, where: str) -> dict[str, Any]:
    """A TOML text as a bundle carries it; ``where`` names it in the error."""
    try:
        # parse_float=str keeps "1.2" exactly as written; the rules engine reads it exactly.
        return _jsonable(tomllib.loads(text, parse_float=str))
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{where}: {exc}") from None


def check_rules(path: Path, data: dict[str, Any]) -> None:
    rules = importlib.import_module("terminal.loyalty.rules")
    try:
        rules.Rules.from_mapping(data)
    except rules.RulesError as exc:
        raise BuildError(f"{path}: {exc}") from None


def _amount(column: str | None) -> bool:
    return column is not None and (column.endswith("_fen") or column == "points")


def read_catalogue(path: Path) -> list[Any]:
    """The catalogue file, checked as every till checks the catalogue it loads."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        # Amounts (prices in fen, points) written as whole numbers become integers; everything
        # else stays text: a SKU or barcode of digits is a code, not a number.
        data: Any = [{k: int(v) if _amount(k) and v.lstrip("-").isdigit() else v
                      for k, v in row.items()} for row in rows]
    else:
        try:
            data = canonical.loads(path.read_bytes())
        except canonical.CanonicalError as exc:
            raise BuildError(f"{path}: {exc}") from None
        if not isinstance(data, list):
            raise BuildError(f"{path}: a catalogue must be a JSON list of products")
    people = importlib.import_module("terminal.loyalty.store.people")
    errors = importlib.import_module("terminal.loyalty.errors")
    try:
        people.catalogue_rows(data)
    except errors.InvalidInput as exc:
        raise BuildError(f"{path}: {exc}") from None
    return data


def parse_expiry(text: str, now: dt.datetime) -> dt.datetime:
    if text.endswith("d") and text[:-1].isdigit():
        return now + dt.timedelta(days=int(text[:-1]))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BuildError(f"--expires {text!r} is neither an ISO-8601 time nor like 30d") from None
    if when.tzinfo is None:
        raise BuildError(f"--expires {text!r} must carry a time zone")
    return when


def build(args: argparse.Namespace) -> int:
    try:
        scope = check_scope(args.scope)
    except TopicError as exc:
        raise BuildError(str(exc)) from None
    rules = read_toml(args.rules)
    check_rules(args.rules, rules)
    payload = {"rules": rules,
               "catalogue": read_catalogue(args.catalogue) if args.catalogue else [],
               "settings": read_toml(args.settings) if args.settings else {}}
    signing = load_private(args.keys / "signing.key")
    delegation = (args.keys / "delegation.json").read_bytes()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        raw = bundle.bundle_bytes(scope, args.version, now, parse_expiry(args.expires, now),
                                  bundle.key_id(signing.public_key()), payload)
    except canonical.CanonicalError as exc:
        raise BuildError(f"payload: {exc}") from None
    output: Path = args.output or Path(f"bundle-{scope.replace('/', '-')}-v{args.version}.json")
    output.write_bytes(raw)
    Path(f"{output}.sig").write_text(base64.b64encode(bundle.sign(raw, signing)).decode() + "\n")
    Path(f"{output}.delegation.json").write_bytes(delegation)
    Path(f"{output}.rules.toml").write_text(args.rules.read_text(encoding="utf-8"),
                                            encoding="utf-8")
    print(f"{output}: {scope} v{args.version}, {len(raw)} bytes, signed by "
          f"{bundle.key_id(signing.public_key())}")
    return 0


# ------------------------------------------------------------------ push


def assemble(path: Path) -> bytes:
    """The wire message from a built bundle and its two companion files."""
    raw = path.read_bytes()
    try:
        signature = base64.b64decode(Path(f"{path}.sig").read_text().strip(), validate=True)
        delegation = canonical.loads(Path(f"{path}.delegation.json").read_bytes())
    except (ValueError, canonical.CanonicalError) as exc:
        raise BuildError(f"{path}: companion file unreadable: {exc}") from None
    if not isinstance(delegation, dict):
        raise BuildError(f"{path}.delegation.json: not a delegation")
    return bundle.envelope(raw, signature, delegation)


def push(args: argparse.Namespace) -> int:
    message = assemble(args.bundle)
    trust = bundle.TrustStore.of([load_public(args.keys / "root.pub")])
    now = dt.datetime.now(dt.UTC)
    # What terminals will check, checked here first: signature, chain of trust, expiry.
    checked = bundle.verify_bundle(message, trust, {check_scope(_scope_of(args.bundle))}, 0,
                                   now, True)
    try:
        rules_text = Path(f"{args.bundle}.rules.toml").read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"{args.bundle}.rules.toml (the rules as written, which build writes "
                         f"beside the bundle): {exc.strerror}") from None
    from terminal.hq.rules_studio.release_cli import push_built  # the studio imports this module

    topics = Topics(args.topic_root)
    config = mqtt_config(args, backoff_max=2.0)

    async def publish(found: list[tuple[str, bytes]]) -> None:
        await publish_retained(config, found, args.timeout)
    if not push_built(args.db, args.actor, checked, message, rules_text, trust, topics,
                      publish):
        return 1
    print(f"pushed {checked.scope} v{checked.version} to {topics.bundle(checked.scope)} "
          f"(retained), recorded as release v{checked.version} by {args.actor}")
    return 0


def _scope_of(path: Path) -> str:
    data = canonical.loads(path.read_bytes())
    if not isinstance(data, dict) or not isinstance(data.get("scope"), str):
        raise BuildError(f"{path}: not a bundle")
    return data["scope"]


async def publish_retained(config: MqttConfig, messages: list[tuple[str, bytes]],
                           timeout: float) -> None:
    """Publish each (topic, message) retained with QoS 1, in order, on one connection."""
    client = MqttClient(config)
    await client.start()
    try:
        try:
            await client.wait_ready(timeout)
        except TimeoutError:
            raise MqttError(f"no connection to {config.host}:{config.port} "
                            f"within {timeout}s") from None
        async with asyncio.timeout(timeout):
            for topic, message in messages:
                await client.publish(topic, message, qos=1, retain=True)
    finally:
        await client.stop()
