#!/usr/bin/env python3
"""make loadtest: the example Flask API under load, uncached and behind three caches, in one run.

Four setups, all on loopback, all started here on free ports and all stopped at the end:

  direct         the API itself: gunicorn, SQLite, no cache
  flask-caching  a second gunicorn of the same API with CACHE=flask-caching, i.e. the
                 reference's in-app cache (@cache.cached(timeout=30, query_string=True) on
                 the five read routes), with its own redis-server and its own SQLite file,
                 seeded identically (a copy of the same seeded database)
  cache-proxy    .build/release/cache-proxy in front of the direct instance, own redis-server,
                 with config/flask-api.yaml's routes, tags, body keys and invalidate rules as
                 written (only its listen, upstream, redis.url and admin.listen are replaced by
                 this run's ports, redis.timeout kept at 50ms and every ttl at 30 s)
  nginx          nginx proxy_cache in front of the direct instance, configured as a person
                 would for these routes (scripts/loadtest/nginx.conf.template)

Every cache keeps the five read routes 30 s. Both gunicorns run the same number of sync
workers (--api-workers, default 4 = 2 x the 2 cores this is meant for: a sync worker serves
one request at a time, so one per core would idle while a worker waits on SQLite or the
socket, and many more would only fight wrk, Redis and the proxies for the same cores).

Load test: three workloads, each against each setup, with wrk -t2 -c<connections> --latency:
  GET  /user/show_all_user/    all 300 seeded users (~45 KB of JSON)
  POST /user/show_one_user/    body {"nick_name": ...} cycling over user0001..user0300
  GET  /order/list_per_users/  a JSON body cycling the same way (a GET with a body)
The rotating bodies come from scripts/loadtest/rotate_nick.lua; a cache that keys on the
body warms 300 entries. Within each workload the setups take turns (round-robin, the first
one changing every round) and the whole sweep is repeated --rounds times; the rounds are
averaged, so machine noise hits every setup alike. Each measurement is preceded by a short
warm-up under the same load. The 30 s TTL runs out during the run, so the caches' numbers
include the periodic misses a 30 s TTL really costs.

Correctness, as real HTTP requests through each setup. It runs before the load test, while
every cache is still cold, so each check starts from a known state:
  user B after A      POST show_one_user for user A twice, then for user B: B's record?
  GET body keyed      GET list_per_users with A's body twice, then B's: B's orders?
  stale after create  warm show_all_user, create a brand-new user through the setup, then
                      poll show_all_user every 0.5 s until it lists the user (cap 35 s);
                      the four setups are polled in parallel, each with its own new user
  stale after edit    warm POST show_one_user for a seeded user (twice), change the user's name
                      with PUT /user/edit_user/ through the setup, then poll show_one_user
                      every 0.5 s until it answers the new name (cap 35 s); in parallel, each
                      setup with its own seeded user (user0011..user0014), whose seeded name is
                      put back directly on its API afterwards. It runs after stale after
                      create, by when the entries the first checks cached have expired
                      (flask-caching's show_one_user entry is any user's: its key has no body)
Writes through cache-proxy purge what they change (its invalidate rules), so both staleness
checks should read 0.0 s for it; flask-caching and nginx serve the old entry until its TTL.

Everything shares this machine's cores (wrk, both gunicorns, Redis, the proxies), so only
ratios measured in the same run mean anything. Progress goes to stderr, the tables to
stdout, and the files to loadtest-results/: results.csv, correctness.csv, chart.png and
summary.md (both tables as markdown).

Needs wrk, nginx, redis-server, .build/release/cache-proxy, and the example API's venv
(examples/flask-api/.venv) with scripts/loadtest-requirements.txt installed; run it with
that venv's python.
"""

import argparse
import csv
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLASK_DIR = ROOT / "examples" / "flask-api"
VENV_BIN = FLASK_DIR / ".venv" / "bin"
PROXY_BIN = ROOT / ".build" / "release" / "cache-proxy"
ASSETS = ROOT / "scripts" / "loadtest"
PROXY_CONFIG = ROOT / "config" / "flask-api.yaml"
RESULTS = ROOT / "loadtest-results"

