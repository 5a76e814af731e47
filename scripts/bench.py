#!/usr/bin/env python3
"""make bench: cache-proxy against nginx proxy_cache and Varnish, in one interleaved run on loopback.

1. Hits. Setups: the origin direct, cache-proxy with its memory tier, cache-proxy with Redis only
   (memory.max_bytes: 0), nginx proxy_cache and Varnish. Workloads: a GET of a 2 KB JSON, a GET of
   a 100 KB JSON, and a POST keyed on its JSON body (16 bodies {"user_id": N}, so every request is
   a hit after the warm-up; Varnish passes POST to the origin, as its built-in VCL does, so its
   POST row is the origin through Varnish, not a cache). Each at wrk -c32 and -c128. Every round
   runs every setup once per workload and connection count, so the machine's noise spreads over
   all setups; the best round counts (noise only ever slows a run down).
2. Key count: cache-proxy Redis-only hits on random ids over 1,000 and over 1,000,000 stored keys
   (both sets stored first, each id requested until it was a MISS, then interleaved runs). Its own
   instance, with the 2 KB origin as upstream and coalescing off, so the million stores skip the
   router (below) and the fetch lease; neither is on the hit path.
3. Memory: VmRSS and VmHWM of the memory-tier cache-proxy of section 1, after its tier was filled
   past its bound with 100 KB entries, while wrk holds 1,000 connections on 2 KB hits (the target);
   then, for information, 1,000 connections on 100 KB hits.
4. MISS cost, as before: every request a new key, against an instant origin and a 5 ms origin,
   next to the origin direct.
Then one line per target.

cache-proxy has one upstream and the benchmark origin one body size, so the two cache-proxy
variants of section 1 reach the 2 KB and the 100 KB origin through a plain (non-caching) nginx
server that routes by path. Hits never reach it; misses (warm-up, the fill) pay one more hop.

Everything runs on this machine: wrk, the origins, Redis, the proxies, nginx and Varnish share the
cores, so only ratios measured in the same run mean anything. `--quick` (1 round of 2 s runs,
100,000 keys) checks that the script works; its numbers are not worth quoting.
"""
import argparse
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
MIB = 1024 * 1024


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
        # Own session, so stop() can kill the whole process group (nginx's workers, Varnish's child).
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


def wrk_command(url, seconds, connections, threads, script=None, script_args=()):
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        args += ["-s", script]
    # Arguments after the URL reach the script's init(args) as args[1], args[2], ...
    return args + [url] + (["--", *map(str, script_args)] if script_args else [])


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))

    def parse(text):
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        return to_ms(m.group(1), m.group(2))

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {
        "rps": rps,
        "p50": parse(lat["50"]),
        "p99": parse(lat["99"]),
        "requests": int(requests.group(1)) if requests else 0,
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        # Lines a script's done() prints: "name value".
        "script": dict(re.findall(r"^script (\S+) (\S+)$", out, re.M)),
    }


def wrk(url, seconds, connections, threads, script=None, script_args=()):
    out = subprocess.run(wrk_command(url, seconds, connections, threads, script, script_args),
                         capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def error_text(r):
    """Non-2xx responses and socket errors of a wrk run, "" when there were none."""
    parts = []
    if r["non2xx"]:
        parts.append(f"{r['non2xx']} non-2xx")
    if r["socket_errors"]:
        parts.append(f"socket errors: {r['socket_errors']}")
    return "; ".join(parts)


def fetch(port, method, path, body=None):
    """One request; returns (status, headers with lower-case names)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, {name.lower(): value for name, value in response.getheaders()}
    finally:
        conn.close()


def redis_command(port, *args):
    """One Redis command (RESP); returns the reply's text (status, integer or bulk string)."""
    request = f"*{len(args)}\r\n" + "".join(f"${len(str(a).encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request.encode())
        reply = b""
        while True:
            reply += s.recv(65536)
            if reply[:1] in b"+-:" and reply.endswith(b"\r\n"):
                return reply[1:-2].decode()
            if reply[:1] == b"$":
                head, _, rest = reply.partition(b"\r\n")
                if len(rest) >= int(head[1:]) + 2:
                    return rest[:int(head[1:])].decode()


def proc_status(pid):
    """VmRSS and VmHWM of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {name: int(fields[name].split()[0]) * 1024 for name in ["VmRSS", "VmHWM"]}


def raise_open_files(want):
    """wrk's sockets and the proxy's (it inherits the limit) need more than the usual 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))  # root may raise the hard limit
            return want
        except (ValueError, OSError):
            want = hard
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


