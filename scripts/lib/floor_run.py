"""The blocking client's QoS 0 publisher beside the raw-send floor (issue 10's last CPU cell).

Interleaved rounds through one private Mosquitto: in each round a subscriber (edgekit_bench sub,
the same for every publisher) counts the messages, and each publisher sends COUNT QoS 0 MQTT
3.1.1 messages of 64 B; the figure is the publisher's own CPU (user + system over its publishing
phase) per message, as scripts/bench measures it. With --pin, publishers run on CPU 0, the
subscriber (and, done by the caller, the broker) on CPU 1: on a 2-CPU machine that removes the
largest source of spread (which of the three processes the scheduler puts where). Reports every
round, the medians, and each publisher's per-round ratio to the floor (the last publisher).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line)
    raise RuntimeError("no result line in:\n" + text)


def one(args, binary, topic):
    pin_pub = ["taskset", "-c", "0"] if args.pin else []
    pin_sub = ["taskset", "-c", "1"] if args.pin else []
    common = ["127.0.0.1", str(args.port), "311", "0", str(args.count), "64", "20", topic]
    sub = subprocess.Popen(pin_sub + [os.path.join(args.bin, "edgekit_bench"), "sub"] + common,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if sub.stdout.readline().strip() != "READY":
        sub.kill()
        raise RuntimeError("subscriber did not start: " + sub.stderr.read())
    extra = ["1"] if os.path.basename(binary) == "raw_send_bench" else []  # its thread count
    pub = subprocess.run(pin_pub + [binary, "pub"] + common + extra, capture_output=True,
                         text=True, timeout=600)
    if pub.returncode != 0:
        sub.kill()
        raise RuntimeError(f"{binary} failed: {pub.stderr}")
    out, _ = sub.communicate(timeout=600)
    p, s = last_json(pub.stdout), last_json(out)
    if s["messages"] != args.count:
        raise RuntimeError(f"{binary}: the subscriber got {s['messages']} of {args.count}")
    return p["cpu_us"] / p["messages"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--pin", action="store_true")
    ap.add_argument("publishers", nargs="+", help="NAME=BINARY; the last one is the floor")
    args = ap.parse_args()
    pubs = [p.split("=", 1) for p in args.publishers]
    res = {name: [] for name, _ in pubs}
    print(f"load average at the start: {os.getloadavg()[0]:.2f}", flush=True)
    for r in range(args.rounds):
        line = f"round {r + 1}/{args.rounds}:"
        for name, binary in pubs:
            v = one(args, binary, f"bench/floor/{name}/{r}/{os.getpid()}")
            res[name].append(v)
            line += f"  {name} {v:.3f}"
        print(line + f"  (load {os.getloadavg()[0]:.2f})", flush=True)
    floor = pubs[-1][0]
    print(f"\nclient CPU per QoS 0 message, µs (medians of {args.rounds} interleaved rounds):")
    for name, _ in pubs:
        ratios = [a / b for a, b in zip(res[name], res[floor])]
        print(f"  {name:12} {statistics.median(res[name]):.3f}   per-round ratio to {floor}: "
              f"median {statistics.median(ratios):.3f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
