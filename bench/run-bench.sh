#!/bin/bash
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# run-bench.sh: EchoPost's benchmark; "make bench" runs it.
#
# Every figure is measured beside its baseline from the same run:
#	ingest		echopost vs bare-server (C-core answering without
#			reading: the ceiling), and noop-server (echopost's
#			listener, no spool) vs the same
#	replay		echopost vs wrk with 8 connections (nginx), and vs
#			curl-baseline with 8 in flight (libcurl's own
#			ceiling), vs one request in flight (a server 20 ms
#			away); one in flight vs curl-baseline's keep-alive
#			POST loop
#	startup		echopost vs bare-server, empty and big spool
#	memory		echopost vs noop-server (ingest); alone (replay)
#	idle cost	echopost vs noop-server
#	recovery	echopost alone: the time from "server up" to the first
#			replayed record at the server
# It prints a table and writes the same rows, with every tool's own output,
# as JSON to $BENCH_RESULTS. Only loopback is used: UNIX sockets, and nginx
# on 127.0.0.1. Everything started here is stopped, and the temporary
# directory removed, however the script ends.
#
# Scale it with the environment (defaults in brackets):
#	BENCH_SECONDS [5]		length of each timed load run
#	BENCH_CALLERS [16]		concurrent callers of the ingest runs
#	BENCH_INGEST_ROUNDS [5]		rounds of each ingest case (medians)
#	BENCH_RECORDS [100000]		records of the replay runs to nginx
#	BENCH_REPLAY_ROUNDS [3]		rounds of the replay runs (medians)
#	BENCH_DELAY_MS [20]		answer delay of the far server
#	BENCH_FAR_RECORDS [4000]	records replayed to it, adaptive
#	BENCH_FAR_ONE_RECORDS [200]	and one request at a time
#	BENCH_BIG_RECORDS [1000000]	records of the big spool (startup,
#					memory); 0 skips it
#	BENCH_SIZE [300]		bytes of json_data per log
#	BENCH_STARTUP_RUNS [5]		starts measured per case (median)
#	BENCH_IDLE_SECONDS [10]		length of the idle-cost window
#	BENCH_DOWN_SECONDS [10]		server down before the recovery
#					(plus a random 0-5 s)
#	BENCH_RECOVERY_RUNS [10]	recovery trials, side by side
#	BENCH_PRELOAD_CALLERS [32]	callers that fill a spool
#	BENCH_PHASES [ingest replay startup idle recovery]
#					the parts to run
#	BENCH_PIN [yes]			with two CPUs or more, HTTP servers
#					on the last CPU and their clients
#					on the first; "no" leaves them to
#					the scheduler

set -u

here=$(cd "$(dirname "$0")" && pwd)
ECHOPOST=${ECHOPOST:-$here/../src/echopost}
BENCH_BIN=${BENCH_BIN:-$here}
BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_BIN/results.json}
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_CALLERS=${BENCH_CALLERS:-16}
BENCH_RECORDS=${BENCH_RECORDS:-100000}
BENCH_BIG_RECORDS=${BENCH_BIG_RECORDS:-1000000}
BENCH_SIZE=${BENCH_SIZE:-300}
BENCH_STARTUP_RUNS=${BENCH_STARTUP_RUNS:-5}
BENCH_IDLE_SECONDS=${BENCH_IDLE_SECONDS:-10}
BENCH_DOWN_SECONDS=${BENCH_DOWN_SECONDS:-10}
BENCH_RECOVERY_RUNS=${BENCH_RECOVERY_RUNS:-10}
BENCH_PRELOAD_CALLERS=${BENCH_PRELOAD_CALLERS:-32}
BENCH_REPLAY_ROUNDS=${BENCH_REPLAY_ROUNDS:-3}
BENCH_INGEST_ROUNDS=${BENCH_INGEST_ROUNDS:-5}
BENCH_DELAY_MS=${BENCH_DELAY_MS:-20}
BENCH_FAR_RECORDS=${BENCH_FAR_RECORDS:-4000}
BENCH_FAR_ONE_RECORDS=${BENCH_FAR_ONE_RECORDS:-200}

LAUNCH=$BENCH_BIN/launch
LOADGEN=$BENCH_BIN/loadgen
NOOP=$BENCH_BIN/noop-server
BARE=$BENCH_BIN/bare-server
CURL_BASELINE=$BENCH_BIN/curl-baseline
SOCK=data-nadhi-agent.sock
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
PYTHON3=${PYTHON3:-/usr/bin/python3}
DELAY_SERVER=${DELAY_SERVER:-$here/delay-server.py}

# A replay and the HTTP server it feeds share one core in some runs and
# not in others, as the scheduler places them: on two CPUs the same binary
# replays 100 000 records at 37 000 a second apart and 23 000 together,
# with CPU time per record up by half. A benchmark that compares two builds
# then measures the scheduler. So each HTTP server gets the last CPU and
# each of its clients (echopost, curl-baseline, wrk) the first, as a
# server on another host would be.
SERVER_CPU=()
CLIENT_CPU=()
if [ "${BENCH_PIN:-yes}" = yes ] && [ "$(nproc)" -ge 2 ]; then
	SERVER_CPU=(taskset -c "$(($(nproc) - 1))")
	CLIENT_CPU=(taskset -c 0)
fi

for tool in "$ECHOPOST" "$LAUNCH" "$LOADGEN" "$NOOP" "$BARE" \
    "$CURL_BASELINE"; do
	[ -x "$tool" ] || { echo "run-bench: $tool is missing" >&2; exit 1; }