NGINX_CONF = """
worker_processes {workers};
{user}
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;                    # as Debian's default nginx.conf: cached 100 KB bodies go out with sendfile
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=api:16m max_size=1g inactive=1h use_temp_path=off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    upstream small {{ server 127.0.0.1:{small}; keepalive 64; }}
    upstream big {{ server 127.0.0.1:{big}; keepalive 64; }}

    # nginx proxy_cache: the setup measured.
    server {{
        listen 127.0.0.1:{port};
        proxy_cache api;
        proxy_cache_methods GET HEAD POST;
        proxy_cache_key "$request_method$host$request_uri$request_body";
        proxy_cache_valid 200 1h;
        add_header X-Cache $upstream_cache_status;
        location /api/big {{ proxy_pass http://big; }}
        location / {{ proxy_pass http://small; }}
    }}

    # No cache: routes cache-proxy's misses to the right origin by path.
    server {{
        listen 127.0.0.1:{router};
        location /api/big {{ proxy_pass http://big; }}
        location / {{ proxy_pass http://small; }}
    }}
}}
"""

VARNISH_VCL = """
vcl 4.1;

backend small { .host = "127.0.0.1"; .port = "%(small)d"; }
backend big { .host = "127.0.0.1"; .port = "%(big)d"; }

sub vcl_recv {
    if (req.url ~ "^/api/big") {
        set req.backend_hint = big;
    } else {
        set req.backend_hint = small;
    }
    # Then the built-in vcl_recv: GET and HEAD are looked up, POST is passed to the origin.
}

sub vcl_backend_response {
    if (beresp.status == 200) {
        set beresp.ttl = 1h;
    }
}

sub vcl_deliver {
    if (obj.uncacheable) {
        set resp.http.X-Cache = "PASS";
    } elsif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
"""

# The MISS section's proxies (and scripts/compare-proxies.py's): /api/hit and /api/miss.
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

# The cache-proxy variants of the hit, key-count and memory sections.
HIT_PROXY_CONF = """
listen: 127.0.0.1:{port}
upstream: http://127.0.0.1:{origin}
redis:
  url: redis://127.0.0.1:{redis}/0
  timeout: 100ms
defaults:
  ttl: 1h
{extra_defaults}routes:
  - path: /api/small
  - path: /api/big
  - path: /api/big/*                # the memory section's fill: /api/big/fill?id=N
  - path: /api/post
    methods: [POST]                 # keyed on a SHA-256 of the body (body_key: raw), as nginx's $request_body
  - path: /api/keys/*               # the key-count section: /api/keys/<set>?id=N
    query: [id]
"""


def memory_section(max_bytes):
    return f"memory:\n  max_bytes: {max_bytes}\n"


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

POST_SCRIPT = """
-- POST /api/post keyed on the body: a fixed set of JSON bodies in turn, all hits after the warm-up.
-- args: the number of bodies
local requests = {}
local n = 0
init = function(args)
  for i = 1, tonumber(args[1]) do
    requests[i] = wrk.format("POST", "/api/post", {["Content-Type"] = "application/json"}, '{"user_id": ' .. i .. '}')
  end
end
request = function()
  n = n % #requests + 1
  return requests[n]
end
"""

