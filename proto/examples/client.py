#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A complete locald bus client in Python: ping a daemon, ask its version, follow its events.

Generate the Python modules from the .proto files first, then run with them on the path:

    protoc -I proto --python_out=/tmp/locald-pb proto/locald/v1/*.proto
    PYTHONPATH=/tmp/locald-pb python3 proto/examples/client.py --daemon superd --subscribe service.

Needs pyzmq and protobuf (Debian: python3-zmq python3-protobuf). See proto/README.md.
"""

import argparse
import os
import sys
import time
import uuid

import zmq

from locald.v1 import envelope_pb2

API_VERSION = 1


def runtime_dir():
    """Where the daemons' sockets are (DESIGN §1)."""
    if os.environ.get("LOCALD_RUNTIME_DIR"):
        return os.environ["LOCALD_RUNTIME_DIR"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "locald")
    return f"/tmp/locald-{os.getuid()}"


class BusError(Exception):
    def __init__(self, error):
        code = envelope_pb2.Error.Code.Name(error.code)
        super().__init__(f"{code}: {error.message}" + (f" ({error.hint})" if error.hint else ""))
        self.code = error.code


class Client:
    """Calls over a DEALER socket: one frame out (a Request), one frame back (its Reply)."""

    def __init__(self, ctx, endpoint):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)

    def call(self, request, timeout=5.0):
        request.api_version = API_VERSION
        request.request_id = uuid.uuid4().hex
        self.sock.send(request.SerializeToString())
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise TimeoutError(f"no reply within {timeout}s: is the daemon running?")
            reply = envelope_pb2.Reply.FromString(self.sock.recv())
            # A reply to an earlier call that timed out: not ours.
            if reply.request_id != request.request_id:
                continue
            if reply.WhichOneof("result") == "error":
                raise BusError(reply.error)
            return reply


class Subscriber:
    """Events arrive as two frames, [topic, Event]. seq counts 1, 2, 3, ... per topic
    family and publisher epoch: a jump means events were dropped (fetch them by request),
    a new epoch means the daemon restarted. Only meaningful for families the
    subscription covers completely ("" or "service." covers service.state; "log.shop.web"
    covers only part of "log", so its seq has holes)."""

    def __init__(self, ctx, endpoint, prefix):
        self.sock = ctx.socket(zmq.SUB)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.sock.subscribe(prefix.encode())
        self.last = {}  # family -> (epoch, seq)

    def receive(self, timeout):
        if not self.sock.poll(int(timeout * 1000)):
            return None, None
        topic, data = self.sock.recv_multipart()
        event = envelope_pb2.Event.FromString(data)
        note = None
        prev = self.last.get(event.family)
        if prev is not None:
            epoch, seq = prev
            if event.epoch != epoch or event.seq <= seq:
                note = f"publisher restarted: {event.family} starts again at seq {event.seq}"
            elif event.seq > seq + 1:
                note = (f"gap in {event.family}: missed {event.seq - seq - 1} events "
                        f"(seq {seq + 1}..{event.seq - 1})")
        self.last[event.family] = (event.epoch, event.seq)
        return event, note


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runtime-dir", default=runtime_dir())
    p.add_argument("--daemon", default="superd", help="superd, proxyd, ... (default: superd)")
    p.add_argument("--subscribe", default="", metavar="PREFIX",
                   help="topic prefix to follow (default: everything)")
    p.add_argument("--events", type=int, default=1,
                   help="exit after this many events (0: run until the timeout)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for events")
    args = p.parse_args()

    rpc = f"ipc://{args.runtime_dir}/{args.daemon}.rpc"
    events = f"ipc://{args.runtime_dir}/{args.daemon}.events"
    ctx = zmq.Context()
    try:
        # Subscribe first: events published before the subscription reaches the daemon
        # are not received (ZeroMQ's "slow joiner").
        sub = Subscriber(ctx, events, args.subscribe)
        client = Client(ctx, rpc)

        req = envelope_pb2.Request()
        req.ping.token = "hello from python"
        pong = client.call(req).pong
        print(f"pong from {pong.daemon}: token={pong.token!r}", flush=True)

        req = envelope_pb2.Request()
        req.get_version.SetInParent()
        v = client.call(req).version
        print(f"version: {v.daemon} {v.version} api_version={v.api_version} pid={v.pid}", flush=True)

        received = 0
        deadline = time.monotonic() + args.timeout
        while args.events == 0 or received < args.events:
            left = deadline - time.monotonic()
            event, note = sub.receive(max(left, 0))
            if event is None:
                if args.events == 0:
                    return 0
                print(f"timed out after {received} of {args.events} events", file=sys.stderr)
                return 1
            if note:
                print(note, flush=True)
            received += 1
            print(f"event {event.topic} seq={event.seq} family={event.family} "
                  f"payload={event.WhichOneof('payload')}", flush=True)
        return 0
    except BusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TimeoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    sys.exit(main())