done
[ -x "$NGINX" ] || { echo "run-bench: no nginx; apt-get install" \
    "nginx-light" >&2; exit 1; }

# A short path: the socket path must fit in sun_path.
tmp=$(mktemp -d /tmp/epbench.XXXXXX) || exit 1
mkdir "$tmp/pids" "$tmp/raw"

# Stop what we started, by pid: the recovery trials and foreground tools
# first (a trial would start nginx again), then launch processes (each
# stops its child), any child left behind, and the nginx masters.
cleanup() {
	local f pid i
	trap - EXIT INT TERM
	for f in "$tmp"/pids/trial.* "$tmp"/pids/run.* \
	    "$tmp"/pids/delay-server; do
		[ -s "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
	done
	for f in "$tmp"/pids/launch.*; do
		[ -s "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
	done
	for f in "$tmp"/pids/nginx.*; do
		[ -s "$f" ] && kill -QUIT "$(cat "$f")" 2>/dev/null
	done
	for i in $(seq 1 50); do
		pid=
		for f in "$tmp"/pids/*; do
			[ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null &&
			    pid=$(cat "$f")
		done
		[ -z "$pid" ] && break
		sleep 0.1
	done
	for f in "$tmp"/pids/*; do
		[ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "run-bench: interrupted" >&2; exit 130' INT TERM

say() {
	printf '%s %s\n' "$(date +%T)" "$*" >&2
}

# Run a tool in the background and wait for it: bash takes a signal at
# once during wait(1), but only after a foreground command has ended.
run() {
	local pid status
	"$@" &
	pid=$!
	echo "$pid" > "$tmp/pids/run.$pid"
	wait "$pid"
	status=$?
	rm -f "$tmp/pids/run.$pid"
	return "$status"
}

# The value of key in a flat JSON object file: jget file key
jget() {
	sed -n 's/.*"'"$2"'": *\([^,}]*\).*/\1/p' "$1" | head -n 1
}

calc() {
	awk "BEGIN { printf \"%.${2:-1}f\", $1 }"
}

now() {
	date +%s.%N
}

# The median, and the largest, of the numbers on stdin: "median max".
median_max() {
	sort -g | awk '{ v[NR] = $1 } END {
	    if (NR == 0) { print "-1 -1"; exit }
	    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	    printf "%.3f %.3f\n", m, v[NR] }'
}

wait_for() {	# wait_for seconds test...
	local limit=$1 i
	shift
	for i in $(seq 1 $((limit * 100))); do
		"$@" && return 0
		sleep 0.01
	done
	return 1
}

listening() {
	[ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
}

# PORT: a loopback port nobody listens on, not handed out before in this
# run. (Not in a subshell: it must remember what it gave.)
used_ports=" "
free_port() {
	local i
	for i in $(seq 1 200); do
		PORT=$((20000 + RANDOM % 30000))
		case $used_ports in *" $PORT "*) continue ;; esac
		if ! listening "$PORT"; then
			used_ports="$used_ports$PORT "
			return 0
		fi
	done
	echo "run-bench: no free port" >&2
	exit 1
}

# Health checks of a server that is down go here: nothing listens.
free_port
DOWN_URL=http://127.0.0.1:$PORT

# launch_bg name [launch options] -- command...: runs launch in the
# background, its report in raw/name.json; sets LAUNCHED to its pid.
launch_bg() {
	local name=$1
	shift
	"$LAUNCH" -p "$tmp/pids/child.$name" -l "$tmp/raw/$name.log" "$@" \
	    > "$tmp/raw/$name.json" &
	LAUNCHED=$!
	echo "$LAUNCHED" > "$tmp/pids/launch.$name"
}

# launch_wait name: wait for a launch_bg to end.
launch_wait() {
	wait "$(cat "$tmp/pids/launch.$1")"
	rm -f "$tmp/pids/launch.$1" "$tmp/pids/child.$1"
}

# launch_stop name: have launch stop its child now, and wait.
launch_stop() {
	kill -TERM "$(cat "$tmp/pids/launch.$1")" 2>/dev/null
	launch_wait "$1"
}

# serve name dir|socket kind [url]: echopost or noop-server (in dir), or
# the bare server (on socket), serving.
serve() {
	local name=$1 where=$2 kind=$3 url=${4:-$DOWN_URL} sock
	case $kind in
	echopost)
		sock=$where/$SOCK
		launch_bg "$name" -q -s "$sock" -T 900 -- "$ECHOPOST" \
		    -datanadhi "$where" -health-url "$url" --log-level warn ;;
	noop)
		sock=$where/$SOCK
		mkdir -p "$where"
		launch_bg "$name" -q -s "$sock" -T 900 -- "$NOOP" "$where" ;;
	bare)
		sock=$where
		launch_bg "$name" -q -s "$sock" -T 900 -- "$BARE" "$sock" ;;
	esac
	wait_for 10 test -S "$sock" ||
	    { echo "run-bench: $name did not start" >&2; exit 1; }
}

# nginx_start name port [access]: nginx on 127.0.0.1:port answering 200
# to everything, its access log with $msec only when asked for.
nginx_start() {
	local name=$1 port=$2 prefix=$tmp/nginx.$1 log="access_log off;"
	mkdir -p "$prefix"
	[ "${3:-}" = access ] && log="log_format t
	    '\$msec \$request_method \$uri \$status';
	    access_log $prefix/access.log t;"
	cat > "$prefix/nginx.conf" <<EOF
daemon on;
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 1024; }
http {
	$log
	keepalive_requests 10000000;
	keepalive_timeout 300s;
	server {
		listen 127.0.0.1:$port;
		location = /log { return 200; }
		location / { return 200; }
	}
}
EOF
	touch "$prefix/access.log"
	"${SERVER_CPU[@]}" "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" \
	    -e "$prefix/error.log" ||
	    { echo "run-bench: nginx did not start" >&2; exit 1; }
	cp "$prefix/nginx.pid" "$tmp/pids/nginx.$name"
}