PRELOAD_SCRIPT = """
-- Stores path?id=N for every N below count: thread i of the stride requests i, i+stride, ... over
-- and over; the first answer for an id is its MISS (the proxy stores it), later ones are HITs. A
-- thread stops itself once it has seen a MISS for each of its ids (so an id whose request was not
-- stored, or not sent, is simply asked again); the caller sees wrk's threads gone and ends it with
-- SIGINT. args: path, count, stride (wrk's thread count)
local counter = 0
local threads = {}
setup = function(thread)
  thread:set("first", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
init = function(args)
  path, count, stride = args[1], tonumber(args[2]), tonumber(args[3])
  next_id = first
  share = math.floor((count - first + stride - 1) / stride)  -- ids first, first+stride, ... below count
  stored, other = 0, 0
end
request = function()
  local id = next_id
  next_id = next_id + stride
  if next_id >= count then next_id = first end
  return wrk.format("GET", path .. "?id=" .. id)
end
response = function(status, headers, body)
  local outcome = headers["x-cache"] or headers["X-Cache"]
  if status == 200 and outcome == "MISS" then
    stored = stored + 1
    if stored >= share then wrk.thread:stop() end
  elseif status ~= 200 or outcome ~= "HIT" then
    other = other + 1  -- BYPASS (Redis too slow), errors: that id comes round again
  end
end
done = function(summary, latency, requests)
  local sum_stored, sum_other = 0, 0
  for _, t in ipairs(threads) do
    sum_stored = sum_stored + t:get("stored")
    sum_other = sum_other + t:get("other")
  end
  io.write("script stored " .. sum_stored .. "\\n")
  io.write("script other " .. sum_other .. "\\n")
end
"""

RANDOM_SCRIPT = """
-- GET path?id=<random id below count>. args: path, count
local counter = 0
setup = function(thread) thread:set("first", counter); counter = counter + 1 end
init = function(args)
  path, count = args[1], tonumber(args[2])
  math.randomseed(os.time() * 100 + first)
end
request = function()
  return wrk.format("GET", path .. "?id=" .. math.random(0, count - 1))
end
"""

POST_BODIES = 16
WORKLOADS = ["GET 2 KB", "GET 100 KB", "POST body-keyed"]
WORKLOAD_PATH = {"GET 2 KB": "/api/small", "GET 100 KB": "/api/big", "POST body-keyed": "/api/post"}
ORIGIN, MEMORY, REDIS, NGINX, VARNISH = "origin direct", "cache-proxy memory tier", "cache-proxy Redis only", "nginx proxy_cache", "Varnish"
SETUPS = [ORIGIN, MEMORY, REDIS, NGINX, VARNISH]


