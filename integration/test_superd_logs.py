# SPDX-License-Identifier: MIT
"""locald-superd logs: a million lines without a gap, a 1 MiB line, binary output, PTY
colours, stdout and stderr apart, tail and events."""

import pytest

pytest.importorskip("zmq")
pytest.importorskip("google.protobuf")

from superd_fixtures import *  # noqa: E402,F401,F403

N_LINES = 1_000_000


def test_million_lines_all_retrievable_in_order(sd):
    proj = sd.project(f"""
        [services.flood]
        type = "worker"
        command = "seq 1 {N_LINES}"
    """)
    sd.apply(proj)
    sd.wait_state(proj, "flood", "exited", timeout=120)

    expect = 1
    prev_seq = None
    cursor = ""
    pages = 0
    while True:
        page = sd.logs_page(proj, "flood", cursor=cursor, streams=["stdout"])
        pages += 1
        for l in page.lines:
            assert l.text == str(expect), (l.text, expect)
            assert prev_seq is None or l.seq == prev_seq + 1, (prev_seq, l.seq)
            assert not l.truncated and not l.continuation
            prev_seq = l.seq
            expect += 1
        cursor = page.next_cursor
        if not page.more:
            break
    assert expect == N_LINES + 1, f"got {expect - 1} lines"
    assert pages > 1
    # Nothing more came: a read from the last cursor is empty.
    assert len(sd.logs_page(proj, "flood", cursor=cursor).lines) == 0


def test_one_mib_line_comes_back_whole(sd):
    proj = sd.project(f"""
        [services.big]
        type = "worker"
        command = "{PY} big.py"
    """, files={"big.py": """
        import sys
        line = bytes(ord("a") + (i * 7) % 26 for i in range(1 << 20))
        sys.stdout.buffer.write(b"before\\n" + line + b"\\nafter\\n")
    """})
    sd.apply(proj)
    sd.wait_state(proj, "big", "exited")
    lines = sd.logs(proj, "big", streams=["stdout"])
    assert lines[0].text == "before" and lines[-1].text == "after"
    parts = lines[1:-1]
    assert len(parts) > 1
    for i, p in enumerate(parts):
        assert p.truncated == (i < len(parts) - 1), (i, p.truncated)
        assert p.continuation == (i > 0), (i, p.continuation)
    assert [p.seq for p in parts] == list(range(parts[0].seq, parts[0].seq + len(parts)))
    whole = "".join(p.text for p in parts)
    expect = "".join(chr(ord("a") + (i * 7) % 26) for i in range(1 << 20))
    assert len(whole) == len(expect)
    assert whole == expect


def test_binary_output_survives(sd):
    payload = bytes(b for b in range(256) if b != 0x0A)
    proj = sd.project(f"""
        [services.bin]
        type = "worker"
        command = "{PY} bin.py"
    """, files={"bin.py": """
        import sys
        sys.stdout.buffer.write(bytes(b for b in range(256) if b != 0x0A) + b"\\n")
        sys.stdout.buffer.write("plain ascii, and ünïcödé\\n".encode())
    """})
    sd.apply(proj)
    sd.wait_state(proj, "bin", "exited")
    lines = sd.logs(proj, "bin", streams=["stdout"])
    assert len(lines) == 2, lines
    b, u = lines
    # text is valid UTF-8 (protobuf would not have parsed it otherwise), raw is exact.
    assert isinstance(b.text, str)
    assert "\ufffd" in b.text
    assert b.raw == payload
    # Valid UTF-8 is passed as is, without raw.
    assert u.text == "plain ascii, and ünïcödé"
    assert u.raw == b""


def test_pty_keeps_colours(sd):
    prog = 'import sys; print("\\x1b[31mred\\x1b[0m" if sys.stdout.isatty() else "plain")'
    proj = sd.project(f"""
        [services.tty]
        type = "worker"
        command = "exec {PY} colour.py"
        pty = true

        [services.pipe]
        type = "worker"
        command = "exec {PY} colour.py"
    """, files={"colour.py": prog})
    sd.apply(proj)
    sd.wait_state(proj, "tty", "exited")
    sd.wait_state(proj, "pipe", "exited")
    tty = [l.text for l in sd.logs(proj, "tty", streams=["stdout"])]
    assert tty == ["\x1b[31mred\x1b[0m"], tty
    pipe = [l.text for l in sd.logs(proj, "pipe", streams=["stdout"])]
    assert pipe == ["plain"], pipe


