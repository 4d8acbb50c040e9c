#!/bin/sh
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
# The main job end to end on bundled defaults: the server is down, logs
# come in and are stored, the server comes up, the spool is replayed and
# echopost exits cleanly. Run by "make demo".
set -eu

: "${ECHOPOST:=src/echopost}" "${ECHOPOST_SEND:=tests/echopost-send}"
: "${PYTHON3:=/usr/bin/python3}"
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/echopost-demo.XXXXXX)
# DIR as the SDK lays it out: <datanadhi_dir>/echopost.
dir=$work/.datanadhi/echopost
server_pid= agent_pid=
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

control() {	# control PATH [JSON]: talk to the test server's control port
	"$PYTHON3" - "$control_port" "$@" <<'PY'
import json, sys, urllib.request
port, path = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
with urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, path), data) as r:
    body = json.load(r)
if path.startswith("/requests"):
    for i, req in enumerate(body):
        print("  %3d  %s %s  key=%s  %s" % (i + 1, req["method"], req["path"],
              req["headers"].get("datanadhi-api-key"), req["body"]))
PY
}

step() { printf '\n== %s\n' "$*"; }

step "test server starts DOWN"
"$PYTHON3" "$here/fakeserver.py" --state down --port-file "$work/port" \
    >/dev/null &
server_pid=$!
while [ ! -s "$work/port" ]; do sleep 0.05; done
port=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$work/port")
control_port=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["control_port"])' "$work/port")
echo "server http://127.0.0.1:$port is refusing connections"

step "echopost starts (events on stdout, one JSON line each)"
"$ECHOPOST" -datanadhi "$dir" -api-key demo-key \
    -health-url "http://127.0.0.1:$port" --health-interval 200ms &
agent_pid=$!
while [ ! -S "$dir/data-nadhi-agent.sock" ]; do sleep 0.05; done

step "SDK-like clients send 20 logs, a new connection for each"
"$ECHOPOST_SEND" -t 4 -n 5 -p demo-pipeline "$dir/data-nadhi-agent.sock"
sleep 0.3
echo "files in $dir:"; ls -1 "$dir" | sed 's/^/  /'

step "the server comes UP"
control /config '{"state": "up"}' >/dev/null
status=0
wait "$agent_pid" || status=$?
agent_pid=
echo "echopost exited with status $status"

step "what the server received"
control "/requests?path=/log"
echo "files left in $dir:"; ls -1 "$dir" | sed 's/^/  /'
exit "$status"
