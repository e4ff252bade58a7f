#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Run toml-test's TOML 1.0.0 cases against a decoder.

usage: run-toml-test.py DECODER TOML_TEST_DIR

The case list is TOML_TEST_DIR/tests/files-toml-1.0.0. Each valid/X.toml must decode
(exit 0, nothing on stderr) to JSON equal to valid/X.json, compared the way toml-test
compares: same tags and shapes, integers exactly, floats numerically (nan equals nan,
infinities and zeros keep their sign), date-times by the value they denote. Each
invalid/X.toml must be rejected the way the decoder promises: exit status 1 and one
line "<stdin>:LINE:COL: message" on stderr; a signal, a sanitizer report or any other
exit is a failure, not a rejection.
"""

import concurrent.futures
import datetime
import decimal
import json
import math
import os
import re
import subprocess
import sys

TIMEOUT = 20
ERROR_LINE = re.compile(r"<stdin>:[0-9]+:[0-9]+: [^\n]+\n?")


def is_tagged(v):
    return isinstance(v, dict) and set(v) == {"type", "value"} and isinstance(v["type"], str)


DATE = r"(\d{4})-(\d{2})-(\d{2})"
TIME = r"(\d{2}):(\d{2}):(\d{2})(\.\d+)?"
PATTERNS = {
    "datetime": re.compile(DATE + r"[Tt ]" + TIME + r"([Zz]|[+-]\d{2}:\d{2})"),
    "datetime-local": re.compile(DATE + r"[Tt ]" + TIME),
    "date-local": re.compile(DATE),
    "time-local": re.compile(TIME),
}


def datetime_key(kind, text):
    """What a date/time denotes, as a comparable tuple; None if it does not parse."""
    m = PATTERNS[kind].fullmatch(text)
    if not m:
        return None
    g = m.groups()

    def frac(s):
        return decimal.Decimal("0" + s).normalize() if s else decimal.Decimal(0)

    if kind == "date-local":
        return datetime.date(int(g[0]), int(g[1]), int(g[2])).toordinal()
    if kind == "time-local":
        return (int(g[0]), int(g[1]), int(g[2]), frac(g[3]))
    day = datetime.date(int(g[0]), int(g[1]), int(g[2])).toordinal()
    seconds = day * 86400 + int(g[3]) * 3600 + int(g[4]) * 60 + int(g[5])
    if kind == "datetime-local":
        return (seconds, frac(g[6]))
    offset = 0
    if g[7] not in ("Z", "z"):
        sign = -1 if g[7][0] == "-" else 1
        offset = sign * (int(g[7][1:3]) * 60 + int(g[7][4:6]))
    return (seconds - offset * 60, frac(g[6]))


def parse_float(text):
    if text in ("nan", "+nan", "-nan"):
        return math.nan
    if text in ("inf", "+inf"):
        return math.inf
    if text == "-inf":
        return -math.inf
    return float(text)


def compare_scalar(want, have, path):
    wt, ht = want["type"], have["type"]
    if wt != ht:
        return f"{path}: type {ht!r}, expected {wt!r}"
    wv, hv = want["value"], have["value"]
    if not isinstance(hv, str):
        return f"{path}: value is not a JSON string: {hv!r}"
    try:
        if wt == "integer":
            same = int(wv) == int(hv)
        elif wt == "float":
            w, h = parse_float(wv), parse_float(hv)
            if math.isnan(w) or math.isnan(h):
                same = math.isnan(w) and math.isnan(h)
            else:
                same = w == h and math.copysign(1, w) == math.copysign(1, h)
        elif wt in PATTERNS:
            hk = datetime_key(wt, hv)
            same = hk is not None and hk == datetime_key(wt, wv)
        else:
            same = wv == hv
    except (ValueError, OverflowError):
        same = False
    return None if same else f"{path}: {wt} {hv!r}, expected {wv!r}"


def compare(want, have, path="(root)"):
    if is_tagged(want):
        if not is_tagged(have):
            return f"{path}: expected a {want['type']} value, got {json.dumps(have)[:80]}"
        return compare_scalar(want, have, path)
    if isinstance(want, list):
        if not isinstance(have, list):
            return f"{path}: expected an array"
        if len(want) != len(have):
            return f"{path}: array of {len(have)} elements, expected {len(want)}"
        for i, (w, h) in enumerate(zip(want, have)):
            err = compare(w, h, f"{path}[{i}]")
            if err:
                return err
        return None
    if isinstance(want, dict):
        if not isinstance(have, dict) or is_tagged(have):
            return f"{path}: expected a table"
        missing = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        if missing or extra:
            return f"{path}: keys missing {missing!r}, unexpected {extra!r}"
        for k in want:
            err = compare(want[k], have[k], f"{path}.{json.dumps(k)}")
            if err:
                return err
        return None
    return f"{path}: malformed expected JSON"


def run(decoder, path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        p = subprocess.run([decoder], input=data, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, None, f"timed out after {TIMEOUT}s"
    if p.returncode < 0:
        return None, None, f"killed by signal {-p.returncode}: {p.stderr.decode(errors='replace')[-300:]}"
    return p.returncode, (p.stdout, p.stderr), None


def check_valid(decoder, root, case):
    rc, out, err = run(decoder, os.path.join(root, case))
    if err:
        return err
    stdout, stderr = out
    if rc != 0 or stderr:
        return f"exit {rc}: {stderr.decode(errors='replace').strip()[:300]}"
    try:
        have = json.loads(stdout)
    except ValueError as e:
        return f"decoder wrote invalid JSON: {e}"
    with open(os.path.join(root, case[: -len(".toml")] + ".json"), encoding="utf-8") as f:
        want = json.load(f)
    return compare(want, have)


def check_invalid(decoder, root, case):
    rc, out, err = run(decoder, os.path.join(root, case))
    if err:
        return err
    stdout, stderr = out
    text = stderr.decode(errors="replace")
    if rc == 0:
        return "accepted: " + stdout.decode(errors="replace")[:200]
    if rc != 1 or not ERROR_LINE.fullmatch(text):
        return f"exit {rc} without a one-line error: {text[-300:]!r}"
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    decoder, suite = sys.argv[1], sys.argv[2]
    root = os.path.join(suite, "tests")
    with open(os.path.join(root, "files-toml-1.0.0"), encoding="utf-8") as f:
        files = [line.strip() for line in f if line.strip()]
    valid = [c for c in files if c.startswith("valid/") and c.endswith(".toml")]
    invalid = [c for c in files if c.startswith("invalid/") and c.endswith(".toml")]
    if not valid or not invalid:
        print(f"no cases found in {root}", file=sys.stderr)
        return 2

    jobs = [(check_valid, c) for c in valid] + [(check_invalid, c) for c in invalid]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as pool:
        results = list(pool.map(lambda j: j[0](decoder, root, j[1]), jobs))

    failed = 0
    for (_, case), err in zip(jobs, results):
        if err:
            failed += 1
            print(f"FAIL {case}: {err}")
    valid_ok = sum(1 for (f, _), e in zip(jobs, results) if f is check_valid and not e)
    invalid_ok = sum(1 for (f, _), e in zip(jobs, results) if f is check_invalid and not e)
    print(f"toml-test 1.0.0: valid {valid_ok}/{len(valid)} passed, "
          f"invalid {invalid_ok}/{len(invalid)} rejected")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