SEED_USERS = 300
SEED_ORDERS_PER_USER = 3
TTL_SECONDS = 30
WRK_THREADS = 2
WRK_TIMEOUT = "10s"  # wrk leaves requests slower than its timeout out of the latencies
STALE_CAP_SECONDS = 35.0
POLL_SECONDS = 0.5
USER_A, USER_B = "user0001", "user0002"
EDITED_USER = {"direct": "user0011", "flask-caching": "user0012", "cache-proxy": "user0013", "nginx": "user0014"}

SETUPS = ("direct", "flask-caching", "cache-proxy", "nginx")
COLORS = {"direct": "#7f7f7f", "flask-caching": "#d62728", "cache-proxy": "#1f77b4", "nginx": "#2ca02c"}

STARTED = time.monotonic()


@dataclass(frozen=True)
class Workload:
    name: str
    method: str
    path: str
    rotating: bool  # body {"nick_name": ...} cycling over the seeded users


WORKLOADS = (
    Workload("GET /user/show_all_user/", "GET", "/user/show_all_user/", rotating=False),
    Workload("POST /user/show_one_user/", "POST", "/user/show_one_user/", rotating=True),
    Workload("GET /order/list_per_users/", "GET", "/order/list_per_users/", rotating=True),
)


@dataclass(frozen=True)
class Row:
    """One (workload, setup) result, averaged over the rounds."""
    workload: str
    setup: str
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    ratio_vs_direct: float


@dataclass(frozen=True)
class Verdict:
    """The correctness checks for one setup."""
    setup: str
    user_b_ok: bool
    user_b_got: str
    orders_ok: bool
    orders_got: str
    stale_after_create: float | None  # seconds; None: still stale at the cap
    stale_after_edit: float | None  # seconds; None: still stale at the cap


# ---------------------------------------------------------------- small helpers

def progress(message):
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request(port, method, path, payload=None, timeout=10.0):
    """One HTTP request on a new connection; payload (any method, GET too) is sent as JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def redis_command(port, command):
    """One inline Redis command; returns the raw reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command.encode() + b"\r\n")
        return s.recv(4096).decode().strip()


class Processes:
    """Everything started here, each in its own process group (gunicorn and nginx fork
    workers), logging to DIR/<name>.log; stop_all() SIGKILLs each group."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.procs = []

    def start(self, name, args, env=None):
        with open(self.log_dir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd=ROOT, start_new_session=True)
        self.procs.append((name, proc))

    def check_alive(self):
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name, lines=15):
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self, grace_seconds=5.0):
        """SIGINT to each process (a quick shutdown for gunicorn, nginx, redis-server and
        cache-proxy, whose masters then reap their workers), then SIGKILL whatever is left
        of each process group."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace_seconds
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()


# ---------------------------------------------------------------- starting the setups

@dataclass(frozen=True)
class Stack:
    port: dict  # setup -> port the clients use
    api_port: dict  # setup -> port of the API instance behind it
    flask_cache_redis_port: int


