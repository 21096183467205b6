#!/usr/bin/env python3
"""Runner behind scripts/bench: codec micro-benchmarks and the end-to-end client comparison.

Each end-to-end client is its own process (bench/edgekit_bench.cpp, bench/peers/*.c) that measures
its own CPU (getrusage user+sys) and peak RSS and prints one JSON line. For QoS 0 and QoS 1 a
subscriber of the same library counts arrivals while a publisher of that library sends; messages/s
is end to end (publisher's first publish to the subscriber's last arrival). Round trips: one QoS 1
publish at a time, each waiting for its PUBACK. Figures are medians over the runs.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

CLIENTS = [
    # name, binary, protocol version
    ("edgekit", "edgekit_bench", 311),
    ("libmosquitto", "mosquitto_bench", 311),
    ("paho-c", "paho_bench", 311),
    ("edgekit-v5", "edgekit_bench", 5),
]
# "Many threads, one connection" (docs/benchmarks.md, "Agent: 8 threads, one connection"): name,
# binary, publishing threads. The subscriber counting arrivals is edgekit_bench for every line.
MT_CLIENTS = [
    ("edgekit-agent", "agent_mt_bench", None),
    ("libmosquitto-mt", "mosquitto_mt_bench", None),
    ("paho-c-async", "paho_async_bench", None),
    ("raw-send", "raw_send_bench", 1),
]
MT_LABELS = {
    "edgekit-agent": "edgekit::agent, {t} threads call `publish`",
    "libmosquitto-mt": "libmosquitto 2.0.11, `mosquitto_loop_start`, {t} threads call `mosquitto_publish`",
    "paho-c-async": "Paho C 1.3.12 `MQTTAsync`, {t} threads call `MQTTAsync_sendMessage`",
    "raw-send": "reference: 1 thread, edgekit codec + one `send()` per message, no session",
}
# Counted per message in the syscall pass (perf stat tracepoints, all threads of the publisher).
SYSCALLS = ["sendmsg", "sendto", "write", "writev", "recvfrom", "read", "poll", "ppoll", "epoll_wait",
            "pselect6", "select", "futex"]

LABELS = {
    "edgekit": "edgekit (MQTT 3.1.1)",
    "libmosquitto": "libmosquitto 2.0.11, app polls `mosquitto_loop`",
    "paho-c": "Paho C 1.3.12 `MQTTClient`, callback mode",
    "edgekit-v5": "edgekit (MQTT 5), extra row",
}


def run_client(args, binary, mode, version, qos, count, topic):
    cmd = [os.path.join(args.bin, binary), mode, "127.0.0.1", str(args.port), str(version), str(qos),
           str(count), str(args.payload), str(args.window), topic]
    return cmd


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no result line in output:\n" + text)


def throughput(args, name, binary, version, qos, run):
    topic = f"bench/{name}/q{qos}/{run}/{os.getpid()}"
    sub = subprocess.Popen(run_client(args, binary, "sub", version, qos, args.count, topic),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = sub.stdout.readline()
    if line.strip() != "READY":
        sub.kill()
        raise RuntimeError(f"{name} subscriber did not start: {line} {sub.stderr.read()}")
    pub = subprocess.run(run_client(args, binary, "pub", version, qos, args.count, topic),
                         capture_output=True, text=True, timeout=600)
    if pub.returncode != 0:
        sub.kill()
        raise RuntimeError(f"{name} publisher failed: {pub.stderr}")
    out, err = sub.communicate(timeout=600)
    p = last_json(pub.stdout)
    s = last_json(out)
    elapsed = (s["t_end_ns"] - p["t_start_ns"]) / 1e9
    return {
        "pub": p, "sub": s,
        "received": s["messages"],
        "msgs_per_s": s["messages"] / elapsed if elapsed > 0 else 0.0,
        "pub_us_per_msg": p["cpu_us"] / p["messages"],
        "sub_us_per_msg": s["cpu_us"] / max(s["messages"], 1),
        "pub_rss_kb": p["maxrss_kb"], "sub_rss_kb": s["maxrss_kb"],
    }


def round_trips(args, name, binary, version, run):
    topic = f"bench/{name}/rtt/{run}/{os.getpid()}"
    r = subprocess.run(run_client(args, binary, "rtt", version, 1, args.rtt_count, topic),
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{name} rtt failed: {r.stderr}")
    j = last_json(r.stdout)
    return {"raw": j, "p50_us": j["p50_us"], "p99_us": j["p99_us"],
            "us_per_rt": j["cpu_us"] / j["messages"], "rss_kb": j["maxrss_kb"]}


def median(values):
    return statistics.median(values) if values else None


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "broker": os.environ.get("BENCH_BROKER_VERSION", "mosquitto"),
        "broker_settings": os.environ.get("BENCH_BROKER_CONF", ""),
        "compiler": subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def codec(args):
    exe = os.path.join(args.bin, "codec_bench")
    min_time = "0.05" if args.quick else "0.1"
    # Best of 15 repetitions (CPU time): on a shared machine interference only ever adds time,
    # so the fastest repetition is the closest to the code's own cost.
    # Three separate invocations, a few seconds apart, so that one long burst of load from
    # elsewhere cannot spoil every repetition of a benchmark.
    found = []
    for _ in range(1 if args.quick else 3):
        r = subprocess.run([exe, "--benchmark_format=json", f"--benchmark_min_time={min_time}",
                            "--benchmark_repetitions=5"],
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError("codec_bench failed: " + r.stderr)
        found += json.loads(r.stdout)["benchmarks"]
    best = {}
    for b in found:
        if b.get("run_type") != "iteration" or not b.get("items_per_second"):
            continue
        name = b["run_name"]
        if name not in best or b["items_per_second"] > best[name]["items_per_second"]:
            best[name] = b
    rows = []
    for name, b in best.items():
        rows.append({"name": name, "label": b.get("label", ""),
                     "ns_per_packet": 1e9 / b["items_per_second"],
                     "bytes_per_second": b.get("bytes_per_second")})
    return rows


def fmt(v, digits=1):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def e2e_table(summary, args):
    head = ("| client | QoS 0 msg/s | QoS 0 pub µs/msg | QoS 0 sub µs/msg | QoS 1 msg/s "
            "| QoS 1 pub µs/msg | QoS 1 sub µs/msg | RTT p50 / p99 µs | RTT CPU µs | peak RSS KB pub / sub |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for name, _, _ in CLIENTS:
        s = summary.get(name)
        if not s:
            continue
        q0, q1, rt = s["qos0"], s["qos1"], s["rtt"]
        lost = ""
        if q0["min_received"] < args.count or q1["min_received"] < args.count:
            lost = f" (lost: QoS 0 {args.count - q0['min_received']}, QoS 1 {args.count - q1['min_received']})"
        rows.append(
            f"| {LABELS[name]}{lost} | {fmt(q0['msgs_per_s'], 0)} | {fmt(q0['pub_us_per_msg'], 2)} "
            f"| {fmt(q0['sub_us_per_msg'], 2)} | {fmt(q1['msgs_per_s'], 0)} | {fmt(q1['pub_us_per_msg'], 2)} "
            f"| {fmt(q1['sub_us_per_msg'], 2)} | {fmt(rt['p50_us'], 0)} / {fmt(rt['p99_us'], 0)} "
            f"| {fmt(rt['us_per_rt'], 1)} | {fmt(max(q0['pub_rss_kb'], q1['pub_rss_kb']), 0)} / "
            f"{fmt(max(q0['sub_rss_kb'], q1['sub_rss_kb']), 0)} |")
    return head + "\n".join(rows) + "\n"


def verdict(summary):
    lines = []
    for qos in ("qos0", "qos1"):
        for role in ("pub_us_per_msg", "sub_us_per_msg"):
            peers = {n: summary[n][qos][role] for n in ("edgekit", "libmosquitto", "paho-c") if n in summary}
            best = min(peers, key=peers.get)
            ek = peers.get("edgekit")
            others = ", ".join(f"{n} {v:.2f}" for n, v in peers.items() if n != "edgekit")
            lines.append(f"- {qos.upper().replace('QOS', 'QoS ')} {'publisher' if role.startswith('pub') else 'subscriber'}: "
                         f"edgekit {ek:.2f} µs/msg vs {others} → lowest: **{best}**")
    peers = {n: summary[n]["rtt"]["us_per_rt"] for n in ("edgekit", "libmosquitto", "paho-c") if n in summary}
    best = min(peers, key=peers.get)
    lines.append("- QoS 1 round trip CPU: " + ", ".join(f"{n} {v:.1f} µs" for n, v in peers.items())
                 + f" → lowest: **{best}**")
    return "\n".join(lines) + "\n"


def codec_table(rows):
    head = "| benchmark | variant | ns / packet | bytes/s |\n|---|---|---|---|\n"
    out = []
    for r in rows:
        name = r["name"].split("/")[0].replace("BM_", "")
        bps = r["bytes_per_second"]
        out.append(f"| {name} | {r['label']} | {fmt(r['ns_per_packet'], 1)} | "
                   f"{fmt(bps / 1e9, 2) + ' GB/s' if bps else '–'} |")
    return head + "\n".join(out) + "\n"


def replace_block(text, key, body):
    begin, end = f"<!-- bench:{key}:begin -->", f"<!-- bench:{key}:end -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    new = begin + "\n" + body + end
    if pattern.search(text):
        return pattern.sub(lambda _: new, text)
    return text + "\n" + new + "\n"


def mt_cmd(args, binary, qos, count, topic, threads):
    return [os.path.join(args.bin, binary), "pub", "127.0.0.1", str(args.port), "311", str(qos),
            str(count), str(args.payload), str(args.mt_window), topic, str(threads)]


def perf_works():
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                           capture_output=True, text=True, timeout=30)
        return r.returncode == 0 and "raw_syscalls:sys_enter" in r.stderr and "not supported" not in r.stderr
    except (OSError, subprocess.TimeoutExpired):
        return False


def mt_throughput(args, name, binary, threads, qos, run, perf_out=None):
    """One run: edgekit_bench subscribes (QoS `qos`), the many-threads publisher sends. With
    `perf_out` the publisher runs under `perf stat` counting its system calls."""
    topic = f"bench/mt/{name}/q{qos}/{run}/{os.getpid()}"
    load_before = os.getloadavg()[0]
    sub = subprocess.Popen(run_client(args, "edgekit_bench", "sub", 311, qos, args.mt_count, topic),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = sub.stdout.readline()
    if line.strip() != "READY":
        sub.kill()
        raise RuntimeError(f"subscriber did not start: {line} {sub.stderr.read()}")
    cmd = mt_cmd(args, binary, qos, args.mt_count, topic, threads)
    if perf_out:
        events = ["raw_syscalls:sys_enter", "context-switches"] + [f"syscalls:sys_enter_{c}" for c in SYSCALLS]
        cmd = ["perf", "stat", "-x,", "-o", perf_out, "-e", ",".join(events), "--"] + cmd
    pub = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if pub.returncode != 0:
        sub.kill()
        raise RuntimeError(f"{name} publisher failed ({pub.returncode}): {pub.stderr}")
    out, err = sub.communicate(timeout=300)
    p = last_json(pub.stdout)
    s = last_json(out)
    elapsed = (s["t_end_ns"] - p["t_start_ns"]) / 1e9
    r = {"pub": p, "sub": s, "received": s["messages"],
         "msgs_per_s": s["messages"] / elapsed if elapsed > 0 else 0.0,
         "pub_us_per_msg": p["cpu_us"] / p["messages"] if p["messages"] else None,
         "pub_rss_kb": p["maxrss_kb"],
         "load": [load_before, os.getloadavg()[0]]}
    if "transport_writes" in p:
        r["writes_per_msg"] = p["transport_writes"] / p["messages"]
        r["reads_per_msg"] = p["transport_reads"] / p["messages"]
    if perf_out:
        counts = {}
        with open(perf_out) as f:
            for row in f:
                parts = row.strip().split(",")
                if len(parts) < 3 or not parts[0].replace(".", "").isdigit():
                    continue
                ev = parts[2]
                key = "syscalls" if ev == "raw_syscalls:sys_enter" else ev.replace("syscalls:sys_enter_", "")
                counts[key] = float(parts[0]) / p["messages"]
        r["per_msg"] = counts
    return r


def agent_mt(args):
    """The 8-threads-one-connection comparison. Returns the result dict stored under "agent_mt"."""
    clients = [c for c in MT_CLIENTS if os.path.exists(os.path.join(args.bin, c[1]))]
    missing = [c[0] for c in MT_CLIENTS if c not in clients]
    if missing:
        print("agent benchmark: not built, skipped: " + ", ".join(missing), file=sys.stderr)
    raw = {name: {"qos0": [], "qos1": []} for name, _, _ in clients}
    for run in range(args.mt_runs):
        for name, binary, threads in clients:
            for qos in (0, 1):
                r = mt_throughput(args, name, binary, threads or args.mt_threads, qos, run)
                raw[name][f"qos{qos}"].append(r)
                print(f"agent run {run + 1}/{args.mt_runs} {name:16} QoS {qos}: {r['msgs_per_s']:9.0f} msg/s  "
                      f"pub {r['pub_us_per_msg']:.2f} µs/msg  received {r['received']}  "
                      f"load {r['load'][0]:.1f}", file=sys.stderr)
    sys_pass = {}
    have_perf = perf_works()
    if have_perf:
        # A separate run per line: the tracepoints cost a little per system call, so the timed
        # runs above stay unperturbed.
        perf_out = os.path.join(os.path.dirname(args.out) or ".", "agent_mt_perf.txt")
        for name, binary, threads in clients:
            for qos in (0, 1):
                r = mt_throughput(args, name, binary, threads or args.mt_threads, qos, "perf", perf_out)
                sys_pass.setdefault(name, {})[f"qos{qos}"] = r["per_msg"]
                print(f"agent syscalls {name:16} QoS {qos}: {r['per_msg'].get('syscalls', 0):.2f} per msg",
                      file=sys.stderr)
    else:
        print("agent benchmark: `perf stat` with syscall tracepoints unavailable: no syscall counts",
              file=sys.stderr)
    summary = {}
    for name, _, threads in clients:
        s = {"threads": threads or args.mt_threads}
        for q in ("qos0", "qos1"):
            runs = raw[name][q]
            s[q] = {k: median([r[k] for r in runs if r.get(k) is not None]) for k in
                    ("msgs_per_s", "pub_us_per_msg", "pub_rss_kb", "writes_per_msg", "reads_per_msg")}
            s[q]["min_received"] = min(r["received"] for r in runs)
            s[q]["syscalls"] = sys_pass.get(name, {}).get(q)
        summary[name] = s
    loads = [l for name in raw for q in raw[name] for r in raw[name][q] for l in r["load"]]
    return {"settings": {"runs": args.mt_runs, "messages": args.mt_count, "payload_bytes": args.payload,
                         "window": args.mt_window, "low_water": args.mt_window // 2,
                         "threads": args.mt_threads, "qos1_subscriber": "edgekit_bench"},
            "load": {"min": min(loads), "max": max(loads)} if loads else None,
            "syscall_counter": "perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_* (kernel tracepoints)"
                               if have_perf else None,
            "summary": summary, "raw": raw}


def mt_table(res):
    st = res["settings"]
    head = ("| client | QoS 0 msg/s | QoS 0 µs/msg | QoS 0 syscalls/msg | QoS 1 msg/s | QoS 1 µs/msg "
            "| QoS 1 syscalls/msg | peak RSS KB |\n|---|---|---|---|---|---|---|---|\n")
    rows = []
    for name, _, _ in MT_CLIENTS:
        s = res["summary"].get(name)
        if not s:
            continue
        q0, q1 = s["qos0"], s["qos1"]
        lost = ""
        if q0["min_received"] < st["messages"] or q1["min_received"] < st["messages"]:
            lost = (f" (lost: QoS 0 {st['messages'] - q0['min_received']}, "
                    f"QoS 1 {st['messages'] - q1['min_received']})")

        def sc(q):
            return fmt(q["syscalls"]["syscalls"], 2) if q.get("syscalls") else "–"
        rows.append(f"| {MT_LABELS[name].format(t=s['threads'])}{lost} | {fmt(q0['msgs_per_s'], 0)} "
                    f"| {fmt(q0['pub_us_per_msg'], 2)} | {sc(q0)} | {fmt(q1['msgs_per_s'], 0)} "
                    f"| {fmt(q1['pub_us_per_msg'], 2)} | {sc(q1)} "
                    f"| {fmt(max(q0['pub_rss_kb'], q1['pub_rss_kb']), 0)} |")
    return head + "\n".join(rows) + "\n"


def mt_syscall_table(res):
    names = [n for n, _, _ in MT_CLIENTS if n in res["summary"] and res["summary"][n]["qos0"].get("syscalls")]
    if not names:
        return "(no system call counts: `perf stat` with syscall tracepoints was not available)\n"
    head = "| client | QoS | " + " | ".join(SYSCALLS) + " | all | context switches |\n"
    head += "|---|---|" + "---|" * (len(SYSCALLS) + 2) + "\n"
    rows = []
    for n in names:
        for q in ("qos0", "qos1"):
            c = res["summary"][n][q]["syscalls"]
            cells = " | ".join(fmt(c.get(k), 2) if c.get(k) else "0" for k in SYSCALLS)
            rows.append(f"| {n} | {q[-1]} | {cells} | {fmt(c.get('syscalls'), 2)} "
                        f"| {fmt(c.get('context-switches'), 2)} |")
    return head + "\n".join(rows) + "\n"


def mt_verdict(res):
    sm = res["summary"]
    lines = []
    if "edgekit-agent" not in sm:
        return ""
    for q in ("qos0", "qos1"):
        ag = sm["edgekit-agent"][q]
        peers = {n: sm[n][q] for n in ("libmosquitto-mt", "paho-c-async") if n in sm}
        if peers:
            fastest = max(peers, key=lambda n: peers[n]["msgs_per_s"])
            f = peers[fastest]
            lines.append(f"- QoS {q[-1]} messages/s: agent {ag['msgs_per_s']:,.0f} vs the faster peer "
                         f"({fastest}) {f['msgs_per_s']:,.0f} → "
                         f"**{'agent at least as fast' if ag['msgs_per_s'] >= f['msgs_per_s'] else 'agent behind'}**")
            cheapest = min(peers, key=lambda n: peers[n]["pub_us_per_msg"])
            c = peers[cheapest]
            lines.append(f"- QoS {q[-1]} client CPU: agent {ag['pub_us_per_msg']:.2f} µs/msg vs the cheaper peer "
                         f"({cheapest}) {c['pub_us_per_msg']:.2f} → "
                         f"**{'agent lower' if ag['pub_us_per_msg'] < c['pub_us_per_msg'] else 'agent not lower'}**")
        if "raw-send" in sm:
            r = sm["raw-send"][q]
            lines.append(f"- QoS {q[-1]} vs one `send()` per message: agent {ag['pub_us_per_msg']:.2f} µs/msg vs "
                         f"{r['pub_us_per_msg']:.2f} → "
                         f"**{'below (issue 4 target met)' if ag['pub_us_per_msg'] < r['pub_us_per_msg'] else 'not below (issue 4 target missed)'}**")
    return "\n".join(lines) + "\n"


def mt_machine(res, info, command):
    st = res["settings"]
    ld = res.get("load") or {}
    return (f"- Command: `{command.strip()}`\n"
            f"- Date: {info['date']}\n"
            f"- Machine: {info['nproc']} CPUs, {info['cpu']}, Linux {info['kernel']}; load average (1 min) "
            f"during the runs {ld.get('min', 0):.1f}–{ld.get('max', 0):.1f}\n"
            f"- Broker: {info['broker']}, settings `{info['broker_settings']}` on 127.0.0.1\n"
            f"- Runs: {st['runs']} (medians); {st['messages']:,} messages of {st['payload_bytes']} bytes per run, "
            f"split over {st['threads']} threads; window {st['window']} (refilled from {st['low_water']}); "
            f"subscriber: edgekit_bench at the same QoS\n"
            f"- System calls: {res.get('syscall_counter') or 'not counted'}, one extra run per line\n")


def write_agent_doc(doc, res, info, command):
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    text = replace_block(text, "agent-machine", mt_machine(res, info, command))
    text = replace_block(text, "agent", mt_table(res))
    text = replace_block(text, "agent-syscalls", mt_syscall_table(res))
    text = replace_block(text, "agent-verdict", mt_verdict(res))
    with open(doc, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--doc")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--rtt-count", type=int, default=10000)
    ap.add_argument("--payload", type=int, default=64)
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="1 run, 10000 messages, 1000 round trips")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--only", help="comma-separated client names")
    ap.add_argument("--skip-codec", action="store_true")
    ap.add_argument("--codec-only", action="store_true",
                    help="only the codec micro-benchmarks (updates their part of results.json and the doc)")
    ap.add_argument("--agent-only", action="store_true",
                    help="only the 8-threads-one-connection benchmark (updates its part of results.json and the doc)")
    ap.add_argument("--skip-agent", action="store_true")
    ap.add_argument("--mt-runs", type=int, default=3)
    ap.add_argument("--mt-count", type=int, default=100000)
    ap.add_argument("--mt-window", type=int, default=64)
    ap.add_argument("--mt-threads", type=int, default=8)
    args = ap.parse_args()
    if args.quick:
        args.runs, args.count, args.rtt_count = 1, 10000, 1000
        args.mt_runs, args.mt_count = 1, 10000
    if args.agent_only:
        res = agent_mt(args)
        info = machine()
        command = os.environ.get("BENCH_COMMAND", "scripts/bench --agent-only")
        res["command"], res["machine"] = command, info
        print(mt_table(res))
        print(mt_syscall_table(res))
        print(mt_verdict(res))
        result = {}
        if os.path.exists(args.out):
            with open(args.out) as f:
                result = json.load(f)
        result["agent_mt"] = res
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        if args.doc and not args.no_doc:
            write_agent_doc(args.doc, res, info, command)
        return
    clients = [c for c in CLIENTS if not args.only or c[0] in args.only.split(",")]
    clients = [c for c in clients if os.path.exists(os.path.join(args.bin, c[1]))]
    if args.codec_only:
        rows = codec(args)
        print(codec_table(rows))
        result = {}
        if os.path.exists(args.out):
            with open(args.out) as f:
                result = json.load(f)
        result["codec"] = rows
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        if args.doc and not args.no_doc:
            with open(args.doc) as f:
                text = f.read()
            with open(args.doc, "w") as f:
                f.write(replace_block(text, "codec", codec_table(rows)))
        return

    codec_rows = [] if args.skip_codec else codec(args)
    raw = {name: {"qos0": [], "qos1": [], "rtt": []} for name, _, _ in clients}
    for run in range(args.runs):
        # Interleave the clients in every run so that machine noise spreads over all of them.
        for name, binary, version in clients:
            for qos in (0, 1):
                r = throughput(args, name, binary, version, qos, run)
                raw[name][f"qos{qos}"].append(r)
                print(f"run {run + 1}/{args.runs} {name:12} QoS {qos}: {r['msgs_per_s']:9.0f} msg/s  "
                      f"pub {r['pub_us_per_msg']:.2f} µs/msg  sub {r['sub_us_per_msg']:.2f} µs/msg  "
                      f"received {r['received']}", file=sys.stderr)
            rt = round_trips(args, name, binary, version, run)
            raw[name]["rtt"].append(rt)
            print(f"run {run + 1}/{args.runs} {name:12} RTT: p50 {rt['p50_us']:.0f} µs p99 {rt['p99_us']:.0f} µs "
                  f"cpu {rt['us_per_rt']:.1f} µs/rt", file=sys.stderr)

    summary = {}
    for name, _, _ in clients:
        s = {}
        for q in ("qos0", "qos1"):
            runs = raw[name][q]
            s[q] = {k: median([r[k] for r in runs]) for k in
                    ("msgs_per_s", "pub_us_per_msg", "sub_us_per_msg", "pub_rss_kb", "sub_rss_kb")}
            s[q]["min_received"] = min(r["received"] for r in runs)
        runs = raw[name]["rtt"]
        s["rtt"] = {k: median([r[k] for r in runs]) for k in ("p50_us", "p99_us", "us_per_rt", "rss_kb")}
        summary[name] = s

    mt = None if args.skip_agent else agent_mt(args)
    info = machine()
    settings = {"runs": args.runs, "messages": args.count, "payload_bytes": args.payload,
                "window": args.window, "round_trips": args.rtt_count}
    command = os.environ.get("BENCH_COMMAND", "scripts/bench")
    result = {"command": command, "machine": info, "settings": settings, "summary": summary,
              "codec": codec_rows, "raw": raw}
    if mt:
        mt["command"], mt["machine"] = command, info
        result["agent_mt"] = mt
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    table = e2e_table(summary, args)
    print(table)
    if codec_rows:
        print(codec_table(codec_rows))
    if all(n in summary for n in ("edgekit", "libmosquitto", "paho-c")):
        print(verdict(summary))

    if args.doc and not args.no_doc:
        text = open(args.doc).read() if os.path.exists(args.doc) else "# Benchmarks\n"
        machine_md = (f"- Command: `{command.strip()}`\n"
                      f"- Date: {info['date']}\n"
                      f"- Machine: {info['nproc']} CPUs, {info['cpu']}, Linux {info['kernel']}\n"
                      f"- Compiler: {info['compiler']}, `bench` preset (Release, -O3)\n"
                      f"- Broker: {info['broker']}, settings `{info['broker_settings']}` on 127.0.0.1\n"
                      f"- Runs: {args.runs} (medians); {args.count:,} messages of {args.payload} bytes per "
                      f"throughput run; QoS 1 window {args.window}; {args.rtt_count:,} round trips\n")
        text = replace_block(text, "machine", machine_md)
        text = replace_block(text, "e2e", table)
        if all(n in summary for n in ("edgekit", "libmosquitto", "paho-c")):
            text = replace_block(text, "verdict", verdict(summary))
        if codec_rows:
            text = replace_block(text, "codec", codec_table(codec_rows))
        with open(args.doc, "w") as f:
            f.write(text)
        if mt:
            write_agent_doc(args.doc, mt, info, command)
    if mt:
        print(mt_table(mt))
        print(mt_verdict(mt))


if __name__ == "__main__":
    main()
