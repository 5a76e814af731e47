#!/usr/bin/env python3
"""Two cache-proxy binaries side by side, in one interleaved run (the machines are noisy, so
only a same-run comparison means anything): HIT and MISS req/s and latency against the
benchmark origin, with wrk.

  python3 scripts/compare-proxies.py OLD_BINARY NEW_BINARY [--rounds 3] [--seconds 6]
      [--connections 128] [--size 2048] [--origin-delay-ms 0]

Build the older one in a worktree, e.g.:
  git worktree add /tmp/old <commit> && (cd /tmp/old && swift build -c release --product cache-proxy)
  python3 scripts/compare-proxies.py /tmp/old/.build/release/cache-proxy .build/release/cache-proxy

Uses scripts/bench.py's proxy config and MISS script (every request a new URL), one origin
(.build/release/cache-proxy-bench origin) and one redis-server for both proxies.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--origin-delay-ms", type=int, default=0)
    args = parser.parse_args()

    procs = bench.Processes()
    work = "/tmp/compare-proxies"
    os.makedirs(work, exist_ok=True)
    try:
        origin, redis = bench.free_port(), bench.free_port()
        procs.start([f"{bench.BIN}/cache-proxy-bench", "origin", "--port", str(origin), "--size", str(args.size),
                     "--delay-ms", str(args.origin_delay_ms)])
        procs.start(["redis-server", "--port", str(redis), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        ports = {}
        for name, binary in [("old", args.old), ("new", args.new)]:
            ports[name] = bench.free_port()
            config = f"{work}/{name}.yaml"
            with open(config, "w") as f:
                f.write(bench.PROXY_CONF.format(port=ports[name], origin=origin, redis=redis))
            procs.start([binary, "--config", config, "--log-level", "warning"])
        with open(f"{work}/miss.lua", "w") as f:
            f.write(bench.MISS_SCRIPT)
        for port in [origin, redis, *ports.values()]:
            bench.wait_port(port)
        for port in ports.values():
            for _ in range(3):
                subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/api/hit"])
        results = {}
        for rnd in range(args.rounds):
            for kind in ["hit", "miss"]:
                for name in (["old", "new"] if rnd % 2 == 0 else ["new", "old"]):
                    url = f"http://127.0.0.1:{ports[name]}/api/{kind}"
                    script = f"{work}/miss.lua" if kind == "miss" else None
                    bench.wrk(url, 2, args.connections, 2, script)
                    r = bench.wrk(url, args.seconds, args.connections, 2, script)
                    results.setdefault((kind, name), []).append(r)
                    print(f"round {rnd} {kind:<4} {name}: {r['rps']:>8.0f} req/s  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms",
                          file=sys.stderr, flush=True)
        print(f"wrk -c{args.connections} -d{args.seconds}s, {args.rounds} interleaved rounds, {args.size}-byte body, "
              f"origin delay {args.origin_delay_ms} ms")
        for kind in ["hit", "miss"]:
            old, new = ([r["rps"] for r in results[(kind, n)]] for n in ["old", "new"])
            print(f"{kind.upper():<4} old {sum(old) / len(old):>8.0f} req/s  new {sum(new) / len(new):>8.0f} req/s  "
                  f"new/old {sum(new) / sum(old):.2f}x   (rounds: old {[round(x) for x in old]}, new {[round(x) for x in new]})")
    finally:
        procs.stop()


if __name__ == "__main__":
    main()