def api_env(db_path, cache_redis_port=None):
    """The example API's environment: SQLite at db_path, flask-caching on a given Redis or no cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE", "CACHE_REDIS_URL")}
    env["SQLITE_PATH"] = str(db_path)
    env["CACHE"] = "none"
    if cache_redis_port:
        env["CACHE"] = "flask-caching"
        env["CACHE_REDIS_URL"] = f"redis://127.0.0.1:{cache_redis_port}/0"
    return env


def seed_database(db_path, copy_path):
    """Seed one SQLite file and copy it, so both API instances start from identical data."""
    subprocess.run([str(VENV_BIN / "python"), str(FLASK_DIR / "seed.py"), "--users", str(SEED_USERS),
                    "--orders-per-user", str(SEED_ORDERS_PER_USER)],
                   env=api_env(db_path), cwd=ROOT, check=True, capture_output=True, timeout=120)
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{db_path}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{copy_path}{suffix}")


def start_redis(procs, name, port, work):
    procs.start(name, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", str(work)])


def start_api(procs, name, port, workers, env):
    procs.start(name, [str(VENV_BIN / "gunicorn"), "--chdir", str(FLASK_DIR), "-w", str(workers),
                       "-b", f"127.0.0.1:{port}", "app:app"], env=env)


# The settings of config/flask-api.yaml this run replaces, by dotted path ("routes[].ttl": every
# route's ttl); everything else (routes, tags, body_key, invalidate, key_prefix…) is kept as written.
PROXY_SETTINGS_REQUIRED = ("listen", "upstream", "redis.url", "redis.timeout", "defaults.ttl")
SETTING_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_]+):(?P<gap>[ \t]*)(?P<value>[^#\n]*?)"
                          r"(?P<comment>[ \t]+#.*)?$")


def proxy_config_text(source, settings):
    """source (config/flask-api.yaml's text) with the values of settings (dotted path -> value)
    replaced, line by line, so that its comments, routes and rules stay exactly as written.
    A top-level key is "key", one indented under a section "section.key", and a deeper one,
    i.e. inside a list item, "section[].key". A required setting that is missing raises."""
    section, found, lines = None, set(), []
    for line in source.splitlines():
        match = SETTING_LINE.match(line)
        if match:
            depth = len(match["indent"])
            if depth == 0:
                section = match["key"]
                path = section
            else:
                path = f"{section}.{match['key']}" if depth == 2 else f"{section}[].{match['key']}"
            if path in settings and match["value"]:
                line = f"{match['indent']}{match['key']}: {settings[path]}{match['comment'] or ''}"
                found.add(path)
        lines.append(line)
    missing = [path for path in PROXY_SETTINGS_REQUIRED if path not in found]
    if missing:
        raise RuntimeError(f"{PROXY_CONFIG.relative_to(ROOT)} has no {', '.join(missing)}: "
                           "update proxy_config_text's settings in scripts/loadtest.py")
    return "\n".join(lines) + "\n"


def start_cache_proxy(procs, work, port, api_port, redis_port, admin_port):
    """cache-proxy with config/flask-api.yaml's routes, tags, body keys and invalidate rules, on
    this run's ports: its listener, upstream, Redis and admin listener (never the config's
    8080/7000/6379/8081). The TTLs are forced to TTL_SECONDS, like the other caches'."""
    config = work / "cache-proxy.yaml"
    config.write_text(proxy_config_text(PROXY_CONFIG.read_text(), {
        "listen": f"127.0.0.1:{port}",
        "upstream": f"http://127.0.0.1:{api_port}",
        "redis.url": f"redis://127.0.0.1:{redis_port}/0",
        "redis.timeout": "50ms",
        "defaults.ttl": f"{TTL_SECONDS}s",
        "routes[].ttl": f"{TTL_SECONDS}s",
        "admin.listen": f"127.0.0.1:{admin_port}",
    }))
    checked = subprocess.run([str(PROXY_BIN), "check", "--config", str(config)], capture_output=True, text=True,
                             timeout=30)
    if checked.returncode != 0:
        raise RuntimeError(f"cache-proxy check rejects the config made from {PROXY_CONFIG.relative_to(ROOT)}:\n"
                           f"{(checked.stdout + checked.stderr).strip()}")
    procs.start("cache-proxy", [str(PROXY_BIN), "--config", str(config), "--log-level", "warning"])


def start_nginx(procs, work, port, api_port):
    template = (ASSETS / "nginx.conf.template").read_text()
    values = {"@DIR@": str(work), "@PORT@": str(port), "@UPSTREAM_PORT@": str(api_port),
              "@USER@": "user root;" if os.geteuid() == 0 else ""}
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    (work / "nginx.conf").write_text(template)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    procs.start("nginx", [nginx, "-c", str(work / "nginx.conf"), "-p", str(work)])


