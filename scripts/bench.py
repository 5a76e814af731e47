#!/usr/bin/env python3
"""make bench: wrk against the origin directly, cache-proxy (all HITs, all MISSes) and nginx
proxy_cache (all HITs), in one run, on loopback. Prints req/s, p50, p99 and the ratios.

Everything runs on this machine: wrk, the origin, Redis, the proxy and nginx share the cores,
so only ratios measured in the same run mean anything.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class Processes:
    def __init__(self):
        self.procs = []

    def start(self, args, **kwargs):
        # Own session, so stop() can kill the whole process group (nginx's workers too).
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=kwargs.pop("stderr", subprocess.DEVNULL), start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, seconds, connections, threads, script=None):
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        args += ["-s", script]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))

    def parse(text):
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        return to_ms(m.group(1), m.group(2))

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": parse(lat["50"]),
        "p99": parse(lat["99"]),
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


NGINX_CONF = """
worker_processes {workers};
{user}
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=api:16m max_size=1g inactive=10m use_temp_path=off;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location /api/ {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache api;
            proxy_cache_methods GET HEAD POST;
            proxy_cache_key "$request_method$host$request_uri$request_body";
            proxy_cache_valid 200 300s;
            add_header X-Cache $upstream_cache_status;
        }}
    }}
}}
"""

PROXY_CONF = """
listen: 127.0.0.1:{port}
upstream: http://127.0.0.1:{origin}
redis:
  url: redis://127.0.0.1:{redis}/0
  timeout: 100ms
routes:
  - path: /api/hit
    ttl: 300s
  - path: /api/miss
    ttl: 2s
"""

MISS_SCRIPT = """
-- every request a new URL, so every request is a MISS
local counter = 0
local thread_id = 0
setup = function(thread) thread:set("id", thread_id); thread_id = thread_id + 1 end
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/miss?n=" .. id .. "-" .. counter)
end
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run [10]")
    parser.add_argument("--connections", type=int, default=128, help="wrk -c [128]")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t [2]")
    parser.add_argument("--size", type=int, default=2048, help="response body bytes [2048]")
    parser.add_argument("--origin-delay-ms", type=int, default=5, help="service time of the slow origin for the MISS latency runs [5]")
    args = parser.parse_args()

    for tool in ["wrk", "nginx", "redis-server"]:
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} is missing (make bench installs it)")

    work = tempfile.mkdtemp(prefix="cache-proxy-bench-")
    os.chmod(work, 0o755)  # nginx workers drop root privileges
    procs = Processes()
    try:
        origin_port, redis_port, proxy_port, nginx_port = free_port(), free_port(), free_port(), free_port()
        slow_origin_port, slow_proxy_port = free_port(), free_port()
        procs.start([f"{BIN}/cache-proxy-bench", "origin", "--port", str(origin_port), "--size", str(args.size)])
        procs.start([f"{BIN}/cache-proxy-bench", "origin", "--port", str(slow_origin_port), "--size", str(args.size),
                     "--delay-ms", str(args.origin_delay_ms)])
        procs.start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        with open(f"{work}/proxy.yaml", "w") as f:
            f.write(PROXY_CONF.format(port=proxy_port, origin=origin_port, redis=redis_port))
        procs.start([f"{BIN}/cache-proxy", "--config", f"{work}/proxy.yaml", "--log-level", "warning"], stderr=None)
        with open(f"{work}/slow-proxy.yaml", "w") as f:
            f.write(PROXY_CONF.format(port=slow_proxy_port, origin=slow_origin_port, redis=redis_port))
        procs.start([f"{BIN}/cache-proxy", "--config", f"{work}/slow-proxy.yaml", "--log-level", "warning"], stderr=None)
        workers = os.cpu_count() or 2
        with open(f"{work}/nginx.conf", "w") as f:
            f.write(NGINX_CONF.format(dir=work, origin=origin_port, port=nginx_port, workers=workers, user="user root;" if os.geteuid() == 0 else ""))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        procs.start([nginx, "-c", f"{work}/nginx.conf", "-p", work])
        with open(f"{work}/miss.lua", "w") as f:
            f.write(MISS_SCRIPT)
        for port in [origin_port, redis_port, proxy_port, nginx_port, slow_origin_port, slow_proxy_port]:
            wait_port(port)

        # Warm the caches (and check both really cache).
        for url in [f"http://127.0.0.1:{proxy_port}/api/hit", f"http://127.0.0.1:{nginx_port}/api/hit"]:
            for _ in range(3):
                headers = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", url], capture_output=True, text=True).stdout
        for url, want in [(f"http://127.0.0.1:{proxy_port}/api/hit", "x-cache: HIT"), (f"http://127.0.0.1:{nginx_port}/api/hit", "X-Cache: HIT")]:
            headers = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", url], capture_output=True, text=True).stdout
            if want.lower() not in headers.lower():
                sys.exit(f"{url} does not hit the cache:\n{headers}")

        runs = [
            ("origin direct", f"http://127.0.0.1:{origin_port}/api/hit", None),
            ("cache-proxy HIT", f"http://127.0.0.1:{proxy_port}/api/hit", None),
            ("cache-proxy MISS", f"http://127.0.0.1:{proxy_port}/api/miss", f"{work}/miss.lua"),
            ("nginx proxy_cache HIT", f"http://127.0.0.1:{nginx_port}/api/hit", None),
            (f"{args.origin_delay_ms}ms origin direct", f"http://127.0.0.1:{slow_origin_port}/api/hit", None),
            (f"{args.origin_delay_ms}ms origin, proxy MISS", f"http://127.0.0.1:{slow_proxy_port}/api/miss", f"{work}/miss.lua"),
        ]
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {args.size}-byte JSON, all on this machine ({os.cpu_count()} cores)")
        results = {}
        for name, url, script in runs:
            wrk(url, 2, args.connections, args.threads, script)  # warm-up
            results[name] = wrk(url, args.seconds, args.connections, args.threads, script)
            r = results[name]
            print(f"  measured {name:<28} {r['rps']:>10.0f} req/s", file=sys.stderr, flush=True)

        print()
        print(f"{'setup':<28} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}  {'errors':<8}")
        for name, _, _ in runs:
            r = results[name]
            errors = str(r["non2xx"]) + (f" ({r['socket_errors']})" if r["socket_errors"] else "")
            print(f"{name:<28} {r['rps']:>10.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}  {errors:<8}")
        hit, miss, direct, nginx_hit = (results[n] for n in ["cache-proxy HIT", "cache-proxy MISS", "origin direct", "nginx proxy_cache HIT"])
        print()
        print(f"HIT req/s vs nginx proxy_cache:      {hit['rps'] / nginx_hit['rps']:.2f}x   (target >= 0.70x)")
        print(f"HIT p99:                             {hit['p99']:.2f} ms (target <= 5 ms)")
        slow_direct = results[f"{args.origin_delay_ms}ms origin direct"]
        slow_miss = results[f"{args.origin_delay_ms}ms origin, proxy MISS"]
        print(f"MISS p50 vs direct, {args.origin_delay_ms} ms origin:     {slow_miss['p50'] / slow_direct['p50']:.2f}x   (target <= 1.10x)")
        print(f"MISS p99 vs direct, {args.origin_delay_ms} ms origin:     {slow_miss['p99'] / slow_direct['p99']:.2f}x")
        print(f"MISS p50 vs direct, instant origin:  {miss['p50'] / direct['p50']:.2f}x   (saturated: both CPU-bound on shared cores)")
        print(f"MISS req/s vs direct, instant origin: {miss['rps'] / direct['rps']:.2f}x")
    finally:
        procs.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
