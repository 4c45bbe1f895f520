#!/usr/bin/env bash
# Sets up syscap on a Debian 12 machine, as root: system packages, a virtualenv
# at .venv, and the native build (BPF program, capture_lib, cffi binding).
# With --tests it also installs what the test suite drives (strace, tmux,
# Prometheus, QEMU for the module's guests, ...), which a box that only runs
# syscap does not need.
# Idempotent: a second run installs nothing new and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")"

for_tests=0
case "${1:-}" in
	--tests) for_tests=1 ;;
	"") ;;
	*) printf 'setup: unknown option %s: use ./setup.sh or ./setup.sh --tests\n' "$1" >&2
	   exit 2 ;;
esac

say() { printf 'setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
	say "must run as root (it installs Debian packages): run 'sudo ./setup.sh'"
	exit 1
fi

# Build and run dependencies from Debian (gdb: gcore takes cores of live
# processes for the restorer). syscap-agent is built for x86-64 and arm64:
# the cross compiler and the arm64 static libraries (multiarch) for that.
APT_PACKAGES=(
	build-essential make pkg-config clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev
	xz-utils python3 python3-venv python3-dev gdb
	gcc-aarch64-linux-gnu libbpf-dev:arm64 libelf-dev:arm64 zlib1g-dev:arm64
)
# What the tests drive: oracles and peers, a terminal, a real Prometheus;
# clang's sanitizer runtimes (libFuzzer, ThreadSanitizer) for the trace fuzzer; QEMU for the
# guests (x86-64, arm64), and qemu-user-static to bootstrap the arm64 guest's Debian root.
TEST_PACKAGES=(
	strace tmux bpftrace prometheus nginx apache2-utils linux-perf qemu-system-x86 debootstrap
	libclang-rt-14-dev openssh-server
	qemu-system-arm qemu-user-static binfmt-support
)
[ "$for_tests" = 1 ] && APT_PACKAGES+=("${TEST_PACKAGES[@]}")
# arm64 packages install next to the amd64 ones once dpkg knows the architecture.
new_arch=0
if [ "$(dpkg --print-architecture)" != arm64 ] &&
   ! dpkg --print-foreign-architectures | grep -qx arm64; then
	say "adding the arm64 architecture to dpkg (for syscap-agent's arm64 build)"
	dpkg --add-architecture arm64
	new_arch=1
fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] || [ "$new_arch" = 1 ]; then
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# openssh-server's scripts start a system sshd; the tests run their own on
	# loopback (sshd -f), so none starts now: invoke-rc.d and deb-systemd-invoke
	# ask policy-rc.d first, and 101 means "not now". One already there is kept.
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		trap 'rm -f "$policy"' EXIT
		printf '#!/bin/sh\n# setup.sh: no service starts while it installs packages\nexit 101\n' >"$policy"
		chmod 755 "$policy"
	fi
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	if [ -n "$policy" ]; then
		rm -f "$policy"
		trap - EXIT
	fi
	# Debian starts Prometheus, nginx and sshd on all interfaces; the tests and
	# benchmarks run their own on loopback. A system sshd that was running before
	# (someone's way in) is left alone.
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		systemctl disable --now prometheus nginx >/dev/null 2>&1 || true
		if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
			systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
		fi
	fi
fi

# The venv's interpreter must be one every user can run (report and
# top --replay need no privileges): Debian's own python3 when it is new enough,
# never one from a root-only directory such as root's pyenv.
py_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
	PY=$PYTHON
elif py_ok /usr/bin/python3; then
	PY=/usr/bin/python3
else
	PY=python3
fi
if ! py_ok "$PY"; then
	say "$PY is not Python 3.11 or newer: install python3 >= 3.11 or set PYTHON=/path/to/python3.11"
	exit 1
fi
# A venv made earlier from another interpreter is made again.
if [ -x .venv/bin/python ] && ! grep -qx "home = $(dirname "$(readlink -f "$PY")")" .venv/pyvenv.cfg; then
	say "re-creating .venv with $PY"
	rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
	say "creating .venv with $PY"
	"$PY" -m venv .venv
fi
stamp=.venv/.syscap-deps
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ bench/pyproject.toml -nt "$stamp" ]; then
	say "installing Python packages into .venv"
	.venv/bin/pip install -q --upgrade pip
	# bench/ is its own (development) distribution: it adds `syscap bench`
	.venv/bin/pip install -q -e '.[dev]' -e ./bench
	touch "$stamp"
fi

say "building capture_lib (BPF program, library, Python binding, syscap-agent x86-64 + arm64)"
make -s -C capture_lib PYTHON="$PWD/.venv/bin/python" all agent agent-arm64

# The eBPF backend needs tracefs only for diagnostics; mount it if absent.
if [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/trace ]; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
say "done"