def wait_http(procs, port, timeout=30.0):
    """Until the server on port answers HTTP (any status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            request(port, "GET", "/", timeout=2)
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
    raise RuntimeError(f"no HTTP answer on 127.0.0.1:{port} after {timeout:.0f} s")


def start_stack(work, procs, api_workers):
    ports = {name: free_port()
             for name in ("api", "api-fc", "redis-fc", "redis-proxy", "proxy", "proxy-admin", "nginx")}
    progress(f"seeding {SEED_USERS} users x {SEED_ORDERS_PER_USER} orders (SQLite, one copy per API)")
    seed_database(work / "api.db", work / "api-fc.db")
    progress(f"starting 2 x gunicorn ({api_workers} sync workers each), 2 x redis-server, cache-proxy, nginx")
    start_redis(procs, "redis-fc", ports["redis-fc"], work)
    start_redis(procs, "redis-proxy", ports["redis-proxy"], work)
    start_api(procs, "api", ports["api"], api_workers, api_env(work / "api.db"))
    start_api(procs, "api-fc", ports["api-fc"], api_workers, api_env(work / "api-fc.db", ports["redis-fc"]))
    start_cache_proxy(procs, work, ports["proxy"], ports["api"], ports["redis-proxy"], ports["proxy-admin"])
    start_nginx(procs, work, ports["nginx"], ports["api"])
    for name in ("redis-fc", "redis-proxy"):
        wait_port(ports[name])
    for name in ("api", "api-fc", "proxy", "nginx"):
        wait_http(procs, ports[name])
    wait_port(ports["proxy-admin"])
    return Stack(
        port={"direct": ports["api"], "flask-caching": ports["api-fc"], "cache-proxy": ports["proxy"],
              "nginx": ports["nginx"]},
        api_port={"direct": ports["api"], "flask-caching": ports["api-fc"], "cache-proxy": ports["api"],
                  "nginx": ports["api"]},
        flask_cache_redis_port=ports["redis-fc"],
    )


def check_caching(stack):
    """Each cache really caches: a repeated GET /order/list_all_orders/ (a route no test uses)
    is a HIT in cache-proxy and nginx, and lands in flask-caching's Redis."""
    path = "/order/list_all_orders/"
    for setup, header in (("cache-proxy", "x-cache"), ("nginx", "x-cache-status")):
        replies = [request(stack.port[setup], "GET", path) for _ in range(2)]
        if replies[-1].status != 200 or replies[-1].headers.get(header) != "HIT":
            raise RuntimeError(f"{setup} does not cache {path}: HTTP {replies[-1].status}, "
                               f"{header}: {replies[-1].headers.get(header)}")
    request(stack.port["flask-caching"], "GET", path)
    keys = redis_command(stack.flask_cache_redis_port, "DBSIZE")
    if keys in (":0", ""):
        raise RuntimeError(f"flask-caching stored nothing in its Redis (DBSIZE {keys!r})")


# ---------------------------------------------------------------- load test

def to_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[match.group(2)]


def parse_wrk(output):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", output, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": to_ms(latency.get("50", "")),
        "p99": to_ms(latency.get("99", "")),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, re.findall(r"\d+", socket_errors.group(1)))) if socket_errors else 0,
    }


