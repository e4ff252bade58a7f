# SPDX-License-Identifier: MIT
"""The bus as a user scripting it from Python sees it: bus-test-server, pyzmq, and
modules that protoc generates from proto/. Also runs proto/examples/client.py, the
example proto/README.md shows."""

import os
import re
import sys
import time

import pytest

zmq = pytest.importorskip("zmq")
pytest.importorskip("google.protobuf")

TEST_SERVER = "lib/bus/bus-test-server"
FRAME_MAX = 4 << 20


@pytest.fixture
def server(build_binary, runtime_dir, start_binary):
    return start_binary([build_binary(TEST_SERVER), "--runtime-dir", runtime_dir, "--name", "test"],
                        ready="ready ")


@pytest.fixture
def pb(pb_dir):
    """envelope_pb2, with the other generated modules as attributes."""
    from locald.v1 import diagnostics_pb2, envelope_pb2, supervisor_pb2

    envelope_pb2.diagnostics = diagnostics_pb2
    envelope_pb2.supervisor = supervisor_pb2
    return envelope_pb2


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def rpc_endpoint(runtime_dir):
    return f"ipc://{runtime_dir}/test.rpc"


def roundtrip(ctx, runtime_dir, frames, socket_type=zmq.DEALER, timeout=5.0):
    s = ctx.socket(socket_type)
    s.linger = 0
    s.connect(rpc_endpoint(runtime_dir))
    if len(frames) == 1:
        s.send(frames[0])
    else:
        s.send_multipart(frames)
    assert s.poll(int(timeout * 1000)), "no reply"
    reply = s.recv_multipart()
    s.close()
    return reply


def request(pb, request_id="py-1", **call):
    r = pb.Request(api_version=1, request_id=request_id, **call)
    return r


def emit(ctx, runtime_dir, pb, topic, count=1, skip=0):
    (data,) = roundtrip(ctx, runtime_dir, [
        request(pb, emit_events=pb.diagnostics.EmitEvents(topic=topic, count=count, skip=skip))
        .SerializeToString()])
    reply = pb.Reply.FromString(data)
    assert reply.WhichOneof("result") == "emit_events", reply
    return reply.emit_events


def run_client(start_binary, source_dir, pb_dir, runtime_dir, *args):
    env = dict(os.environ, PYTHONPATH=str(pb_dir), LOCALD_RUNTIME_DIR=str(runtime_dir))
    return start_binary([sys.executable, source_dir / "proto" / "examples" / "client.py",
                         "--daemon", "test", *args], env=env)


def test_example_client_pings_and_receives_an_event(server, start_binary, source_dir, pb_dir, pb, ctx,
                                                    runtime_dir):
    client = run_client(start_binary, source_dir, pb_dir, runtime_dir,
                        "--subscribe", "test.", "--events", "1", "--timeout", "20")
    client.wait_for_line("pong from test", timeout=10)
    # Publish until the subscription has reached the server (ZeroMQ's slow joiner).
    deadline = time.monotonic() + 20
    while client.proc.poll() is None and time.monotonic() < deadline:
        emit(ctx, runtime_dir, pb, "test.example")
        time.sleep(0.1)
    assert client.stop() == 0, client.stderr_lines
    out = client.output()
    assert out[0] == "pong from test: token='hello from python'"
    assert re.fullmatch(r"version: test \S+ api_version=1 pid=\d+", out[1]), out
    assert re.fullmatch(r"event test\.example seq=\d+ family=test payload=debug", out[-1]), out


def test_example_client_reports_gaps(server, start_binary, source_dir, pb_dir, pb, ctx, runtime_dir):
    client = run_client(start_binary, source_dir, pb_dir, runtime_dir,
                        "--subscribe", "test.", "--events", "0", "--timeout", "20")
    deadline = time.monotonic() + 20
    while not any(line.startswith("event ") for line in client.output()):
        assert time.monotonic() < deadline, client.output()
        emit(ctx, runtime_dir, pb, "test.warmup")
        time.sleep(0.1)
    emitted = emit(ctx, runtime_dir, pb, "test.gap", count=1, skip=3)
    line = client.wait_for_line(lambda l: l.startswith("gap in test"), timeout=10)
    assert line == (f"gap in test: missed 3 events (seq {emitted.first_seq - 3}.."
                    f"{emitted.first_seq - 1})")
    client.wait_for_line(lambda l: l.startswith("event test.gap "), timeout=10)


def test_example_client_without_daemon(start_binary, source_dir, pb_dir, runtime_dir):
    client = run_client(start_binary, source_dir, pb_dir, runtime_dir, "--timeout", "1")
    client.proc.wait(30)
    assert client.proc.returncode == 1
    assert any("is the daemon running" in l for l in client.stderr_lines)


def test_garbage_gets_invalid_argument(server, pb, ctx, runtime_dir):
    (data,) = roundtrip(ctx, runtime_dir, [b"\xff\xfe this is not protobuf"])
    reply = pb.Reply.FromString(data)
    assert reply.request_id == ""
    assert reply.error.code == pb.Error.INVALID_ARGUMENT
    assert "malformed" in reply.error.message
    assert reply.error.hint


def test_req_socket_gets_replies_too(server, pb, ctx, runtime_dir):
    r = request(pb, "req-1", ping=pb.Ping(token="via REQ"))
    (data,) = roundtrip(ctx, runtime_dir, [r.SerializeToString()], socket_type=zmq.REQ)
    reply = pb.Reply.FromString(data)
    assert reply.request_id == "req-1"
    assert reply.pong.token == "via REQ"
    assert reply.pong.daemon == "test"


def test_api_version_mismatch(server, pb, ctx, runtime_dir):
    r = request(pb, "v9", ping=pb.Ping())
    r.api_version = 9
    (data,) = roundtrip(ctx, runtime_dir, [r.SerializeToString()])
    reply = pb.Reply.FromString(data)
    assert reply.request_id == "v9"
    assert reply.error.code == pb.Error.FAILED_PRECONDITION
    assert "api_version = 1" in reply.error.hint


def test_unimplemented_call(server, pb, ctx, runtime_dir):
    r = request(pb, "st", status=pb.supervisor.Status(project="shop"))
    (data,) = roundtrip(ctx, runtime_dir, [r.SerializeToString()])
    reply = pb.Reply.FromString(data)
    assert reply.error.code == pb.Error.UNIMPLEMENTED


def test_oversize_frame(server, pb, ctx, runtime_dir):
    r = request(pb, "huge", echo=pb.diagnostics.Echo(payload=b"x" * FRAME_MAX))
    (data,) = roundtrip(ctx, runtime_dir, [r.SerializeToString()])
    reply = pb.Reply.FromString(data)
    assert reply.request_id == "huge"
    assert reply.error.code == pb.Error.INVALID_ARGUMENT
    assert "exceeds the limit" in reply.error.message


def test_echo_and_unicode(server, pb, ctx, runtime_dir):
    r = request(pb, "e", echo=pb.diagnostics.Echo(payload="héllo ✓".encode(), delay_ms=20))
    (data,) = roundtrip(ctx, runtime_dir, [r.SerializeToString()])
    assert pb.Reply.FromString(data).echo.payload.decode() == "héllo ✓"


def test_readme_shows_the_example(source_dir):
    readme = (source_dir / "proto" / "README.md").read_text()
    example = (source_dir / "proto" / "examples" / "client.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert example in blocks, "proto/README.md must show proto/examples/client.py verbatim"
