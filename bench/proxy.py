#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""locald-proxyd against nginx as a reverse proxy, and against the upstream direct.

One run, same machine, same upstream: an nginx (1 worker) serving a 13-byte body on
127.0.0.1:<U> — the ceiling is that upstream hit directly. The two proxies in front of it:

  nginx   Debian's nginx, `worker_processes auto`, proxy_pass with an upstream keepalive
          pool (32), HTTP/2 + TLS on its https port (ECDSA P-256 certificate), access log
          off — what a careful user would configure.
  proxyd  locald-proxyd with its defaults, the route set over the bus (SetRoutes:
          bench.localhost → 127.0.0.1:<U>), access events on (nobody subscribed).

Measured, each proxy in turn (the other idle):
  h1      wrk, HTTP/1.1 keep-alive, small responses: requests/s, p50 and p99 latency
  h2      h2load over TLS, HTTP/2, 10 connections × 100 concurrent streams: requests/s
  tls     wrk over HTTPS with `Connection: close`: a full TLS handshake per request
          (new TLS connections per second)
  idle    RSS (all processes of the proxy) before and after 1,000 idle keep-alive
          connections: KiB per connection (the number reported is per 1,000)

Goal (issue 4): ≥ 1.0× nginx's throughput and ≤ 1.0× its p99.

    apt-get install nginx wrk nghttp2-client     (the script installs what is missing)
    /usr/bin/python3 bench/proxy.py [--duration 8] [--build build-bench]
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import benchlib as bl

HOST = "bench.localhost"