def run_wrk(port, workload, seconds, connections):
    args = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", WRK_TIMEOUT]
    if workload.rotating:
        args += ["-s", str(ASSETS / "rotate_nick.lua")]
    args.append(f"http://127.0.0.1:{port}{workload.path}")
    if workload.rotating:
        args += ["--", workload.method, workload.path, str(SEED_USERS)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse_wrk(done.stdout)


def load_test(stack, args):
    """wrk over every (workload, setup), interleaved; returns (workload, setup) -> [per-round results]."""
    samples = defaultdict(list)
    total = args.rounds * len(WORKLOADS) * len(SETUPS)
    done = 0
    for round_index in range(args.rounds):
        for workload in WORKLOADS:
            shift = round_index % len(SETUPS)
            for setup in SETUPS[shift:] + SETUPS[:shift]:
                port = stack.port[setup]
                if args.warmup > 0:
                    run_wrk(port, workload, args.warmup, args.connections)
                result = run_wrk(port, workload, args.seconds, args.connections)
                samples[(workload.name, setup)].append(result)
                done += 1
                progress(f"{done:2d}/{total} round {round_index + 1}  {workload.name:<27} {setup:<13} "
                         f"{result['rps']:9.0f} req/s  p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms"
                         f"  non-2xx {result['non2xx']}" + (f"  socket errors {result['socket_errors']}"
                                                             if result["socket_errors"] else ""))
    return samples


def summarize(samples):
    rows = []
    for workload in WORKLOADS:
        direct_rps = statistics.mean(r["rps"] for r in samples[(workload.name, "direct")])
        for setup in SETUPS:
            runs = samples[(workload.name, setup)]
            rps = statistics.mean(r["rps"] for r in runs)
            rows.append(Row(workload.name, setup, rps,
                            statistics.mean(r["p50"] for r in runs),
                            statistics.mean(r["p99"] for r in runs),
                            sum(r["non2xx"] for r in runs),
                            sum(r["socket_errors"] for r in runs),
                            rps / direct_rps if direct_rps else float("nan")))
    return rows


# ---------------------------------------------------------------- correctness

def nick_of(reply):
    data = reply.json()
    if reply.status != 200 or not isinstance(data, dict):
        return f"HTTP {reply.status}"
    return str(data.get("nick_name"))


def check_user_b_after_a(port):
    """POST show_one_user for A twice (now cached), then for B: is it B's record?"""
    for _ in range(2):
        request(port, "POST", "/user/show_one_user/", {"nick_name": USER_A})
    got = nick_of(request(port, "POST", "/user/show_one_user/", {"nick_name": USER_B}))
    return got == USER_B, got


def check_get_body_keyed(port):
    """GET list_per_users with A's body twice (now cached), then B's: are these B's orders?"""
    for _ in range(2):
        request(port, "GET", "/order/list_per_users/", {"nick_name": USER_A})
    reply = request(port, "GET", "/order/list_per_users/", {"nick_name": USER_B})
    orders = reply.json()
    if reply.status != 200 or not isinstance(orders, list):
        return False, f"HTTP {reply.status}"
    owners = sorted({str(order.get("nick_name")) for order in orders if isinstance(order, dict)})
    return owners == [USER_B], "+".join(owners) or "no orders"


def new_user(nick):
    return {"nick_name": nick, "name": f"Load Test {nick}", "password": "secret", "cpf": "12345678901",
            "email": f"{nick}@example.com", "phone_number": "+55 11 900000000"}


def listed_nicks(reply):
    users = reply.json() if reply.status == 200 else None
    return {u.get("nick_name") for u in users if isinstance(u, dict)} if isinstance(users, list) else set()


def seconds_until(port, method, path, payload, done):
    """Poll port with one request every POLL_SECONDS until done(reply), starting now: the
    seconds that took, or None at STALE_CAP_SECONDS."""
    start = time.monotonic()
    while True:
        if done(request(port, method, path, payload)):
            return time.monotonic() - start
        if time.monotonic() - start + POLL_SECONDS > STALE_CAP_SECONDS:
            return None
        time.sleep(POLL_SECONDS)


def seconds_until_listed(port, nick):
    """Warm show_all_user, create nick, poll show_all_user until it lists nick: seconds, or None at the cap."""
    request(port, "GET", "/user/show_all_user/")
    created = request(port, "POST", "/user/create_user/", new_user(nick))
    if created.status != 201:
        raise RuntimeError(f"create_user {nick} answered HTTP {created.status}: {created.body[:200]!r}")
    return seconds_until(port, "GET", "/user/show_all_user/", None, lambda reply: nick in listed_nicks(reply))


def name_of(reply):
    data = reply.json()
    return data.get("name") if reply.status == 200 and isinstance(data, dict) else None


def seconds_until_renamed(port, nick, new_name):
    """Warm show_one_user for nick (twice: now cached), rename nick to new_name through the same
    port, poll show_one_user until it answers new_name: seconds, or None at the cap."""
    for _ in range(2):
        request(port, "POST", "/user/show_one_user/", {"nick_name": nick})
    edited = request(port, "PUT", "/user/edit_user/", {"nick_name": nick, "name": new_name})
    if edited.status != 200:
        raise RuntimeError(f"edit_user {nick} answered HTTP {edited.status}: {edited.body[:200]!r}")
    return seconds_until(port, "POST", "/user/show_one_user/", {"nick_name": nick},
                         lambda reply: name_of(reply) == new_name)


def in_parallel(function, args_by_setup):
    """function(*args) for every setup at once: setup -> result."""
    with ThreadPoolExecutor(max_workers=len(args_by_setup)) as pool:
        futures = {setup: pool.submit(function, *args) for setup, args in args_by_setup.items()}
        return {setup: future.result() for setup, future in futures.items()}


def staleness_after_create(stack):
    """seconds_until_listed for every setup at once, each with its own new user; the users are
    deleted again afterwards (directly on the API) so the load test sees the seeded data."""
    nicks = {setup: f"loadtest-{setup}-{os.getpid()}" for setup in SETUPS}
    try:
        return in_parallel(seconds_until_listed, {setup: (stack.port[setup], nicks[setup]) for setup in SETUPS})
    finally:
        for setup, nick in nicks.items():
            try:
                request(stack.api_port[setup], "DELETE", "/user/delete_user/", {"nick_name": nick})
            except (OSError, http.client.HTTPException):
                pass


def staleness_after_edit(stack):
    """seconds_until_renamed for every setup at once, each with its own seeded user (EDITED_USER:
    direct, cache-proxy and nginx share one API) and a new name no one had; each user gets its
    seeded name back afterwards, directly on its setup's API, so the load test sees the seeded
    data. The seeded names are read from the uncached direct API (both databases are copies
    of one seed)."""
    seeded = {setup: name_of(request(stack.port["direct"], "POST", "/user/show_one_user/", {"nick_name": nick}))
              for setup, nick in EDITED_USER.items()}
    for setup, name in seeded.items():
        if name is None:
            raise RuntimeError(f"seeded user {EDITED_USER[setup]} is missing from the direct API")
    new_names = {setup: f"Edited by loadtest {os.getpid()}.{time.time_ns()} ({setup})" for setup in SETUPS}
    try:
        return in_parallel(seconds_until_renamed,
                           {setup: (stack.port[setup], EDITED_USER[setup], new_names[setup]) for setup in SETUPS})
    finally:
        for setup, nick in EDITED_USER.items():
            try:
                request(stack.api_port[setup], "PUT", "/user/edit_user/", {"nick_name": nick, "name": seeded[setup]})
            except (OSError, http.client.HTTPException):
                pass


def correctness(stack):
    progress("correctness: user B after A, GET body keyed")
    checks = {setup: (check_user_b_after_a(stack.port[setup]), check_get_body_keyed(stack.port[setup]))
              for setup in SETUPS}
    polling = f"all setups in parallel, polled every {POLL_SECONDS} s, cap {STALE_CAP_SECONDS:.0f} s"
    progress(f"correctness: stale after create ({polling})")
    after_create = staleness_after_create(stack)
    progress("correctness: stale after create: "
             + ", ".join(f"{setup} {stale_text(after_create[setup])}" for setup in SETUPS))
    progress(f"correctness: stale after edit ({polling})")
    after_edit = staleness_after_edit(stack)
    verdicts = []
    for setup in SETUPS:
        (user_ok, user_got), (orders_ok, orders_got) = checks[setup]
        verdicts.append(Verdict(setup, user_ok, user_got, orders_ok, orders_got, after_create[setup],
                                after_edit[setup]))
        progress(f"correctness {setup:<13} user B after A: {yes_no(user_ok)}  GET body keyed: {yes_no(orders_ok)}"
                 f"  stale after create: {stale_text(after_create[setup])}"
                 f"  stale after edit: {stale_text(after_edit[setup])}")
    return verdicts


# ---------------------------------------------------------------- output

def yes_no(ok):
    return "yes" if ok else "no"


def stale_text(seconds):
    return f">{STALE_CAP_SECONDS:.0f} s" if seconds is None else f"{seconds:.1f} s"


def stale_csv(seconds):
    return f">{STALE_CAP_SECONDS:.0f}" if seconds is None else f"{seconds:.1f}"


def fresh(seconds):
    """The first read after the write already had it (polled right after the write's answer)."""
    return seconds is not None and seconds < POLL_SECONDS


def result_note(row):
    wrong = row.setup == "flask-caching" and any(w.rotating and w.name == row.workload for w in WORKLOADS)
    return "wrong answers (1)" if wrong else ""


FOOTNOTES = [
    "(1) flask-caching's key is the path + query string only: on the rotating-body workloads every "
    "request gets the first caller's cached answer (another user's record or orders). Fast, and wrong: "
    "see the correctness table.",
    "Rotating bodies cycle over user0001..user0300, so caches that key on the body (cache-proxy, nginx) "
    "warm 300 entries per route; with the 30 s TTL they expire and refill during the run.",
]

def correctness_notes(verdicts):
    """Footnotes for the correctness table; the staleness ones only where that is what was measured."""
    by_setup = {v.setup: v for v in verdicts}
    stale = {v.setup: (v.stale_after_create, v.stale_after_edit) for v in verdicts}
    notes = [f"Stale after create: seconds until a user created through the setup shows up in "
             f"GET /user/show_all_user/ through the same setup; stale after edit: seconds until a name "
             f"changed through the setup (PUT /user/edit_user/) shows up in POST /user/show_one_user/ "
             f"through the same setup, which had cached the old record (polled every {POLL_SECONDS} s "
             f"from the write's answer on, cap {STALE_CAP_SECONDS:.0f} s).",
             "flask-caching ignores the request body: B gets A's cached record and A's orders."]
    proxy = stale.get("cache-proxy", ())
    if proxy and all(fresh(seconds) for seconds in proxy):
        lagging = [setup for setup in ("flask-caching", "nginx")
                   if setup in by_setup and not any(fresh(seconds) for seconds in stale[setup])]
        note = ("cache-proxy invalidates on writes (config/flask-api.yaml's invalidate rules): it purges the "
                "written user's tags (edit_user: user:<nick_name> and show_all_user; create_user: show_all_user) "
                "before the write's answer is sent, so the next read is a MISS with the new data.")
        if lagging:
            note += (f" {' and '.join(lagging)} keep serving the old entry until its {TTL_SECONDS} s TTL runs out "
                     "(neither has invalidation).")
        notes.append(note)
    elif proxy:
        notes.append("cache-proxy was still stale after a write through it: its invalidate rules "
                     "(config/flask-api.yaml) did not purge the entry, which lived until its "
                     f"{TTL_SECONDS} s TTL ran out, as with flask-caching and nginx proxy_cache (which have no "
                     "invalidation); see its log.")
    if any(seconds is None or seconds > TTL_SECONDS for seconds in stale.get("nginx", ())):
        notes.append("nginx counts proxy_cache_valid in whole seconds and still serves an entry during the "
                     f"second its TTL ends, so its entries live up to ~{TTL_SECONDS + 1} s.")
    return notes


def results_table(rows):
    header = ["workload", "setup", "req/s", "p50 ms", "p99 ms", "non-2xx", "vs direct", "note"]
    body = [[r.workload, r.setup, f"{r.rps:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
             str(r.non2xx) + (f" (+{r.socket_errors} socket errors)" if r.socket_errors else ""),
             f"{r.ratio_vs_direct:.2f}x", result_note(r)] for r in rows]
    return header, body


def correctness_table(verdicts):
    header = ["setup", "user B after A", "GET body keyed", "stale after create", "stale after edit"]
    body = [[v.setup, f"{yes_no(v.user_b_ok)} (got {v.user_b_got})",
             f"{yes_no(v.orders_ok)} (got orders of {v.orders_got})", stale_text(v.stale_after_create),
             stale_text(v.stale_after_edit)]
            for v in verdicts]
    return header, body


def format_text(header, body):
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    numeric = {i for i in range(len(header)) if all(re.match(r"^[\d.]+x?( |$)", line[i]) for line in body)}
    lines = []
    for line in [header] + body:
        cells = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(line)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_markdown(header, body):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell or " " for cell in line) + " |" for line in body]
    return "\n".join(lines)


