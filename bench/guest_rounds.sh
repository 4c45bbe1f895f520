#!/bin/sh
# guest_rounds.sh ROUNDS REQUESTS [CONCURRENCY]: the nginx benchmark's rounds,
# run inside a guest (POSIX sh; busybox or Debian), for the guest rows of
# `syscap bench guest`, then (with BENCH_MICRO) the getppid micro rounds. The
# lab boots a guest holding nginx, ab and the tracers, runs this script and
# hands the console to bench.guest.from_console.
#
# Tracers come from the environment, one pair per key (baseline needs none):
#   BENCH_KEYS="baseline kmod bpf sysdig"      the rows, in order
#   BENCH_START_<key>="command"                starts it in the background (its
#                                              output redirected: the script waits
#                                              for the command's output to end) and
#                                              returns once it is attached
#   BENCH_STOP_<key>="command"                 stops it; the last line of its
#                                              output, if any, is the tracer's own
#                                              counts as name=value words (e.g.
#                                              "events=120 drops=0")
# A key whose start command fails is reported once as skipped, with its output,
# and skipped in both phases.
# Micro phase (optional):
#   BENCH_MICRO="command"                      prints ns per call on its last line
#                                              (e.g. "getppid_loop 1000000"); runs
#                                              on the last CPU, as nginx's worker
#   BENCH_MICRO_ROUNDS=N                       its rounds (default ROUNDS)
#   BENCH_MICRO_KEYS="key key..."              its rows (default BENCH_KEYS)
#   BENCH_MICRO_FIRST=N                        its rounds numbered from N + 1
#                                              (default 0): a later boot's rounds
#                                              follow an earlier boot's
#
# Output, one line per run or skip (everything else is ignored):
#   SYSCAP-BENCH RUN <round> <key> <requests/s>
#   SYSCAP-BENCH MICRO <round> <key> <ns per call>
#   SYSCAP-BENCH STAT nginx|micro <round> <key> <name>=<value>...
#   SYSCAP-BENCH FAIL nginx|micro <round> <key> <why>   (that run's value is nan)
#   SYSCAP-BENCH SKIP <key> <why>
#   SYSCAP-BENCH KERNEL <uname -r>
set -u
rounds=${1:?rounds}
requests=${2:?requests}
conc=${3:-50}
keys=${BENCH_KEYS:-baseline}
dir=$(mktemp -d /tmp/syscap-bench-guest.XXXXXX)
port=8080
cpus=$(nproc)
last=$((cpus - 1))

mkdir -p "$dir/www" "$dir/tmp"
printf '<html><body>syscap benchmark page</body></html>\n' > "$dir/www/index.html"
chmod -R a+rX "$dir"
cat > "$dir/nginx.conf" <<EOF
daemon on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    server { listen 127.0.0.1:$port; location / { root $dir/www; } }
}
EOF

pin() {	# pin CPU COMMAND...: on that CPU where there are several and taskset exists
	cpu=$1
	shift
	if [ "$cpus" -gt 1 ] && command -v taskset >/dev/null; then
		taskset -c "$cpu" "$@"
	else
		"$@"
	fi
}

stop_all() {
	[ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null
	rm -rf "$dir"
}
trap stop_all EXIT INT TERM

echo "SYSCAP-BENCH KERNEL $(uname -r)"
if ! nginx -p "$dir" -c "$dir/nginx.conf"; then
	for k in $keys; do echo "SYSCAP-BENCH SKIP $k nginx did not start"; done
	exit 1
fi
worker=$(pgrep -P "$(cat "$dir/nginx.pid")" | head -n 1)
[ "$cpus" -gt 1 ] && [ -n "$worker" ] && taskset -pc "$last" "$worker" >/dev/null

skipped=""

# A measure prints its value, or nothing and why into $dir/why.
nginx_once() {	# requests/s of one ab run; over 1 % failed or non-2xx: failed (as bench/nginx.py)
	pin 0 ab -q -r -s 30 -n "$requests" -c "$conc" "http://127.0.0.1:$port/" \
		>"$dir/ab.out" 2>"$dir/ab.err"
	awk -v n="$requests" -v why="$dir/why" '
		/^Requests per second/ { rps = $4 }
		/^Failed requests/ || /^Non-2xx responses/ { bad += $3 }
		END {
			if (rps == "") exit
			if (bad > n / 100) { print "ab: " bad " of " n " requests failed" > why; exit }
			print rps
		}' "$dir/ab.out"
	[ -s "$dir/why" ] || tail -n 1 "$dir/ab.err" >"$dir/why"
}

micro_once() {	# ns per call of one BENCH_MICRO run
	pin "$last" sh -c "$BENCH_MICRO" 2>"$dir/why" | tail -n 1
}

# phase PHASE ROUNDS MEASURE LABEL [KEYS FIRST]: ROUNDS rounds of every key
# (or of KEYS, numbered from FIRST + 1), the order rotated by one per round;
# MEASURE prints the value, LABEL names the line.
phase() {
	name=$1
	measure=$3
	label=$4
	order=${5:-$keys}
	r=${6:-0}
	n=$(($2 + r))
	while [ "$r" -lt "$n" ]; do
		r=$((r + 1))
		for k in $order; do
			case " $skipped " in *" $k "*) continue ;; esac
			start=$(eval "echo \"\${BENCH_START_$k:-}\"")
			stop=$(eval "echo \"\${BENCH_STOP_$k:-}\"")
			if [ "$k" != baseline ] && [ -z "$start" ]; then
				echo "SYSCAP-BENCH SKIP $k no BENCH_START_$k given"
				skipped="$skipped $k"
				continue
			fi
			if [ -n "$start" ] && ! out=$(sh -c "$start" 2>&1); then
				echo "SYSCAP-BENCH SKIP $k start failed: $(echo "$out" | tail -n 1)"
				skipped="$skipped $k"
				continue
			fi
			: >"$dir/why"
			value=$($measure)
			counts=""
			[ -n "$stop" ] && counts=$(sh -c "$stop" 2>/dev/null | tail -n 1)
			echo "SYSCAP-BENCH $label $r $k ${value:-nan}"
			[ -z "$value" ] && echo "SYSCAP-BENCH FAIL $name $r $k $(tail -n 1 "$dir/why")"
			[ -n "$counts" ] && echo "SYSCAP-BENCH STAT $name $r $k $counts"
		done
		# rotate the order by one for the next round
		set -- $order
		first=$1
		shift
		order="$* $first"
	done
}

phase nginx "$rounds" nginx_once RUN
if [ -n "${BENCH_MICRO:-}" ]; then
	phase micro "${BENCH_MICRO_ROUNDS:-$rounds}" micro_once MICRO \
		"${BENCH_MICRO_KEYS:-$keys}" "${BENCH_MICRO_FIRST:-0}"
fi