nginx_stop() {
	local f=$tmp/pids/nginx.$1 pid
	[ -s "$f" ] || return 0
	pid=$(cat "$f")
	kill -QUIT "$pid" 2>/dev/null
	wait_for 10 eval "! kill -0 $pid 2>/dev/null"
	rm -f "$f"
}

# Delivered records, counted in every session's success log of dir.
delivered() {
	cat "$1"/session-*/agent-success.log 2>/dev/null | wc -l
}

# Only the journal that takes appends is left: the closed ones are sealed.
sealed_all() {
	[ "$(find "$1" -maxdepth 1 -name 'echopost.spool.journal.[0-9]*' |
	    wc -l)" -le 1 ]
}

# preload name dir count: fill dir's spool with count logs, server down,
# and let echopost seal them, as it does in a quiet moment of a long
# outage. Leaves raw/name.loadgen.json (the durable ingest rate) and
# raw/name.json (echopost's memory while it took them).
preload() {
	local name=$1 dir=$2 count=$3
	serve "$name" "$dir" echopost
	run timeout 1800 "$LOADGEN" -c "$BENCH_PRELOAD_CALLERS" -n "$count" \
	    -s "$BENCH_SIZE" "$dir/$SOCK" > "$tmp/raw/$name.loadgen.json"
	wait_for 600 sealed_all "$dir" ||
	    say "preload: WARNING: $name left closed journals unsealed"
	launch_stop "$name"
	[ "$(jget "$tmp/raw/$name.loadgen.json" stored)" = "$count" ] || {
		echo "run-bench: preload stored fewer than $count" >&2
		exit 1
	}
}

# --- the rows of the result ------------------------------------------

rows=()
# row metric unit echopost baseline target-op target: one line of the
# table; the ratio is echopost/baseline, the target is checked on the
# value named by target-op: "ratio>=", "value<=" or "-".
row() {
	local metric=$1 unit=$2 value=$3 base=$4 op=$5 target=$6 ratio=- \
	    holds=-
	if [ "$base" != - ] && awk "BEGIN { exit !($base > 0) }"; then
		ratio=$(calc "$value / $base" 3)
	fi
	case $op in
	ratio\>=) [ "$ratio" != - ] && holds=$(awk "BEGIN { print \
	    ($ratio >= $target) ? \"yes\" : \"NO\" }") ;;
	ratio\<=) [ "$ratio" != - ] && holds=$(awk "BEGIN { print \
	    ($ratio <= $target) ? \"yes\" : \"NO\" }") ;;
	value\<=) holds=$(awk "BEGIN { print ($value >= 0 && \
	    $value <= $target) ? \"yes\" : \"NO\" }") ;;
	esac
	rows+=("$metric|$unit|$value|$base|$ratio|$op|$target|$holds")
}

# --- 1. ingest --------------------------------------------------------
#
# Each case runs BENCH_INGEST_ROUNDS rounds; a round runs the same load
# against the bare server (the ceiling: C-core answering without reading),
# noop-server (echopost's listener without the spool) and echopost, one
# after the other, so that all three see the machine as it is then. The
# rows are medians over the rounds.

# ingest_case name mode callers size: the rounds of one case.
ingest_case() {
	local name=$1 mode=$2 callers=$3 size=$4 round kind run where sock
	for round in $(seq 1 "$BENCH_INGEST_ROUNDS"); do
		for kind in bare noop echopost; do
			run=ingest-$name-$kind-$round
			if [ "$kind" != bare ]; then
				where=$tmp/$run
				sock=$where/$SOCK
			else
				where=$tmp/$run.sock
				sock=$where
			fi
			say "ingest: $name, round $round, $kind"
			serve "$run" "$where" "$kind"
			run timeout $((BENCH_SECONDS + 60)) "$LOADGEN" \
			    -c "$callers" -d "$BENCH_SECONDS" -m "$mode" \
			    -s "$size" "$sock" > "$tmp/raw/$run.loadgen.json"
			launch_stop "$run"
			rm -rf "$tmp/$run"
		done
	done
}

ingest() {
	ingest_case persistent persistent "$BENCH_CALLERS" "$BENCH_SIZE"
	ingest_case persistent-64 persistent 64 "$BENCH_SIZE"
	ingest_case persistent-2k persistent "$BENCH_CALLERS" 2048
	ingest_case new new "$BENCH_CALLERS" "$BENCH_SIZE"
}

# median_of name kind what: the median over the rounds of a figure, what
# being a loadgen key or "cpu" (server CPU per call, in us).
median_of() {
	local r=$tmp/raw/ingest-$1-$2 i
	for i in $(seq 1 "$BENCH_INGEST_ROUNDS"); do
		if [ "$3" = cpu ]; then
			printf '%s\n' "$(cpu_per_call "$r-$i")"
		else
			jget "$r-$i.loadgen.json" "$3"
		fi
	done | median_max | cut -d' ' -f1
}