def run_description(args):
    return (f"{os.cpu_count()} cores, wrk -t{WRK_THREADS} -c{args.connections} -d{args.seconds}s --latency, "
            f"mean of {args.rounds} round(s), loopback")


def write_results_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["workload", "setup", "rps", "p50_ms", "p99_ms", "non2xx", "ratio_vs_direct"])
        for r in rows:
            writer.writerow([r.workload, r.setup, f"{r.rps:.1f}", f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}",
                             r.non2xx, f"{r.ratio_vs_direct:.3f}"])


def write_correctness_csv(verdicts, path):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["setup", "user_b_after_a", "user_b_got", "get_body_keyed", "get_body_got_orders_of",
                         "stale_after_create_s", "stale_after_edit_s"])
        for v in verdicts:
            writer.writerow([v.setup, yes_no(v.user_b_ok), v.user_b_got, yes_no(v.orders_ok), v.orders_got,
                             stale_csv(v.stale_after_create), stale_csv(v.stale_after_edit)])


def write_chart(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_key = {(r.workload, r.setup): r for r in rows}
    fig, axes = plt.subplots(1, 2, figsize=(15, 6))
    width = 0.8 / len(SETUPS)
    panels = ((axes[0], "rps", "requests/s (log scale)"), (axes[1], "p99_ms", "p99 latency, ms (log scale)"))
    for ax, field, label in panels:
        for i, setup in enumerate(SETUPS):
            xs = [w + (i - (len(SETUPS) - 1) / 2) * width for w in range(len(WORKLOADS))]
            values = [getattr(by_key[(w.name, setup)], field) for w in WORKLOADS]
            bars = ax.bar(xs, values, width, label=setup, color=COLORS[setup])
            ax.bar_label(bars, fmt="%.0f" if field == "rps" else "%.1f", fontsize=7, padding=2)
        ax.set_xticks(range(len(WORKLOADS)), [w.name.replace(" /", "\n/") for w in WORKLOADS])
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 2)  # room for the value labels
        ax.set_ylabel(label)
        ax.set_xlabel("workload")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_title("throughput (higher is better)")
    axes[1].set_title("p99 latency (lower is better)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="setup", loc="lower center", ncol=len(SETUPS))
    fig.suptitle(f"Example API load test: {title}\n"
                 "flask-caching's rotating-body bars are wrong answers served fast (its key ignores the body)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_summary(path, args, rows, verdicts):
    parts = ["## Load test: the example API direct, with flask-caching, behind cache-proxy and nginx", "",
             f"`make loadtest` ({run_description(args)}; "
             f"gunicorn {args.api_workers} sync workers, SQLite, "
             f"{SEED_USERS} users x {SEED_ORDERS_PER_USER} orders).", "",
             format_markdown(*results_table(rows)), ""]
    parts += [f"{note}  " for note in FOOTNOTES] + [""]
    if verdicts:
        parts += ["### Correctness", "", format_markdown(*correctness_table(verdicts)), ""]
        parts += [f"- {note}" for note in correctness_notes(verdicts)] + [""]
    parts += ["![load test chart](chart.png)", ""]
    path.write_text("\n".join(parts))


def report(args, rows, verdicts):
    print()
    print(f"Load test: {run_description(args)}")
    print(format_text(*results_table(rows)))
    for note in FOOTNOTES:
        print(note)
    if verdicts:
        print()
        print("Correctness (real requests through each setup):")
        print(format_text(*correctness_table(verdicts)))
        for note in correctness_notes(verdicts):
            print(f"- {note}")
    RESULTS.mkdir(exist_ok=True)
    write_results_csv(rows, RESULTS / "results.csv")
    if verdicts:
        write_correctness_csv(verdicts, RESULTS / "correctness.csv")
    write_chart(rows, RESULTS / "chart.png", run_description(args))
    write_summary(RESULTS / "summary.md", args, rows, verdicts)
    print()
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in sorted(RESULTS.iterdir()))}")


