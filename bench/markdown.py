"""The tables as Markdown, ready for the README, each with where it came from."""

from __future__ import annotations

from typing import Any

from bench import throughput as throughput_mod


def _iv(d: dict[str, Any], digits: int) -> str:
    lo, hi = d["interval"]
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def _source(result: dict[str, Any]) -> str:
    m = result["machine"]
    rounds = f", {result['rounds']} interleaved rounds" if "rounds" in result else ""
    quick = " (quick run: not for quoting)" if result.get("quick") else ""
    load = m.get("loadavg_before_bench", m["loadavg_at_start"])[0]
    other = (f", other work {m['other_cpus']:.2f} CPUs on average" if "other_cpus" in m
             else "")
    if m.get("foreign_syscall_hooks"):
        quick += f"; {len(m['foreign_syscall_hooks'])} foreign syscall probes attached"
    return (f"_{m['host']}, {m['cpus']} x {m['cpu_model'] or m['arch']}, kernel {m['kernel']}, "
            f"{m['distro']}, {m['date']}{rounds}; load average before {load}{other}{quick}._")


def _not_run(r: dict[str, Any], cols: int) -> str:
    return f"| {r['name']} | {r['status']}: {r['why'] or r.get('note', '')} |" + " |" * (cols - 2)


def micro(result: dict[str, Any]) -> str:
    out = ["| configuration | ns/getppid (median) | interval | added ns | x floor |",
           "|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        if r["status"] != "ok":
            out.append(_not_run(r, 5))
            continue
        add = r.get("added_ns")
        xf = r.get("x_floor")
        out.append(f"| {r['name']} | {r['median']:.1f} | {_iv(r, 1)} | "
                   f"{add['median']:.1f} | {xf:.2f} |" if add and xf is not None else
                   f"| {r['name']} | {r['median']:.1f} | {_iv(r, 1)} | "
                   f"{add['median'] if add else '-'} | - |")
    return "\n".join([*out, "", _source(result)])


def nginx(result: dict[str, Any]) -> str:
    levels = result["levels"]
    out = ["| configuration | requests/s (median) | interval | loss % | loss interval | "
           "worker µs/request | CPU loss % | CPU loss interval | "
           + " | ".join(f"loss % c={c}" for c in levels) + " |",
           "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(levels)]
    for r in result["rows"]:
        if r["status"] != "ok":
            out.append(_not_run(r, 8 + len(levels)))
            continue
        loss = r.get("loss_pct")
        w = r.get("cpu_per_request_ns")
        closs = r.get("cpu_loss_pct")
        conc = r.get("concurrency", {})
        cells = []
        for c in levels:
            lv = conc.get(str(c), {})
            if "loss_pct" in lv:
                cells.append(f"{lv['loss_pct']['median']:.1f}")
            elif "median" in lv:
                cells.append(f"({lv['median']:.0f}/s)")
            else:
                cells.append("-")
        out.append(f"| {r['name']} | {r['median']:.0f} | {_iv(r, 0)} | "
                   + (f"{loss['median']:.1f} | {_iv(loss, 1)} | " if loss else "- | - | ")
                   + (f"{w['median'] / 1000:.1f} | " if w else "- | ")
                   + (f"{closs['median']:.1f} | {_iv(closs, 1)} | " if closs else "- | - | ")
                   + " | ".join(cells) + " |")
    out += ["", "Worker µs/request: the nginx worker's CPU time per request (schedstat, no "
            "steal); CPU loss %: the loss that implies were the worker CPU-bound, "
            "100 (1 - baseline's µs/request / the row's), paired per round."]
    return "\n".join([*out, "", _source(result)])


def throughput(result: dict[str, Any]) -> str:
    out = ["| ring per CPU | syscalls/s recorded, zero drops | interval | consumer CPU "
           "| max ring fill | delivery p99 |", "|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        b = r.get("best")
        if b is None:
            out.append(f"| {r['ring_mib']} MiB | {r.get('why') or 'drops at every rate tried'} "
                       "| | | | |")
            continue
        ge = "≥ " if r["bound"] == "generator" else ""
        rec = r.get("recorded")
        iv = _iv(rec, 0) if rec and rec.get("n", 1) > 1 else "-"
        med = rec["median"] if rec else b["recorded"]
        cpu = r["consumer_cpu_pct"]["median"] if "consumer_cpu_pct" in r else b["consumer_cpu_pct"]
        out.append(f"| {r['ring_mib']} MiB | {ge}{med:,.0f} | {iv} | "
                   f"{cpu:.1f} % | {b['max_fill_pct']:.1f} % | "
                   f"{b.get('delivery_p99_ms', 0.0):.1f} ms |")
    out += ["", f"≥: no drops even at the load generator's full speed. "
            f"{result['trial_s']} s trials. Delivery: how long the best trial's records waited "
            "between their syscall's exit and the consumer (p99 as its log2 bucket's top)."]
    if result.get("trickle"):
        out += ["", throughput_mod.trickle_line(result["trickle"]).strip()]
    out += ["", _source(result)]
    return "\n".join(out)


def _drops(r: dict[str, Any], phase: str) -> str:
    c = r.get("counts", {}).get(phase)
    return f"{c['drop_pct']:.2f} %" if c and c.get("drop_pct") is not None else "-"


def guest(result: dict[str, Any]) -> str:
    out = ["| configuration (in one QEMU guest) | requests/s (median) | interval | loss % | "
           "loss interval | drops |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        if r["status"] != "ok":
            out.append(_not_run(r, 6))
            continue
        loss = r.get("loss_pct")
        out.append(f"| {r['name']} | {r['median']:.0f} | {_iv(r, 0)} | "
                   + (f"{loss['median']:.1f} | {_iv(loss, 1)} | " if loss else "- | - | ")
                   + f"{_drops(r, 'nginx')} |")
    if any("micro" in r for r in result["rows"]):
        out += ["", "| configuration (in one QEMU guest) | ns/getppid (median) | interval | "
                "added ns | added interval | drops |", "|---|---:|---:|---:|---:|---:|"]
        for r in result["rows"]:
            m = r.get("micro", {})
            if m.get("status") != "ok":
                out.append(_not_run({"name": r["name"], "status": m.get("status", "not run"),
                                     "why": m.get("why") or "no micro rounds"}, 6))
                continue
            add = m.get("added_ns")
            out.append(f"| {r['name']} | {m['median']:.0f} | {_iv(m, 0)} | "
                       + (f"{add['median']:.0f} | {_iv(add, 0)} | " if add else "- | - | ")
                       + f"{_drops(r, 'micro')} |")
    out += ["", f"Guest kernel {result.get('guest_kernel') or '-'}; {result['method']}."]
    checks = result.get("checks", {})
    if "no-modules" in checks and "modules-idle" in checks:
        out.append(f"getppid before loading the modules: {checks['no-modules']:.0f} ns; with "
                   f"both loaded and idle: {checks['modules-idle']:.0f} ns.")
    out += [f"Note: {n}" for n in result.get("notes", [])]
    return "\n".join([*out, "", _source(result)])


TABLES = {"micro": micro, "nginx": nginx, "throughput": throughput, "guest": guest}