ingest_rows() {
	local name=$1 label=$2 k
	row "ingest $label: calls/s, vs bare server" 1/s \
	    "$(median_of "$name" echopost calls_per_s)" \
	    "$(median_of "$name" bare calls_per_s)" "ratio>=" "$3"
	row "ingest $label: listener only, vs bare server" 1/s \
	    "$(median_of "$name" noop calls_per_s)" \
	    "$(median_of "$name" bare calls_per_s)" - -
	row "ingest $label: server CPU per call, vs bare" us \
	    "$(median_of "$name" echopost cpu)" \
	    "$(median_of "$name" bare cpu)" "ratio<=" 2
	for k in p50 p99; do
		row "ingest $label: $k latency, vs bare" us \
		    "$(median_of "$name" echopost ${k}_us)" \
		    "$(median_of "$name" bare ${k}_us)" \
		    "$([ $k = p99 ] && echo "value<=" || echo -)" \
		    "$([ $k = p99 ] && echo 2000 || echo -)"
	done
	row "ingest $label: peak RSS" MiB \
	    "$(rss_mib "$tmp/raw/ingest-$name-echopost-1.json")" \
	    "$(rss_mib "$tmp/raw/ingest-$name-noop-1.json")" "value<=" 24
}

all_ingest_rows() {
	ingest_rows persistent "$BENCH_CALLERS callers, persistent" 0.8
	ingest_rows persistent-64 "64 callers, persistent" 0.8
	ingest_rows persistent-2k "$BENCH_CALLERS callers, 2 KB logs" 0.8
	ingest_rows new "$BENCH_CALLERS callers, new channels" 0.9
}

# Server CPU from ready to stop, per call made in that time.
cpu_per_call() {
	calc "$(jget "$1.json" window_cpu_s) * 1e6 / \
	    ($(jget "$1.loadgen.json" made) + 1)" 1
}

rss_mib() {
	calc "$(jget "$1" maxrss_kib) / 1024" 1
}

# --- 2. replay --------------------------------------------------------
#
# Each round drains copies of one preloaded spool with echopost --replay-
# only, adaptive (the default) and one request at a time, and runs the
# baselines on the same server in between: curl-baseline (a keep-alive
# POST loop, as echopost was before) and wrk with 1 and with 8
# connections. Then the same against a server 20 ms away (delay-server.py,
# smaller spools), where wrk with 16 connections shows that server is not
# the limit. The rows are medians over the rounds.

# drain name spool-dir count url [option...]: echopost --replay-only on a
# copy of the spool; raw/name.rate.json has its records per second.
drain() {
	local name=$1 spool=$2 count=$3 url=$4 dir=$tmp/$1 sent
	shift 4
	cp -a "$spool" "$dir"
	launch_bg "$name" -T 900 -- "${CLIENT_CPU[@]}" "$ECHOPOST" \
	    --replay-only \
	    -datanadhi "$dir" -health-url "$url" --log-level warn "$@"
	launch_wait "$name"
	sent=$(delivered "$dir")
	[ "$sent" -eq "$count" ] ||
	    say "replay: WARNING: $name delivered $sent of $count"
	printf '{"records_per_s": %s}\n' "$(calc "$count * 1000 / \
	    $(jget "$tmp/raw/$name.json" exit_ms)" 1)" \
	    > "$tmp/raw/$name.rate.json"
	rm -rf "$dir"
}

# wrk_rate name connections url: wrk POSTs bodies of BENCH_SIZE bytes for
# BENCH_SECONDS; raw/name.rate.json has its requests per second.
wrk_rate() {
	local name=$1 connections=$2 url=$3 threads=1
	[ "$connections" -gt 1 ] && threads=2
	run "${CLIENT_CPU[@]}" "$WRK" -t "$threads" -c "$connections" \
	    -d "${BENCH_SECONDS}s" \
	    -s "$tmp/post.lua" "$url" > "$tmp/raw/$name.txt"
	printf '{"records_per_s": %s}\n' "$(sed -n \
	    's/^Requests\/sec: *//p' "$tmp/raw/$name.txt")" \
	    > "$tmp/raw/$name.rate.json"
}

# curl_rate name connections url: curl-baseline POSTs BENCH_RECORDS
# bodies with that many in flight; raw/name.rate.json has its rate.
curl_rate() {
	local name=$1 connections=$2 url=$3
	run timeout 900 "${CLIENT_CPU[@]}" "$CURL_BASELINE" -c "$connections" \
	    -n "$BENCH_RECORDS" -s "$BENCH_SIZE" "$url" \
	    > "$tmp/raw/$name.json"
	printf '{"records_per_s": %s}\n' "$(jget "$tmp/raw/$name.json" \
	    records_per_s)" > "$tmp/raw/$name.rate.json"
}

# The median over the rounds of the rates in raw/name-N.rate.json.
median_rate() {
	local i
	for i in $(seq 1 "$BENCH_REPLAY_ROUNDS"); do
		jget "$tmp/raw/$1-$i.rate.json" records_per_s
	done | median_max | cut -d' ' -f1
}

# The body echopost sends for a log of BENCH_SIZE bytes, for wrk.
post_script() {
	printf 'wrk.method = "POST"\n'
	printf 'wrk.headers["Content-Type"] = "application/json"\n'
	printf 'wrk.body = %s .. string.rep("x", %d) .. %s\n' \
	    "'{\"pipelines\":[\"bench\"],\"log_data\":{\"message\":\"'" \
	    "$((BENCH_SIZE - 15))" "'\"}}'"
}

delay_server_start() {
	"${SERVER_CPU[@]}" "$PYTHON3" "$DELAY_SERVER" "$1" "$BENCH_DELAY_MS" &
	echo "$!" > "$tmp/pids/delay-server"
	wait_for 10 listening "$1" ||
	    { echo "run-bench: delay-server did not start" >&2; exit 1; }
}