# ---------------------------------------------------------------- main

def check_prerequisites():
    missing = [tool for tool in ("wrk", "redis-server") if not shutil.which(tool)]
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        missing.append("nginx")
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (apt-get install -y wrk nginx-light redis-server)")
    if not PROXY_BIN.exists():
        sys.exit(f"{PROXY_BIN.relative_to(ROOT)} is missing: build it first (make release)")
    if not (VENV_BIN / "gunicorn").exists():
        sys.exit(f"{VENV_BIN.relative_to(ROOT)}/gunicorn is missing (make flask-venv)")
    if importlib.util.find_spec("matplotlib") is None:
        sys.exit("matplotlib is missing: run this with examples/flask-api/.venv/bin/python after "
                 "pip install -r scripts/loadtest-requirements.txt")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=7, help="duration of each measurement, s [7]")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up before each measurement, s; 0: none [1]")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c [32]")
    parser.add_argument("--rounds", type=int, default=2, help="sweeps over all workloads and setups, averaged [2]")
    parser.add_argument("--api-workers", type=int, default=4, help="gunicorn sync workers per API instance [4]")
    parser.add_argument("--skip-correctness", action="store_true", help="only the load test")
    args = parser.parse_args()
    if args.seconds < 1 or args.rounds < 1 or args.connections < WRK_THREADS or args.api_workers < 1 or args.warmup < 0:
        parser.error("need --seconds >= 1, --rounds >= 1, --connections >= 2, --api-workers >= 1, --warmup >= 0")
    return args


def main():
    args = parse_args()
    check_prerequisites()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    work = Path(tempfile.mkdtemp(prefix="cache-proxy-loadtest-"))
    os.chmod(work, 0o755)  # nginx workers run as another user unless we are root
    procs = Processes(work)
    try:
        stack = start_stack(work, procs, args.api_workers)
        check_caching(stack)
        verdicts = None if args.skip_correctness else correctness(stack)
        progress(f"load test: {len(WORKLOADS)} workloads x {len(SETUPS)} setups x {args.rounds} round(s), "
                 f"{args.warmup} s warm-up + {args.seconds} s each")
        samples = load_test(stack, args)
        procs.check_alive()
    except RuntimeError as error:
        sys.exit(f"loadtest failed: {error}")
    except KeyboardInterrupt:
        sys.exit("interrupted; stopped everything started here")
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    report(args, summarize(samples), verdicts)
    progress("done")


if __name__ == "__main__":
    main()
