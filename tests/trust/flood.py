"""A flooding till, as its own process: ``python -m tests.trust.flood`` publishes one message
again and again, at a set rate, for a set time (bounded in both), to one topic on a loopback
broker, with the certificate of the terminal it floods as; it prints how many it sent.

    python -m tests.trust.flood --port P --ca ca.crt --cert t.crt --key t.key \\
        --topic posterm/v1/t/S001/T01/members/req --payload-file req.json \\
        --response-topic posterm/v1/t/S001/T01/members/resp --rate 12000 --seconds 20
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

MAX_SECONDS = 120  # a flood stops by itself, whatever it is told


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    for name in ("--ca", "--cert", "--key", "--topic", "--payload-file"):
        parser.add_argument(name, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--response-topic")
    parser.add_argument("--rate", type=int, default=12_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="flood", protocol=paho.MQTTv5)
    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    client.tls_set_context(context)
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    properties = Properties(PacketTypes.PUBLISH)
    if args.response_topic:
        properties.ResponseTopic = args.response_topic
        properties.CorrelationData = b"flood"
    payload = Path(args.payload_file).read_bytes()
    start, sent = time.monotonic(), 0
    end = start + min(args.seconds, MAX_SECONDS)
    while (now := time.monotonic()) < end:
        due = int((now - start) * args.rate)
        while sent < due:
            client.publish(args.topic, payload, qos=0, properties=properties)
            sent += 1
        time.sleep(0.005)  # pacing: the rate, not a wait for a condition
    client.disconnect()
    client.loop_stop()
    print(sent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