delay_server_stop() {
	local pid
	pid=$(cat "$tmp/pids/delay-server")
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$tmp/pids/delay-server"
}

replay_round() {
	local i=$1 near=http://127.0.0.1:$2 far=http://127.0.0.1:$3
	say "replay: round $i, nginx on loopback"
	drain "replay-$i" "$tmp/spool-near" "$BENCH_RECORDS" "$near"
	drain "replay-one-$i" "$tmp/spool-near" "$BENCH_RECORDS" "$near" \
	    --replay-concurrency 1
	curl_rate "replay-curl-$i" 1 "$near/log"
	curl_rate "replay-curl8-$i" 8 "$near/log"
	wrk_rate "replay-wrk1-$i" 1 "$near/log"
	wrk_rate "replay-wrk8-$i" 8 "$near/log"
	say "replay: round $i, a server $BENCH_DELAY_MS ms away"
	drain "far-$i" "$tmp/spool-far" "$BENCH_FAR_RECORDS" "$far"
	drain "far-one-$i" "$tmp/spool-far-one" "$BENCH_FAR_ONE_RECORDS" \
	    "$far" --replay-concurrency 1
	wrk_rate "far-wrk1-$i" 1 "$far/log"
	wrk_rate "far-wrk8-$i" 8 "$far/log"
	wrk_rate "far-wrk16-$i" 16 "$far/log"
}

replay() {
	local near far i
	command -v "$WRK" > /dev/null ||
	    { echo "run-bench: no wrk; apt-get install wrk" >&2; exit 1; }
	post_script > "$tmp/post.lua"
	say "replay: preloading $BENCH_RECORDS, $BENCH_FAR_RECORDS and" \
	    "$BENCH_FAR_ONE_RECORDS records"
	preload preload-replay "$tmp/spool-near" "$BENCH_RECORDS"
	preload preload-far "$tmp/spool-far" "$BENCH_FAR_RECORDS"
	preload preload-far-one "$tmp/spool-far-one" "$BENCH_FAR_ONE_RECORDS"
	free_port
	near=$PORT
	nginx_start replay "$near"
	free_port
	far=$PORT
	delay_server_start "$far"
	for i in $(seq 1 "$BENCH_REPLAY_ROUNDS"); do
		replay_round "$i" "$near" "$far"
	done
	delay_server_stop
	nginx_stop replay
	rm -rf "$tmp/spool-near" "$tmp/spool-far" "$tmp/spool-far-one"
}

replay_rows() {
	local r=$tmp/raw n=$BENCH_RECORDS d=$BENCH_DELAY_MS
	row "durable ingest ($BENCH_PRELOAD_CALLERS callers, preload)" 1/s \
	    "$(jget "$r/preload-replay.loadgen.json" calls_per_s)" - - -
	row "replay $n to nginx: vs wrk -c 8" 1/s "$(median_rate replay)" \
	    "$(median_rate replay-wrk8)" "ratio>=" 0.5
	row "replay $n to nginx: one in flight, vs curl loop" 1/s \
	    "$(median_rate replay-one)" "$(median_rate replay-curl)" \
	    "ratio>=" 0.9
	row "replay $n to nginx: vs libcurl alone, 8 in flight" 1/s \
	    "$(median_rate replay)" "$(median_rate replay-curl8)" - -
	row "nginx: libcurl alone, 8 in flight, vs wrk -c 8" 1/s \
	    "$(median_rate replay-curl8)" "$(median_rate replay-wrk8)" - -
	row "nginx: wrk -c 1, vs wrk -c 8" 1/s "$(median_rate replay-wrk1)" \
	    "$(median_rate replay-wrk8)" - -
	row "replay $BENCH_FAR_RECORDS, $d ms away: vs one in flight" 1/s \
	    "$(median_rate far)" "$(median_rate far-one)" "ratio>=" 8
	row "replay, $d ms away: vs wrk -c 8" 1/s "$(median_rate far)" \
	    "$(median_rate far-wrk8)" - -
	row "replay, $d ms away: one in flight, vs wrk -c 1" 1/s \
	    "$(median_rate far-one)" "$(median_rate far-wrk1)" - -
	row "delay server: wrk -c 16, vs 16 / $d ms" 1/s \
	    "$(median_rate far-wrk16)" "$(calc "16000 / $d")" "ratio>=" 0.9
	row "replay $n: CPU per record, vs curl loop" us \
	    "$(calc "($(jget "$r/replay-1.json" user_s) + \
	    $(jget "$r/replay-1.json" sys_s)) * 1e6 / $n")" \
	    "$(calc "($(jget "$r/replay-curl-1.json" user_s) + \
	    $(jget "$r/replay-curl-1.json" sys_s)) * 1e6 / $n")" - -
	row "replay $n: peak RSS" MiB "$(rss_mib "$r/replay-1.json")" - \
	    "value<=" 24
}

# --- 3. startup (and 4. memory of the big spool) ------------------------

# starts case kind dir-or-socket-base: BENCH_STARTUP_RUNS starts, each
# stopped at its first stored call; the median and the worst ready_ms.
starts() {
	local case=$1 kind=$2 where=$3 i name
	for i in $(seq 1 "$BENCH_STARTUP_RUNS"); do
		name=start-$case-$i
		if [ "$kind" = echopost ]; then
			[ "$case" = echopost-empty ] && where=$tmp/$name
			launch_bg "$name" -e -s "$where/$SOCK" -T 120 -- \
			    "$ECHOPOST" -datanadhi "$where" -health-url \
			    "$DOWN_URL" --log-level warn
		else
			launch_bg "$name" -e -s "$tmp/$name.sock" -T 120 -- \
			    "$BARE" "$tmp/$name.sock"
		fi
		launch_wait "$name"
		jget "$tmp/raw/$name.json" ready_ms >> "$tmp/raw/start-$case.ms"
		jget "$tmp/raw/$name.json" socket_ms \
		    >> "$tmp/raw/start-$case.socket-ms"
		[ "$case" = echopost-empty ] && rm -rf "$tmp/$name"
	done
}

