# SPDX-License-Identifier: MIT
"""Bring a project up under a private locald-superd and follow its logs (see deploy/demo)."""

import os
import signal
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "integration"))
import locald_bus as lb  # noqa: E402

COLOURS = ["36", "33", "35", "32", "34", "31"]


def main():
    project = Path(sys.argv[1]).resolve()
    root = Path(os.environ.get("LOCALD_DEMO_DIR") or tempfile.mkdtemp(prefix="locald-demo-"))
    superd = lb.Superd(TOP / "build/services/superd/locald-superd", root).start()
    env, sv = lb.pb()
    c = superd.client()
    try:
        print(f"locald-superd running (runtime {superd.runtime}); applying {project} …", flush=True)
        try:
            rep = c.call(timeout=120, apply_project=sv.ApplyProject(
                path=str(project), wait=True,
                environment=[sv.EnvVar(name=k, value=v) for k, v in os.environ.items()]))
        except lb.BusError as e:
            print(f"error: {e}", file=sys.stderr)
            for d in e.details:
                print(f"  {d}", file=sys.stderr)
            return 1
        p = rep.apply_project.project
        width = max(len(s.service) for s in p.services)
        for s in p.services:
            state = sv.ServiceState.Name(s.state).removeprefix("SERVICE_STATE_").lower()
            where = f"http://127.0.0.1:{s.port}" if s.port else "-"
            print(f"  {s.service:<{width}}  {state:<8}  {where:<24}  {s.url or ''}  {s.status_reason}")
        print("(the https://*.localhost names are served once locald-proxyd exists; "
              "the direct addresses answer now)\nfollowing logs, Ctrl-C stops the project\n", flush=True)
        colour = {s.service: COLOURS[i % len(COLOURS)] for i, s in enumerate(p.services)}
        stop = []
        signal.signal(signal.SIGINT, lambda *a: stop.append(1))
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
        cursor = ""
        tty = sys.stdout.isatty()
        # Subscribe first, then page by cursor: an event only says "there is more"; the
        # store is where lines come from, so none is missed or shown twice.
        sub = lb.Subscriber(superd.runtime, f"log.{p.name}.")
        while not stop:
            r = c.call(logs=sv.Logs(project=p.name, cursor=cursor, limit=500))
            for line in r.logs.lines:
                name = f"{line.service:<{width}} |"
                if tty:
                    name = f"\x1b[{colour.get(line.service, '37')}m{name}\x1b[0m"
                print(f"{name} {line.text}")
            sys.stdout.flush()
            cursor = r.logs.next_cursor
            if not r.logs.more:
                while sub.receive(timeout=0.05 if cursor else 1.0):
                    pass  # drain: one read by cursor covers them all
                sub.receive(timeout=1.0)
        sub.close()
        print("\nstopping …", flush=True)
        c.call(timeout=60, stop_project=sv.StopProject(project=p.name))
        return 0
    finally:
        c.close()
        superd.stop()


if __name__ == "__main__":
    sys.exit(main())