def ensure_tools():
    need = {"nginx": "nginx", "wrk": "wrk", "h2load": "nghttp2-client", "openssl": "openssl"}
    missing = [pkg for tool, pkg in need.items()
               if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        print(f"installing {' '.join(missing)} …", flush=True)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def nginx_bin():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def start_nginx(d, conf):
    d.mkdir(parents=True, exist_ok=True)
    (d / "logs").mkdir(exist_ok=True)
    (d / "nginx.conf").write_text(conf)
    subprocess.run([nginx_bin(), "-p", str(d), "-c", str(d / "nginx.conf"), "-t", "-q"], check=True)
    subprocess.run([nginx_bin(), "-p", str(d), "-c", str(d / "nginx.conf")], check=True)
    pid = int((d / "nginx.pid").read_text())
    return pid


def stop_nginx(d):
    try:
        pid = int((d / "nginx.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)
    except (OSError, ValueError):
        pass


def tree_pids(pid):
    """pid and its children (nginx master + workers; proxyd is one process)."""
    out = [pid]
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            kids = Path(f"/proc/{pid}/task/{t}/children").read_text().split()
            out += [int(k) for k in kids]
    except OSError:
        pass
    return out


def rss_kb(pid):
    return sum(bl.proc_rss_kb(p) for p in tree_pids(pid))


COMMON = """
worker_rlimit_nofile 65536;
error_log logs/error.log warn;
pid nginx.pid;
daemon on;
events { worker_connections 16384; }
"""


def upstream_conf(port):
    return COMMON.replace("daemon on;", "daemon on;\nworker_processes 1;") + f"""
http {{
  access_log off;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    location / {{ default_type text/plain; return 200 "hello, world\\n"; }}
  }}
}}
"""


def proxy_conf(http_port, https_port, upstream_port, cert, key):
    return COMMON.replace("daemon on;", "daemon on;\nworker_processes auto;") + f"""
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  http2_max_concurrent_streams 128;
  upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{http_port} reuseport backlog=4096;
    listen 127.0.0.1:{https_port} ssl http2 reuseport backlog=4096;
    server_name {HOST};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering off;
    }}
  }}
}}
"""


def make_cert(d):
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "30", "-subj", f"/CN={HOST}", "-addext",
                    f"subjectAltName=DNS:{HOST}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def start_proxyd(build, d, http_port, https_port, upstream_port):
    binary = Path(build) / "services" / "proxyd" / "locald-proxyd"
    if not binary.exists():
        sys.exit(f"{binary} not found: meson setup {build} -Dbuildtype=release && ninja -C {build}")
    rt, st, cf = d / "rt", d / "st", d / "cf"
    for x in (rt, st, cf):
        x.mkdir(parents=True, exist_ok=True)
    rt.chmod(0o700)
    env = dict(os.environ, LOCALD_RUNTIME_DIR=str(rt), LOCALD_STATE_DIR=str(st),
               LOCALD_CONFIG_DIR=str(cf), LOCALD_HTTP_PORT=str(http_port),
               LOCALD_HTTPS_PORT=str(https_port))
    log = open(d / "proxyd.log", "ab")
    proc = subprocess.Popen([str(binary)], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    bl.wait_ports([http_port, https_port], timeout=20)
    envpb, _ = bl.pb()
    from locald.v1 import proxy_pb2
    c = bl.Client(rt, daemon="proxyd") if hasattr(bl, "Client") else None
    if c is None:
        from locald_bus import Client
        c = Client(rt, daemon="proxyd")
    c.call(timeout=10, set_routes=proxy_pb2.SetRoutes(owner="bench", routes=[
        proxy_pb2.Route(host=HOST, upstream=f"127.0.0.1:{upstream_port}")]))
    c.close()
    return proc


def run(cmd, timeout=120):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()[:300]}")
    return p.stdout


def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    if not m:
        return float("nan")
    x = float(m.group(1))
    return x / 1000 if m.group(2) == "us" else x * 1000 if m.group(2) == "s" else x


def wrk(url, duration, conns=64, headers=()):
    cmd = ["wrk", "-t", "1", "-c", str(conns), "-d", f"{duration}s", "--latency",
           "-H", f"Host: {HOST}"]
    for h in headers:
        cmd += ["-H", h]
    out = run(cmd + [url], timeout=duration + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockerr = re.search(r"Socket errors: (.*)", out)
    return rps, p50, p99, (errors.group(1) if errors else "0"), (sockerr.group(1) if sockerr else "")


def h2load(port, n, tls=True):
    url = f"https://{HOST}:{port}/" if tls else f"http://{HOST}:{port}/"
    out = run(["h2load", "-n", str(n), "-c", "10", "-m", "100", "-t", "1",
               "--connect-to", f"127.0.0.1:{port}", url], timeout=300)
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    ok = int(re.search(r"(\d+) succeeded", out).group(1))
    status2xx = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
    proto = re.search(r"Application protocol: (\S+)", out)
    return rps, ok, status2xx, proto.group(1) if proto else "?"


def idle_conns(port, n=1000):
    socks = []
    req = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(req)
        socks.append(s)
    for s in socks:
        s.settimeout(10)
        got = b""
        while b"hello, world" not in got:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("connection closed while idle test warmed up")
            got += chunk
    return socks


def measure(name, pid, http_port, https_port, args):
    print(f"\n== {name}", flush=True)
    r = {}
    # warm up (first leaf minting, pools)
    wrk(f"http://127.0.0.1:{http_port}/", 2)
    r["h1"] = wrk(f"http://127.0.0.1:{http_port}/", args.duration)
    print(f"  h1 keep-alive: {r['h1'][0]:.0f} req/s  p50 {r['h1'][1]:.2f} ms  p99 {r['h1'][2]:.2f} ms"
          f"  non-2xx {r['h1'][3]} {r['h1'][4]}", flush=True)
    if https_port:
        r["h2"] = h2load(https_port, args.h2_requests)
        print(f"  h2 TLS 10×100 streams: {r['h2'][0]:.0f} req/s ({r['h2'][2]} 2xx of {args.h2_requests},"
              f" protocol {r['h2'][3]})", flush=True)
        r["tls"] = wrk(f"https://127.0.0.1:{https_port}/", args.duration, conns=16,
                       headers=["Connection: close"])
        print(f"  new TLS connections: {r['tls'][0]:.0f} /s  p99 {r['tls'][2]:.2f} ms", flush=True)
    if pid:
        time.sleep(0.5)
        before = rss_kb(pid)
        socks = idle_conns(http_port)
        time.sleep(1.0)
        after = rss_kb(pid)
        for s in socks:
            s.close()
        r["idle"] = (before, after, after - before)
        print(f"  RSS {before / 1024:.1f} MB → {after / 1024:.1f} MB with 1,000 idle connections "
              f"(+{(after - before) / 1024:.1f} MB)", flush=True)
    return r


def main():
    p = bl.arg_parser(__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    p.add_argument("--h2-requests", type=int, default=200000)
    p.add_argument("--skip-proxyd", action="store_true")
    args = p.parse_args()
    ensure_tools()
    tmp = bl.scratch(args, "proxy-bench-")
    up_port, nx_http, nx_https, px_http, px_https = bl.free_ports(5)
    up_dir, nx_dir, px_dir = tmp / "upstream", tmp / "nginx", tmp / "proxyd"
    cert, key = make_cert(tmp)
    print(f"proxy bench: {bl.machine_note()}")
    proxyd = None
    results = {}
    try:
        start_nginx(up_dir, upstream_conf(up_port))
        bl.wait_ports([up_port])
        results["upstream (ceiling)"] = measure("upstream direct (nginx, 1 worker)", None, up_port, None, args)
        nx_pid = start_nginx(nx_dir, proxy_conf(nx_http, nx_https, up_port, cert, key))
        bl.wait_ports([nx_http, nx_https])
        results["nginx"] = measure("nginx reverse proxy", nx_pid, nx_http, nx_https, args)
        stop_nginx(nx_dir)
        if not args.skip_proxyd:
            proxyd = start_proxyd(args.build, px_dir, px_http, px_https, up_port)
            results["proxyd"] = measure("locald-proxyd", proxyd.pid, px_http, px_https, args)
    finally:
        if proxyd:
            proxyd.terminate()
            try:
                proxyd.wait(10)
            except subprocess.TimeoutExpired:
                proxyd.kill()
        stop_nginx(nx_dir)
        stop_nginx(up_dir)

    print()
    rows = []
    base = results.get("nginx")
    for name, r in results.items():
        def ratio(key, idx):
            if not base or key not in r or key not in base:
                return "-"
            return f"{r[key][idx] / base[key][idx]:.2f}×"
        rows.append([name,
                     f"{r['h1'][0]:.0f}", ratio("h1", 0), f"{r['h1'][1]:.2f}", f"{r['h1'][2]:.2f}",
                     ratio("h1", 2),
                     f"{r['h2'][0]:.0f}" if "h2" in r else "-", ratio("h2", 0),
                     f"{r['tls'][0]:.0f}" if "tls" in r else "-", ratio("tls", 0),
                     f"{r['idle'][2] / 1024:.1f}" if "idle" in r else "-"])
    bl.table(["", "h1 req/s", "vs nginx", "p50 ms", "p99 ms", "p99 vs nginx", "h2 req/s", "vs nginx",
              "TLS conn/s", "vs nginx", "MB/1k idle"], rows)
    print("\nh1: wrk -t1 -c64 keep-alive; h2: h2load -c10 -m100 over TLS; TLS conn/s: wrk -c16 with "
          "Connection: close over HTTPS; MB/1k idle: RSS growth with 1,000 idle keep-alive connections")
    bl.cleanup(args, tmp)


if __name__ == "__main__":
    main()