startup() {
	say "startup: empty spool, $BENCH_STARTUP_RUNS starts each"
	starts bare bare -
	starts echopost-empty echopost -
}

big() {
	local dir=$tmp/big port before
	[ "$BENCH_BIG_RECORDS" -gt 0 ] || return 0
	say "big spool: preloading $BENCH_BIG_RECORDS records"
	preload preload-big "$dir" "$BENCH_BIG_RECORDS"
	du -ck "$dir"/echopost.spool.* | tail -n 1 | cut -f1 \
	    > "$tmp/raw/big-spool.kib"
	say "startup: $BENCH_BIG_RECORDS records spooled"
	starts echopost-big echopost "$dir"
	free_port
	port=$PORT
	nginx_start big "$port"
	before=$(delivered "$dir")
	say "big spool: replay for ${BENCH_SECONDS}s"
	launch_bg big-replay -q -s "$dir/$SOCK" -t "$BENCH_SECONDS" -T 120 \
	    -- "${CLIENT_CPU[@]}" "$ECHOPOST" -datanadhi "$dir" -health-url \
	    "http://127.0.0.1:$port" --log-level warn
	launch_wait big-replay
	echo $(($(delivered "$dir") - before)) > "$tmp/raw/big-replay.sent"
	nginx_stop big
	say "startup: after a SIGKILL, $BENCH_BIG_RECORDS records spooled"
	launch_bg big-kill -q -s "$dir/$SOCK" -t 0.5 -g 9 -T 120 -- \
	    "$ECHOPOST" -datanadhi "$dir" -health-url "$DOWN_URL"
	launch_wait big-kill
	# As the SDK does before it starts echopost.
	rm -f "$dir/$SOCK"
	launch_bg big-crash-start -e -s "$dir/$SOCK" -T 300 -- "$ECHOPOST" \
	    -datanadhi "$dir" -health-url "$DOWN_URL" --log-level warn
	launch_wait big-crash-start
	rm -rf "$dir"
}

# From ready to stop, or to exit if it ended on its own (drained).
replay_ms() {
	local end
	end=$(jget "$1" stop_ms)
	awk "BEGIN { exit !($end < 0) }" && end=$(jget "$1" exit_ms)
	calc "$end - $(jget "$1" ready_ms)" 3
}

startup_rows() {
	local r=$tmp/raw bare mm
	bare=$(median_max < "$r/start-bare.ms")
	mm=$(median_max < "$r/start-echopost-empty.ms")
	row "startup, empty spool: first call (median), vs bare" ms \
	    "${mm% *}" "${bare% *}" "ratio<=" 1.3
	row "startup, empty spool: first call (worst), vs bare" ms \
	    "${mm#* }" "${bare#* }" - -
	bare=$(median_max < "$r/start-bare.socket-ms")
	mm=$(median_max < "$r/start-echopost-empty.socket-ms")
	row "startup, empty spool: socket appears (median)" ms "${mm% *}" \
	    "${bare% *}" - -
	bare=$(median_max < "$r/start-bare.ms")
	[ "$BENCH_BIG_RECORDS" -gt 0 ] || return 0
	mm=$(median_max < "$r/start-echopost-big.ms")
	row "startup, $BENCH_BIG_RECORDS spooled: first call (median)" ms \
	    "${mm% *}" "${bare% *}" "value<=" 50
	row "startup, $BENCH_BIG_RECORDS spooled: first call (worst)" ms \
	    "${mm#* }" "${bare#* }" "value<=" 50
	mm=$(median_max < "$r/start-echopost-big.socket-ms")
	row "startup, $BENCH_BIG_RECORDS spooled: socket appears (median)" \
	    ms "${mm% *}" "$(median_max < "$r/start-bare.socket-ms" | \
	    cut -d' ' -f1)" - -
	row "startup after SIGKILL, $BENCH_BIG_RECORDS spooled: socket" ms \
	    "$(jget "$r/big-crash-start.json" socket_ms)" - "value<=" 2000
	row "startup after SIGKILL, $BENCH_BIG_RECORDS spooled: first call" \
	    ms "$(jget "$r/big-crash-start.json" ready_ms)" "${bare% *}" \
	    "value<=" 50
	row "durable ingest ($BENCH_PRELOAD_CALLERS callers, big preload)" \
	    1/s "$(jget "$r/preload-big.loadgen.json" calls_per_s)" - - -
	row "big preload: time" s \
	    "$(jget "$r/preload-big.loadgen.json" seconds)" - - -
	row "big preload: spool file" MiB \
	    "$(calc "$(cat "$r/big-spool.kib") / 1024" 0)" - - -
	row "ingest of $BENCH_BIG_RECORDS (preload): peak RSS" MiB \
	    "$(rss_mib "$r/preload-big.json")" - "value<=" 24
	row "restart after SIGKILL, $BENCH_BIG_RECORDS spooled: peak RSS" \
	    MiB "$(rss_mib "$r/big-crash-start.json")" - "value<=" 24
	row "replay from $BENCH_BIG_RECORDS: records/s (${BENCH_SECONDS}s)" \
	    1/s "$(calc "$(cat "$r/big-replay.sent") * 1000 / \
	    $(replay_ms "$r/big-replay.json")")" - - -
	row "replay from $BENCH_BIG_RECORDS: peak RSS" MiB \
	    "$(rss_mib "$r/big-replay.json")" - "value<=" 24
}