def test_stdout_and_stderr_are_separate_streams(sd):
    proj = sd.project("""
        [services.both]
        type = "worker"
        command = "echo to-out; echo to-err >&2; echo out-again; echo err-again >&2"
    """)
    sd.apply(proj)
    sd.wait_state(proj, "both", "exited")
    out = [l.text for l in sd.logs(proj, "both", streams=["stdout"])]
    err = [l.text for l in sd.logs(proj, "both", streams=["stderr"])]
    assert out == ["to-out", "out-again"]
    assert err == ["to-err", "err-again"]
    every = sd.logs(proj, "both")
    kinds = {l.stream for l in every}
    assert kinds == {sv.LOG_STREAM_STDOUT, sv.LOG_STREAM_STDERR, sv.LOG_STREAM_SYSTEM}
    # Sequence numbers are per service and consecutive over every stream.
    seqs = [l.seq for l in every]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_tail_and_events(sd):
    proj = sd.project("""
        [services.talk]
        type = "worker"
        command = "i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo line $i; done; exec sleep 1000"
    """)
    sub = sd.subscribe(f"log.{proj}.talk")
    sd.apply(proj)
    sd.wait_log(proj, "talk", lambda l: l.text == "line 50", streams=["stdout"])
    tail = sd.logs_page(proj, "talk", limit=5, tail=True, streams=["stdout"])
    assert [l.text for l in tail.lines] == [f"line {i}" for i in range(46, 51)]

    got = []
    while len(got) < 50:
        ev = sub.receive(timeout=10)
        assert ev is not None, f"events stopped after {got[-3:]}"
        if ev.log_line.stream == sv.LOG_STREAM_STDOUT:
            got.append(ev.log_line.text)
    sub.close()
    assert got == [f"line {i}" for i in range(1, 51)]


def test_project_logs_merged_by_cursor(sd):
    proj = sd.project("""
        [services.a]
        type = "worker"
        command = "for i in $(seq 1 300); do echo a$i; done; exec sleep 1000"

        [services.b]
        type = "worker"
        command = "for i in $(seq 1 300); do echo b$i >&2; done; exec sleep 1000"
    """)
    sd.apply(proj)
    sd.wait_log(proj, "a", lambda l: l.text == "a300", streams=["stdout"])
    sd.wait_log(proj, "b", lambda l: l.text == "b300", streams=["stderr"])

    # Small pages over the whole project: every line exactly once, by time.
    seen = []
    cursor = ""
    while True:
        page = sd.call(logs=sv.Logs(project=proj, cursor=cursor, limit=37,
                                    streams=[sv.LOG_STREAM_STDOUT, sv.LOG_STREAM_STDERR])).logs
        seen.extend(page.lines)
        cursor = page.next_cursor
        if not page.more:
            break
    a = [l.text for l in seen if l.service == "a"]
    b = [l.text for l in seen if l.service == "b"]
    assert a == [f"a{i}" for i in range(1, 301)]
    assert b == [f"b{i}" for i in range(1, 301)]
    times = [l.time_usec for l in seen]
    assert times == sorted(times)
    # A line's own cursor resumes right after it.
    mid = seen[100]
    rest = sd.call(logs=sv.Logs(project=proj, service=mid.service, cursor=mid.cursor,
                                streams=[mid.stream], limit=1)).logs.lines
    assert rest[0].seq == mid.seq + 1


def test_logs_since(sd):
    proj = sd.project("""
        [services.t]
        type = "worker"
        command = "echo early; sleep 0.3; touch mid; sleep 0.3; echo late; exec sleep 1000"
    """)
    sd.apply(proj)
    late = sd.wait_log(proj, "t", lambda l: l.text == "late", streams=["stdout"])
    early = sd.wait_log(proj, "t", lambda l: l.text == "early", streams=["stdout"])
    assert late.time_usec > early.time_usec
    page = sd.logs_page(proj, "t", streams=["stdout"], since_usec=early.time_usec + 1)
    assert [l.text for l in page.lines] == ["late"]
