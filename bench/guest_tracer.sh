#!/bin/sh
# guest_tracer.sh start|stop KEY: the tracers of the guest
# benchmark (bench/guest_boot.py), as bench/guest_rounds.sh's
# BENCH_START_<key> / BENCH_STOP_<key> commands. Runs in the bench guest, with
# the bench disk at /bench.
#
# start: the tracer in the background on CPU 0 (ab's CPU; nginx's worker and
#        the micro loop run on the last CPU), returns once it is attached,
#        fails with its last output line if it does not attach in 120 s.
#   kmod, bpf  /bench/guest_record --backend KEY: syscap recording every
#              process to /bench/work/KEY.trace; attached once it says
#              "recording to"
#   kmodmono   the same with the module's probes on the monotonic clock
#              (--clock monotonic: the module's own choice in this guest is
#              the TSC, which the kernel keeps its time with: tsc=reliable)
#   sysdig     sysdig -v -w /dev/null (its scap module, loaded at boot, only
#              registers its probes when sysdig opens /dev/scap*); attached
#              once it holds one /dev/scap* per CPU, plus a second for its
#              capture to start
#   kmodheld, bpfheld
#              the same as kmod and bpf with 128 MiB rings and the recorder
#              stopped (SIGSTOP) once attached, continued at stop: the
#              probes' cost alone, with no consumer taking turns with the
#              loop on TCG's one host thread (the rings hold a whole run:
#              drops show if not)
#   kmodcount, kmodsampled, bpfcount
#              /bench/syscap-agent stream (count mode; kmodsampled with
#              --sampled) of the module or eBPF, its blocks to /dev/null and
#              its stdin a FIFO held open; attached once the stream's header
#              is out (the agent writes it after attaching)
#   kmodfloor  insmod /bench/floor_kmod.ko: empty sys_enter/sys_exit probes,
#              the module's floor (bench/native/floor_kmod)
# stop:  SIGINT, wait for the tracer to end, print its own counters as
#        "events=N drops=N" (and the trace size for syscap) and the time it
#        ran between attaching and the SIGINT as "cpu_ms=N"; the trace is
#        then deleted. Every tracer's output goes to /tmp/bench-tracers.log.
set -u
action=${1:?start or stop}
key=${2:?kmod, kmodmono, bpf, kmodheld, bpfheld, sysdig, kmodcount, kmodsampled, bpfcount or kmodfloor}
state=/tmp/bench-tracer-$key
trace=/bench/work/$key.trace
cpus=$(nproc)

alive() {	# alive PID: running (a zombie counts as ended)
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)
	[ "$st" != Z ]
}

cpu_ms() {	# cpu_ms PID: the time PID's threads have run so far, in ms (the
	# scheduler's own sums: tick-sampled utime and stime overcharge a task
	# that wakes with the timer tick)
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
		awk '{ ns += $1 } END { if (NR) printf "%d\n", ns / 1000000 }'
}

scap_fds() {	# open /dev/scap* of PID
	n=0
	for fd in /proc/"$1"/fd/*; do
		case $(readlink "$fd" 2>/dev/null) in /dev/scap*) n=$((n + 1)) ;; esac
	done
	echo "$n"
}

case $action in
start)
	rm -f "$trace" "$state.log"
	case $key in
	kmod | bpf)
		taskset -c 0 /bench/guest_record --backend "$key" --names /bench/syscall_names \
			-o "$trace" >"$state.log" 2>&1 &
		;;
	kmodmono)
		taskset -c 0 /bench/guest_record --backend kmod --clock monotonic \
			--names /bench/syscall_names -o "$trace" >"$state.log" 2>&1 &
		;;
	kmodheld | bpfheld)
		taskset -c 0 /bench/guest_record --backend "${key%held}" --buffer-size 134217728 \
			--names /bench/syscall_names -o "$trace" >"$state.log" 2>&1 &
		;;
	sysdig)
		taskset -c 0 sysdig -v -w /dev/null >"$state.log" 2>&1 &
		;;
	kmodcount | kmodsampled | bpfcount)
		case $key in
		kmod*) backend=kmod ;;
		*) backend=bpf ;;
		esac
		sampled=""
		[ "$key" = kmodsampled ] && sampled=--sampled
		rm -f "$state.in" "$state.out"
		mkfifo "$state.in"
		# read-write: the FIFO never reports end of file to the agent
		taskset -c 0 /bench/syscap-agent stream --backend "$backend" $sampled \
			0<>"$state.in" >"$state.out" 2>"$state.log" &
		;;
	kmodfloor)
		insmod /bench/floor_kmod.ko >"$state.log" 2>&1 || {
			echo "kmodfloor: $(tail -n 1 "$state.log")"
			exit 1
		}
		exit 0
		;;
	*)
		echo "unknown tracer $key"
		exit 2
		;;
	esac
	pid=$!
	echo "$pid" >"$state.pid"
	i=0
	while [ "$i" -lt 1200 ]; do
		if ! alive "$pid"; then
			echo "$key ended: $(tail -n 1 "$state.log")"
			exit 1
		fi
		attached=""
		case $key in
		sysdig)
			if [ "$(scap_fds "$pid")" -ge "$cpus" ]; then
				sleep 1
				attached=1
			fi
			;;
		kmodcount | kmodsampled | bpfcount)
			[ -s "$state.out" ] && attached=1
			;;
		*)
			grep -q "recording to" "$state.log" && attached=1
			;;
		esac
		if [ -n "$attached" ]; then
			# what it ran to attach (a BPF load is seconds under TCG)
			# is no part of what it costs the measured run
			cpu_ms "$pid" >"$state.cpu"
			case $key in *held) kill -STOP "$pid" ;; esac
			exit 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "$key did not attach in 120 s: $(tail -n 1 "$state.log")"
	kill -9 "$pid"
	exit 1
	;;
stop)
	if [ "$key" = kmodfloor ]; then
		rmmod floor_kmod
		exit 0
	fi
	pid=$(cat "$state.pid")
	# the consumer's CPU time: under TCG every vCPU runs on one host thread,
	# so it comes out of the measured loop's time
	cpu=$(cpu_ms "$pid")
	cpu0=$(cat "$state.cpu" 2>/dev/null)
	[ -n "$cpu" ] && [ -n "$cpu0" ] && cpu=$((cpu - cpu0)) || cpu=""
	case $key in *held) kill -CONT "$pid" ;; esac
	kill -INT "$pid"
	i=0
	while alive "$pid" && [ "$i" -lt 1200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if alive "$pid"; then
		kill -9 "$pid"
		echo "$key did not stop in 120 s" >&2
	fi
	case $key in
	kmodcount | kmodsampled | bpfcount)
		rm -f "$state.in" "$state.out"
		echo "cpu_ms=${cpu:-nan}"
		;;
	sysdig)
		awk -F: -v cpu="${cpu:-nan}" '/^Driver Events:/ { e = $2 } /^Driver Drops:/ { d = $2 }
			END { if (e != "") print "events=" e " drops=" d " cpu_ms=" cpu }' "$state.log"
		;;
	*)
		size=$(stat -c %s "$trace" 2>/dev/null || echo 0)
		awk -v size="$size" -v cpu="${cpu:-nan}" '$2 == "events" {
			print "events=" $3 " drops=" $5 " proc_drops=" $9 " missed=" $11 \
				" max_fill_pct=" $15 " trace_bytes=" size " cpu_ms=" cpu }' "$state.log"
		;;
	esac
	{ echo "== $key"; cat "$state.log"; } >>/tmp/bench-tracers.log
	rm -f "$trace" "$state.pid" "$state.cpu"
	;;
esac
