#!/bin/sh
# The demo's worker: every $EVERY seconds, print how many visits the API has counted.
set -u
while :; do
	python3 -c '
import json, os, sys, urllib.request
try:
    with urllib.request.urlopen(os.environ["API_URL"] + "/visits", timeout=2) as r:
        print("ticker: %d visits" % json.load(r)["visits"], flush=True)
except OSError as e:
    print("ticker: api unreachable: %s" % e, file=sys.stderr, flush=True)
'
	sleep "${EVERY:-5}"
done