# --- 5. idle cost ---------------------------------------------------

idle() {
	say "idle: ${BENCH_IDLE_SECONDS}s, server down, no logs (both at once)"
	launch_bg idle-echopost -q -s "$tmp/idle/$SOCK" \
	    -t "$BENCH_IDLE_SECONDS" -T 120 -- "$ECHOPOST" -datanadhi \
	    "$tmp/idle" -health-url "$DOWN_URL" --log-level warn
	mkdir -p "$tmp/idle-noop"
	launch_bg idle-noop -q -s "$tmp/idle-noop/$SOCK" \
	    -t "$BENCH_IDLE_SECONDS" -T 120 -- "$NOOP" "$tmp/idle-noop"
	launch_wait idle-echopost
	launch_wait idle-noop
	rm -rf "$tmp/idle" "$tmp/idle-noop"
}

idle_share() {
	calc "100 * $(jget "$1" window_cpu_s) / $(jget "$1" window_s)" 3
}

idle_rows() {
	local e=$tmp/raw/idle-echopost.json n=$tmp/raw/idle-noop.json
	row "idle, server down: CPU" % "$(idle_share "$e")" \
	    "$(idle_share "$n")" "value<=" 0.5
	row "idle, server down: context switches/s" 1/s \
	    "$(calc "$(jget "$e" window_switches) / $(jget "$e" window_s)")" \
	    "$(calc "$(jget "$n" window_switches) / $(jget "$n" window_s)")" \
	    - -
}

# --- 6. recovery latency --------------------------------------------

# One trial: echopost with default options and 10 logs, the server down
# for down seconds, then nginx comes up on its port; the time from then
# to the first POST /log in nginx's access log ($msec).
recovery_trial() {
	local i=$1 port=$2 down=$3 dir=$tmp/recovery-$i up first log
	log=$tmp/nginx.recovery-$i/access.log
	serve "recovery-$i" "$dir" echopost "http://127.0.0.1:$port"
	run timeout 60 "$LOADGEN" -c 1 -n 10 "$dir/$SOCK" > /dev/null
	sleep "$down"
	nginx_start "recovery-$i" "$port" access
	up=$(now)
	wait_for 30 grep -q ' POST /log ' "$log"
	first=$(awk '$2 == "POST" { print $1; exit }' "$log")
	launch_wait "recovery-$i"
	nginx_stop "recovery-$i"
	if [ -n "$first" ]; then
		echo "$(calc "($first - $up) * 1000" 0)" \
		    > "$tmp/raw/recovery-$i.ms"
	fi
}

# The trials run side by side: they wait, mostly. Each one's server
# comes up BENCH_DOWN_SECONDS plus a random 0-5 s after its start, so
# that it meets echopost's backoff (capped at 2.5-5 s) at a random point
# of its cycle, as a real outage would.
recovery() {
	local i pids=() down
	say "recovery: $BENCH_RECOVERY_RUNS trials side by side, server" \
	    "down ${BENCH_DOWN_SECONDS}-$((BENCH_DOWN_SECONDS + 5))s, then up"
	for i in $(seq 1 "$BENCH_RECOVERY_RUNS"); do
		free_port
		down=$(calc "$BENCH_DOWN_SECONDS + $((RANDOM % 5000)) / 1000" 3)
		recovery_trial "$i" "$PORT" "$down" &
		pids+=($!)
		echo "$!" > "$tmp/pids/trial.$i"
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	rm -f "$tmp"/pids/trial.*
	printf '{"ms": [%s]}\n' "$(cat "$tmp"/raw/recovery-*.ms 2>/dev/null |
	    sort -n | paste -sd, -)" > "$tmp/raw/recovery-latencies.json"
}

recovery_rows() {
	local mm
	mm=$(cat "$tmp"/raw/recovery-*.ms 2>/dev/null | median_max)
	row "recovery: first replayed record (median)" ms "${mm% *}" - \
	    "value<=" 1500
	row "recovery: first replayed record (worst)" ms "${mm#* }" - \
	    "value<=" 1500
	row "recovery: trials within 1.5 s" % "$(cat "$tmp"/raw/recovery-*.ms \
	    2>/dev/null | awk '{ n++; if ($1 <= 1500) k++ }
	    END { printf "%.0f", n ? 100 * k / n : 0 }')" - - -
}

# --- output -----------------------------------------------------------

print_table() {
	local r metric unit value base ratio op target holds
	printf '\n%-52s %-4s %11s %11s %7s %-10s %s\n' metric unit echopost \
	    baseline ratio target holds
	printf '%.0s-' $(seq 1 104)
	printf '\n'
	for r in "${rows[@]}"; do
		IFS='|' read -r metric unit value base ratio op target holds \
		    <<< "$r"
		printf '%-52s %-4s %11s %11s %7s %-10s %s\n' "$metric" "$unit" \
		    "$value" "$base" "$ratio" "$(target_text "$r")" "$holds"
	done
	printf '\n'
}

target_text() {
	local op target
	op=$(cut -d'|' -f6 <<< "$1")
	target=$(cut -d'|' -f7 <<< "$1")
	case $op in
	ratio\>=) echo "ratio>=$target" ;;
	ratio\<=) echo "ratio<=$target" ;;
	value\<=) echo "<=$target" ;;
	*) echo - ;;
	esac
}

