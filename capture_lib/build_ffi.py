"""Build capture_lib._native, the cffi binding of the C library (API mode).

Run by capture_lib/Makefile after libsyscap.a is built; the declarations
come from include/syscap.h itself, with preprocessor lines stripped, so the
binding cannot drift from the header.
"""

from __future__ import annotations

import os
import re
import sys

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
INC = os.path.join(HERE, "include")
BUILD = os.path.join(HERE, "build")


# Integer constants Python needs (cffi reads their values from the headers).
CONSTANTS = (
    "SYSCAP_RECORD_VERSION", "SYSCAP_MAX_SYSCALLS", "SYSCAP_COMM_LEN", "SYSCAP_MAX_COMMS",
    "SYSCAP_EVENT_SIZE", "SYSCAP_F_NORETURN", "SYSCAP_F_COMPAT", "SYSCAP_F_GROUP_DEAD",
    "SYSCAP_F_SAMPLED",
    "SYSCAP_FILTER_SYSCALLS", "SYSCAP_FILTER_PIDS", "SYSCAP_FILTER_COMM",
    "SYSCAP_FILTER_COMM_EXCLUDE", "SYSCAP_FILTER_FAILED", "SYSCAP_PID_INCLUDE",
    "SYSCAP_PID_EXCLUDE", "SYSCAP_TRACE_VERSION", "SYSCAP_HIST_BUCKETS", "SYSCAP_CREATE_FORCE",
    "SYSCAP_DUTY_FULL", "SYSCAP_MIN_DUTY_PPM", "SYSCAP_MAX_SAMPLE_PERIOD", "SYSCAP_SAMPLE_COST_NS",
    "SYSCAP_ENTER_COST_NS", "SYSCAP_REC_VERSION", "SYSCAP_REC_SIZE", "SYSCAP_REC_ARGS_SIZE",
)


def declarations() -> str:
    """The C declarations cffi needs, taken from the real headers."""
    parts = []
    values: dict[str, str] = {}
    for name in ("syscap_record.h", "syscap_trace.h", "syscap.h"):
        with open(os.path.join(INC, name)) as f:
            text = f.read()
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        text = re.sub(r"//[^\n]*", "", text)
        text = re.sub(r"static inline[^{]*\{.*?\n\}", "", text, flags=re.S)
        for m in re.finditer(r"^#define\s+(SYSCAP_\w+)\s+(\d+)\s*$", text, flags=re.M):
            values[m.group(1)] = m.group(2)
        lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
        parts.append("\n".join(lines))
    decl = re.sub(r"\b(SYSCAP_\w+)\b", lambda m: values.get(m.group(1), m.group(1)),
                  "\n".join(parts))
    decl += "".join(f"\n#define {c} ..." for c in CONSTANTS)
    kernel_types = (
        "typedef unsigned long long __u64; typedef long long __s64;\n"
        "typedef unsigned int __u32; typedef int __s32; typedef unsigned short __u16;\n"
        "typedef unsigned char __u8;\n"
    )
    return kernel_types + decl


def main() -> int:
    ffi = cffi.FFI()
    ffi.cdef(declarations())
    ffi.set_source(
        "capture_lib._native",
        '#include "syscap.h"\n',
        include_dirs=[INC, BUILD],
        extra_compile_args=["-O2", "-Wno-unused-parameter"],
        # every object of the library, whether or not the binding names it
        extra_link_args=["-Wl,--whole-archive", os.path.join(BUILD, "libsyscap.a"),
                         "-Wl,--no-whole-archive", "-lbpf", "-lelf", "-lz", "-lpthread"],
    )
    tmp = os.path.join(BUILD, "ffi")
    os.makedirs(tmp, exist_ok=True)
    lib = ffi.compile(tmpdir=tmp, verbose=False)
    target = os.path.join(HERE, os.path.basename(lib))
    os.replace(lib, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