def kilo(value):
    return f"{value / 1000:.1f}k"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=BIN, help="directory of cache-proxy and cache-proxy-bench [.build/release]")
    parser.add_argument("--quick", action="store_true", help="check the script works: 1 round of 2 s runs, 100,000 keys")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the hit runs [2; quick 1]")
    parser.add_argument("--seconds", type=int, help="duration of each measured wrk run [5; quick 2]")
    parser.add_argument("--connections", default="32,128", help="wrk -c of the hit runs, comma-separated [32,128]")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t [2]")
    parser.add_argument("--keys", type=int, help="stored keys of the large key-count run [1000000; quick 100000]")
    parser.add_argument("--few-keys", type=int, default=1000, help="stored keys of the small key-count run [1000]")
    parser.add_argument("--rss-connections", type=int, default=1000, help="wrk -c while the RSS is read [1000]")
    parser.add_argument("--memory-max-bytes", type=int, default=64 * MIB, help="memory.max_bytes of the memory-tier variant [64 MiB]")
    parser.add_argument("--no-memory-key", action="store_true",
                        help="debugging, for a binary without the memory tier: no memory section in any config "
                             "(both variants are then Redis only)")
    parser.add_argument("--miss-connections", type=int, default=128, help="wrk -c of the MISS runs [128]")
    parser.add_argument("--origin-delay-ms", type=int, default=5, help="service time of the slow origin for the MISS latency runs [5]")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 2)
    seconds = args.seconds or (2 if args.quick else 5)
    many_keys = args.keys or (100_000 if args.quick else 1_000_000)
    connections = [int(c) for c in args.connections.split(",")]
    warmup = 1 if args.quick else 2  # seconds of the MISS section's warm-up runs (the hit runs': 1 s)

    varnishd = shutil.which("varnishd") or "/usr/sbin/varnishd"
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    for tool in ["wrk", nginx, varnishd, "redis-server"]:
        if not shutil.which(tool):
            sys.exit(f"{os.path.basename(tool)} is missing (make bench installs it)")
    for binary in ["cache-proxy", "cache-proxy-bench"]:
        if not os.access(f"{args.bin}/{binary}", os.X_OK):
            sys.exit(f"{args.bin}/{binary} is missing (make bench builds it)")
    open_files = raise_open_files(args.rss_connections + 4096)
    began = time.time()
    expected = (rounds * len(WORKLOADS) * len(connections) * len(SETUPS) * seconds + len(WORKLOADS) * len(SETUPS)
                + many_keys / 7000 + 2 * rounds * seconds + 2 * (seconds + 1) + 4 * (warmup + seconds) + 15)
    print(f"this takes about {expected / 60:.0f} minutes (storing {many_keys} keys at 7,000/s or more)", file=sys.stderr)

    work = tempfile.mkdtemp(prefix="cache-proxy-bench-")
    os.chmod(work, 0o755)  # nginx workers drop root privileges
    procs = Processes()
    try:
        ports = {name: free_port() for name in [
            "small", "big", "slow", "redis", "router", "nginx", "varnish", "memory", "redis-only", "keys", "miss", "slow-miss"]}

        def start_proxy(name, origin, template, memory, extra_defaults=""):
            with open(f"{work}/{name}.yaml", "w") as f:
                f.write(template.format(port=ports[name], origin=origin, redis=ports["redis"], extra_defaults=extra_defaults))
                f.write("" if args.no_memory_key else memory_section(memory))
            return procs.start([f"{args.bin}/cache-proxy", "--config", f"{work}/{name}.yaml", "--log-level", "warning"], stderr=None)

        origin = f"{args.bin}/cache-proxy-bench"
        procs.start([origin, "origin", "--port", str(ports["small"]), "--size", "2048"])
        procs.start([origin, "origin", "--port", str(ports["big"]), "--size", str(100 * 1024)])
        procs.start([origin, "origin", "--port", str(ports["slow"]), "--size", "2048", "--delay-ms", str(args.origin_delay_ms)])
        procs.start(["redis-server", "--port", str(ports["redis"]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        with open(f"{work}/nginx.conf", "w") as f:
            f.write(NGINX_CONF.format(dir=work, small=ports["small"], big=ports["big"], port=ports["nginx"], router=ports["router"],
                                      workers=os.cpu_count() or 2, user="user root;" if os.geteuid() == 0 else ""))
        procs.start([nginx, "-c", f"{work}/nginx.conf", "-p", work])
        with open(f"{work}/varnish.vcl", "w") as f:
            f.write(VARNISH_VCL % {"small": ports["small"], "big": ports["big"]})
        # -F: foreground; -j none: no privilege separation, so it runs as whoever runs this (root too)
        # with its working directory (-n) in the temporary directory.
        procs.start([varnishd, "-F", "-j", "none", "-a", f"127.0.0.1:{ports['varnish']}", "-f", f"{work}/varnish.vcl",
                     "-s", "malloc,256m", "-n", f"{work}/varnish"])
        memory_proxy = start_proxy("memory", ports["router"], HIT_PROXY_CONF, args.memory_max_bytes)
        start_proxy("redis-only", ports["router"], HIT_PROXY_CONF, 0)
        # No coalescing, so no fetch lease per miss: the million stores go faster; hits do not use it.
        start_proxy("keys", ports["small"], HIT_PROXY_CONF, 0, extra_defaults="  coalesce_timeout: 0s\n")
        start_proxy("miss", ports["small"], PROXY_CONF, args.memory_max_bytes)
        start_proxy("slow-miss", ports["slow"], PROXY_CONF, args.memory_max_bytes)
        scripts = {}
        for name, text in [("miss", MISS_SCRIPT), ("post", POST_SCRIPT), ("preload", PRELOAD_SCRIPT), ("random", RANDOM_SCRIPT)]:
            scripts[name] = f"{work}/{name}.lua"
            with open(scripts[name], "w") as f:
                f.write(text)
        for port in ports.values():
            wait_port(port, timeout=30)  # Varnish compiles its VCL with cc first

        setup_port = {MEMORY: ports["memory"], REDIS: ports["redis-only"], NGINX: ports["nginx"], VARNISH: ports["varnish"]}

        def target(setup, workload):
            """(url, script, script args) of one setup and workload."""
            if setup == ORIGIN:
                port = ports["big"] if workload == "GET 100 KB" else ports["small"]
            else:
                port = setup_port[setup]
            url = f"http://127.0.0.1:{port}{WORKLOAD_PATH[workload]}"
            return (url, scripts["post"], [POST_BODIES]) if workload.startswith("POST") else (url, None, [])

        # Warm the caches, and check every setup really answers from its cache.
        print(f"cache checks ({os.cpu_count()} cores, {open_files} open files allowed):", file=sys.stderr)
        for setup in [MEMORY, REDIS, NGINX, VARNISH]:
            port = setup_port[setup]
            for workload in WORKLOADS:
                path = WORKLOAD_PATH[workload]
                bodies = [f'{{"user_id": {i}}}' for i in range(1, POST_BODIES + 1)] if workload.startswith("POST") else [None]
                method = "POST" if workload.startswith("POST") else "GET"
                want = "PASS" if setup == VARNISH and method == "POST" else "HIT"
                for body in bodies:
                    for _ in range(2):
                        fetch(port, method, path, body)
                    status, headers = fetch(port, method, path, body)
                    if status != 200 or headers.get("x-cache") != want:
                        sys.exit(f"{setup}, {workload} {body or ''}: want 200 and X-Cache {want}, got {status} {headers}")
                detail = "; ".join(f"{h}: {headers[h]}" for h in ["cache-status", "x-varnish", "age"] if h in headers)
                print(f"  {setup:<24} {workload:<16} X-Cache: {want}   {detail}", file=sys.stderr)

        # 1. Hits, in interleaved rounds; the order of the setups turns each round.
        print("warm-up: 1 s per workload and setup", file=sys.stderr, flush=True)
        for workload in WORKLOADS:
            for setup in SETUPS:
                url, script, script_args = target(setup, workload)
                wrk(url, 1, max(connections), args.threads, script, script_args)
        results = {}
        for rnd in range(rounds):
            order = SETUPS[rnd % len(SETUPS):] + SETUPS[:rnd % len(SETUPS)]
            for workload in WORKLOADS:
                for conns in connections:
                    for setup in order:
                        url, script, script_args = target(setup, workload)
                        r = wrk(url, seconds, conns, args.threads, script, script_args)
                        results.setdefault((workload, conns, setup), []).append(r)
                        print(f"  round {rnd + 1}/{rounds} {workload:<16} c{conns:<4} {setup:<24} {r['rps']:>9.0f} req/s  "
                              f"p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms", file=sys.stderr, flush=True)
        best = {key: max(runs, key=lambda r: r["rps"]) for key, runs in results.items()}

        # 2. Key count: fill the memory-tier proxy past its bound first (section 3 needs it), then
        # store both key sets on the key-count proxy (Redis only), then interleaved runs on random ids.
        def preload(port, path, count, conns=64):
            """Stores path?id=0 .. count-1 (PRELOAD_SCRIPT); returns (seconds, wrk results)."""
            command = wrk_command(f"http://127.0.0.1:{port}{path}", 3600, conns, args.threads, scripts["preload"],
                                  [path, count, args.threads])
            started = time.time()
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = started + 60 + count / 1000  # at least 1,000 stores/s, or something is wrong

            def threads():
                return len(os.listdir(f"/proc/{proc.pid}/task")) - 1  # wrk's main thread stays

            # wrk's threads end themselves once their ids are stored (wait for them to start first).
            started_threads = False
            while proc.poll() is None and time.time() < deadline:
                running = threads()
                started_threads = started_threads or running > 0
                if started_threads and running == 0:
                    break
                time.sleep(0.02)
            elapsed = time.time() - started
            finished = proc.poll() is None and time.time() < deadline
            time.sleep(0.1)  # (its SIGINT handler is set right after the threads start)
            proc.send_signal(signal.SIGINT)  # wrk prints its summary and exits
            out, err = proc.communicate()
            if not finished:
                sys.exit(f"preload of {count} ids on {path} did not finish:\n{out}{err}")
            return elapsed, parse_wrk(out)

        def check_stored(port, path, count, samples=20):
            ids = sorted({(i * 7919) % count for i in range(samples)} | {0, count - 1})
            missing = [i for i in ids if fetch(port, "GET", f"{path}?id={i}")[1].get("x-cache") != "HIT"]
            if missing:
                print(f"  WARNING: {path}: ids {missing} of {len(ids)} sampled are not hits", file=sys.stderr)
            return len(ids) - len(missing), len(ids)

        fill_count = -(-args.memory_max_bytes * 5 // 4 // (100 * 1024))  # 1.25x the bound in 100 KB entries
        print(f"memory tier: filling with {fill_count} distinct 100 KB responses", file=sys.stderr, flush=True)
        fill_seconds, _ = preload(ports["memory"], "/api/big/fill", fill_count, conns=32)  # 100 KB stores: gently
        # The preload's requests were misses (stored in Redis); a memory tier fills from Redis hits.
        started = time.time()
        in_memory = sum("detail=memory" in fetch(ports["memory"], "GET", f"/api/big/fill?id={i}")[1].get("cache-status", "")
                        for _ in range(2) for i in range(fill_count))
        fill_seconds += time.time() - started
        print(f"  {in_memory} of {2 * fill_count} second-pass reads came from the memory tier", file=sys.stderr, flush=True)

        key_sets = [(args.few_keys, f"/api/keys/{args.few_keys}"), (many_keys, f"/api/keys/{many_keys}")]
        preloads = {}
        for count, path in key_sets:
            print(f"key count: storing {count} keys", file=sys.stderr, flush=True)
            elapsed, r = preload(ports["keys"], path, count)
            sampled = check_stored(ports["keys"], path, count)
            preloads[count] = (elapsed, r, sampled)
            print(f"  {count} keys in {elapsed:.1f} s ({count / elapsed:.0f} stores/s), {r['script'].get('other')} "
                  f"answers neither MISS nor HIT; {sampled[0]}/{sampled[1]} sampled ids hit", file=sys.stderr, flush=True)
        info = redis_command(ports["redis"], "INFO", "memory")
        redis_memory = int(re.search(r"used_memory:(\d+)", info).group(1))
        redis_keys = int(redis_command(ports["redis"], "DBSIZE"))
        key_results = {}
        for rnd in range(rounds):
            for count, path in (key_sets if rnd % 2 == 0 else key_sets[::-1]):
                r = wrk(f"http://127.0.0.1:{ports['keys']}{path}", seconds, max(connections), args.threads,
                        scripts["random"], [path, count])
                key_results.setdefault(count, []).append(r)
                print(f"  round {rnd + 1}/{rounds} random ids over {count:>8} keys  {r['rps']:>9.0f} req/s  "
                      f"p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms", file=sys.stderr, flush=True)
        key_best = {count: max(runs, key=lambda r: r["rps"]) for count, runs in key_results.items()}

        # 3. Memory: the memory-tier proxy, its tier filled above, at 1,000 connections of hits: 2 KB
        # (the target), then 100 KB (for information: every connection has a large body in flight).
        rss_before = proc_status(memory_proxy.pid)
        rss_runs = {}
        for workload in ["GET 2 KB", "GET 100 KB"]:
            url, _, _ = target(MEMORY, workload)
            for _ in range(3):  # the fill may have evicted it from the tier
                fetch(ports["memory"], "GET", WORKLOAD_PATH[workload])
            proc = subprocess.Popen(wrk_command(url, seconds + 1, args.rss_connections, args.threads),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            peak = 0
            while proc.poll() is None:  # the highest VmRSS seen while wrk runs
                peak = max(peak, proc_status(memory_proxy.pid)["VmRSS"])
                time.sleep(0.2)
            out, err = proc.communicate()
            if proc.returncode != 0:
                sys.exit(f"wrk -c{args.rss_connections} failed:\n{out}{err}")
            r = parse_wrk(out)
            rss_runs[workload] = (peak, proc_status(memory_proxy.pid)["VmHWM"], r)
            print(f"  c{args.rss_connections} {workload}: {r['rps']:.0f} req/s, VmRSS up to {peak / MIB:.1f} MiB "
                  f"{error_text(r)}", file=sys.stderr, flush=True)

        # 4. MISS cost (drop the key-count entries first, so Redis is as small as it used to be here).
        redis_command(ports["redis"], "FLUSHALL")
        miss_runs = [
            ("origin direct", f"http://127.0.0.1:{ports['small']}/api/hit", None),
            ("cache-proxy MISS", f"http://127.0.0.1:{ports['miss']}/api/miss", scripts["miss"]),
            (f"{args.origin_delay_ms}ms origin direct", f"http://127.0.0.1:{ports['slow']}/api/hit", None),
            (f"{args.origin_delay_ms}ms origin, proxy MISS", f"http://127.0.0.1:{ports['slow-miss']}/api/miss", scripts["miss"]),
        ]
        miss = {}
        for name, url, script in miss_runs:
            wrk(url, warmup, args.miss_connections, args.threads, script)
            miss[name] = wrk(url, seconds, args.miss_connections, args.threads, script)
            print(f"  {name:<28} {miss[name]['rps']:>9.0f} req/s", file=sys.stderr, flush=True)
    finally:
        procs.stop()
        shutil.rmtree(work, ignore_errors=True)

    # The report.
    print()
    if args.no_memory_key:
        print("*** --no-memory-key: no memory section in the configs, so both cache-proxy variants are Redis only ***")
        print()
    print(f"1. Hits: wrk -t{args.threads}, best of {rounds} interleaved round(s) of {seconds} s, "
          f"all on this machine ({os.cpu_count()} cores)")
    print(f"{'workload':<16} {'conns':>5}  {'setup':<24} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7}  {'rounds':<16} errors")
    for workload in WORKLOADS:
        for conns in connections:
            for setup in SETUPS:
                r = best[(workload, conns, setup)]
                label = setup + (" (pass)" if setup == VARNISH and workload.startswith("POST") else "")
                all_rounds = " ".join(kilo(x["rps"]) for x in results[(workload, conns, setup)])
                errors = "; ".join(filter(None, (error_text(x) for x in results[(workload, conns, setup)])))
                print(f"{workload:<16} {conns:>5}  {label:<24} {r['rps']:>9.0f} {r['p50']:>7.2f} {r['p99']:>7.2f}  "
                      f"{all_rounds:<16} {errors}")
    print()
    print("req/s ratios of the best rounds")
    print(f"{'workload':<16} {'conns':>5}  {'memory/nginx':>12} {'memory/Varnish':>14} {'Redis/nginx':>11} {'Redis/Varnish':>13}")
    ratio = {}
    for workload in WORKLOADS:
        for conns in connections:
            for variant in [MEMORY, REDIS]:
                for other in [NGINX, VARNISH]:
                    ratio[(workload, conns, variant, other)] = (
                        best[(workload, conns, variant)]["rps"] / best[(workload, conns, other)]["rps"])
            cells = [f"{ratio[(workload, conns, v, o)]:.2f}x" + ("*" if o == VARNISH and workload.startswith("POST") else "")
                     for v in [MEMORY, REDIS] for o in [NGINX, VARNISH]]
            print(f"{workload:<16} {conns:>5}  {cells[0]:>12} {cells[1]:>14} {cells[2]:>11} {cells[3]:>13}")
    print("* Varnish passes POST to the origin (built-in vcl_recv: only GET and HEAD are cached), so this is")
    print("  cache-proxy's hit against the origin through Varnish, not against a Varnish hit.")

    print()
    few, many = key_best[args.few_keys], key_best[many_keys]
    print(f"2. Key count: cache-proxy Redis only (own instance), random ids, wrk -c{max(connections)}, "
          f"best of {rounds} round(s) of {seconds} s")
    for count in [args.few_keys, many_keys]:
        elapsed, r, sampled = preloads[count]
        k = key_best[count]
        print(f"  {count:>9} keys: {k['rps']:>9.0f} req/s  p50 {k['p50']:.2f} ms  p99 {k['p99']:.2f} ms  "
              f"(rounds {' '.join(kilo(x['rps']) for x in key_results[count])}; stored in {elapsed:.1f} s, "
              f"{count / elapsed:.0f}/s, {sampled[0]}/{sampled[1]} sampled ids hit) "
              f"{error_text(k)}")
    print(f"  {many_keys} vs {args.few_keys} keys: {many['rps'] / few['rps']:.2f}x   "
          f"(both sets stored in one Redis: {redis_keys} keys, {redis_memory / MIB:.0f} MiB used_memory)")

    print()
    bound = args.memory_max_bytes
    print(f"3. Memory: cache-proxy memory tier (memory.max_bytes {bound / MIB:.0f} MiB"
          f"{', not configured: --no-memory-key' if args.no_memory_key else ''}), its tier filled with {fill_count} "
          f"100 KB entries ({fill_count * 100 * 1024 / MIB:.0f} MiB, in {fill_seconds:.1f} s), then wrk -c{args.rss_connections} hits")
    print(f"  before:           VmRSS {rss_before['VmRSS'] / MIB:.1f} MiB, VmHWM {rss_before['VmHWM'] / MIB:.1f} MiB "
          f"(VmHWM: the highest VmRSS since the start)")
    for workload, (peak, hwm, r) in rss_runs.items():
        print(f"  c{args.rss_connections} {workload:<10}: VmRSS up to {peak / MIB:.1f} MiB, then VmHWM {hwm / MIB:.1f} MiB; "
              f"{r['rps']:.0f} req/s, p99 {r['p99']:.2f} ms {error_text(r)}")
    print()
    print(f"4. MISS: wrk -t{args.threads} -c{args.miss_connections} -d{seconds}s, 2 KB body, every request a new key "
          f"({'no memory section' if args.no_memory_key else 'memory tier on, as section 1'})")
    print(f"{'setup':<28} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}  errors")
    for name, _, _ in miss_runs:
        r = miss[name]
        print(f"{name:<28} {r['rps']:>10.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}  {error_text(r)}")
    direct, proxy_miss = miss["origin direct"], miss["cache-proxy MISS"]
    slow_direct = miss[f"{args.origin_delay_ms}ms origin direct"]
    slow_miss = miss[f"{args.origin_delay_ms}ms origin, proxy MISS"]
    print(f"MISS p50 vs direct, {args.origin_delay_ms} ms origin:      {slow_miss['p50'] / slow_direct['p50']:.2f}x   (target <= 1.10x)")
    print(f"MISS p99 vs direct, {args.origin_delay_ms} ms origin:      {slow_miss['p99'] / slow_direct['p99']:.2f}x")
    print(f"MISS p50 vs direct, instant origin:   {proxy_miss['p50'] / direct['p50']:.2f}x   (saturated: both CPU-bound on shared cores)")
    print(f"MISS req/s vs direct, instant origin: {proxy_miss['rps'] / direct['rps']:.2f}x")

    # The targets: the lowest ratio over the workloads and connection counts each applies to.
    def lowest(variant, other, workloads):
        key = min(((w, c) for w in workloads for c in connections), key=lambda wc: ratio[(wc[0], wc[1], variant, other)])
        return ratio[(key[0], key[1], variant, other)], f"{key[0]} c{key[1]}"

    def verdict(ok):
        return "met" if ok else "NOT MET"

    print()
    print("targets")
    get_workloads = [w for w in WORKLOADS if w.startswith("GET")]
    for variant, other, workloads, want in [(MEMORY, NGINX, WORKLOADS, 1.5), (MEMORY, VARNISH, get_workloads, 1.5),
                                            (REDIS, NGINX, WORKLOADS, 1.0)]:
        value, where = lowest(variant, other, workloads)
        scope = "GET workloads" if workloads == get_workloads else "all workloads"
        print(f"  {variant} hit >= {want:.1f}x {other}: lowest {value:.2f}x ({where}; {scope}) -> {verdict(value >= want)}")
    keys_ratio = many["rps"] / few["rps"]
    print(f"  {many_keys} keys >= 0.9x {args.few_keys} keys: {keys_ratio:.2f}x -> {verdict(keys_ratio >= 0.9)}"
          + ("" if many_keys >= 1_000_000 else f"   (only {many_keys} keys: the target is for 1,000,000)"))
    limit = 64 * MIB + bound
    _, hwm, _ = rss_runs["GET 2 KB"]
    print(f"  RSS <= 64 MiB + memory bound ({limit / MIB:.0f} MiB) at {args.rss_connections} connections: "
          f"VmHWM {hwm / MIB:.1f} MiB after the 2 KB run -> {verdict(hwm <= limit)}")
    print(f"took {time.time() - began:.0f} s")


if __name__ == "__main__":
    main()