json_string() {
	printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

json_number() {
	case $1 in
	-|'') printf null ;;
	*) printf '%s' "$1" ;;
	esac
}

# CPU busy on the whole machine over one second, in %, before we start:
# other work on it skews every figure, so it is printed and kept.
busy_percent() {
	local before after
	before=$(head -n 1 /proc/stat)
	sleep 1
	after=$(head -n 1 /proc/stat)
	printf '%s\n%s\n' "$before" "$after" | awk '{
	    t = 0; for (i = 2; i <= NF; i++) t += $i
	    total[NR] = t; idle[NR] = $5 + $6 }
	    END { busy = (total[2] - total[1]) - (idle[2] - idle[1])
	    printf "%.0f\n", 100 * busy / (total[2] - total[1]) }'
}

# The commit measured; "+changes" when src/ differs from it.
commit() {
	local top
	top=$(cd "$(dirname "$ECHOPOST")/.." && pwd)
	git -C "$top" rev-parse --short HEAD 2>/dev/null ||
	    { echo unknown; return; }
	[ -n "$(git -C "$top" status --porcelain -- src 2>/dev/null)" ] &&
	    echo "+changes"
}

machine_json() {
	printf '{"busy_before_percent": %s, "nproc": %s, "cpu": %s, ' \
	    "$busy" "$(nproc)" "$(json_string "$(sed -n \
	    's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)")"
	printf '"kernel": %s, "debian": %s, ' "$(json_string "$(uname -r)")" \
	    "$(json_string "$(cat /etc/debian_version)")"
	printf '"commit": %s, ' "$(json_string "$(commit | paste -sd' ' -)")"
	printf '"grpc": %s, "libcurl": %s, "gdbm": %s, "nginx": %s}' \
	    "$(json_string "$(pkg-config --modversion grpc 2>/dev/null)")" \
	    "$(json_string "$(pkg-config --modversion libcurl 2>/dev/null)")" \
	    "$(json_string "$(dpkg-query -W -f '${Version}' libgdbm6 \
	    2>/dev/null)")" "$(json_string "$("$NGINX" -v 2>&1 | \
	    sed 's/.*nginx\///')")"
}

write_json() {
	local r metric unit value base ratio op target holds f sep=
	{
	printf '{\n"machine": %s,\n' "$(machine_json)"
	printf '"parameters": {"seconds": %s, "callers": %s, "records": %s, ' \
	    "$BENCH_SECONDS" "$BENCH_CALLERS" "$BENCH_RECORDS"
	printf '"big_records": %s, "size": %s, "startup_runs": %s, ' \
	    "$BENCH_BIG_RECORDS" "$BENCH_SIZE" "$BENCH_STARTUP_RUNS"
	printf '"idle_seconds": %s, "down_seconds": %s, ' \
	    "$BENCH_IDLE_SECONDS" "$BENCH_DOWN_SECONDS"
	printf '"recovery_runs": %s, "preload_callers": %s},\n' \
	    "$BENCH_RECOVERY_RUNS" "$BENCH_PRELOAD_CALLERS"
	printf '"rows": [\n'
	for r in "${rows[@]}"; do
		IFS='|' read -r metric unit value base ratio op target holds \
		    <<< "$r"
		printf '%s  {"metric": %s, "unit": %s, "echopost": %s, ' \
		    "$sep" "$(json_string "$metric")" "$(json_string "$unit")" \
		    "$(json_number "$value")"
		printf '"baseline": %s, "ratio": %s, "target": %s, ' \
		    "$(json_number "$base")" "$(json_number "$ratio")" \
		    "$(json_string "$(target_text "$r")")"
		printf '"holds": %s}' "$(case $holds in yes) echo true ;; \
		    NO) echo false ;; *) echo null ;; esac)"
		sep=$',\n'
	done
	printf '\n],\n"raw": {\n'
	sep=
	for f in "$tmp"/raw/*.json; do
		[ -s "$f" ] || continue
		printf '%s  %s: %s' "$sep" "$(json_string "$(basename "$f" \
		    .json)")" "$(head -n 1 "$f")"
		sep=$',\n'
	done
	printf '\n}\n}\n'
	} > "$BENCH_RESULTS.tmp" && mv "$BENCH_RESULTS.tmp" "$BENCH_RESULTS"
}

# The phases to run, all by default; the rows of those that ran.
BENCH_PHASES=${BENCH_PHASES:-ingest replay startup idle recovery}
phase() {
	case " $BENCH_PHASES " in *" $1 "*) return 0 ;; esac
	return 1
}

started=$(now)
say "run-bench: $ECHOPOST ($(commit | paste -sd' ' -)), temporary" \
    "files in $tmp"
if [ ${#CLIENT_CPU[@]} -gt 0 ]; then
	say "run-bench: HTTP servers on CPU $(($(nproc) - 1)), their" \
	    "clients on CPU 0 (BENCH_PIN=no: anywhere)"
fi
busy=$(busy_percent)
[ "$busy" -gt 10 ] && say "run-bench: WARNING: the machine is already" \
    "${busy}% busy; the figures will show it"
phase ingest && ingest
phase replay && replay
phase startup && { startup; big; }
phase idle && idle
phase recovery && recovery

phase ingest && all_ingest_rows
phase replay && replay_rows
phase startup && startup_rows
phase idle && idle_rows
phase recovery && recovery_rows
say "run-bench: done in $(calc "$(now) - $started" 0)s"
print_table
write_json
echo "JSON summary: $BENCH_RESULTS"
cat "$BENCH_RESULTS"
