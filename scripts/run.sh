#!/usr/bin/env bash
# make run: a private Redis (unless one answers at the config's URL), the example Flask API
# (SQLite, seeded) on the config's upstream port, and cache-proxy in front. Ctrl-C stops
# everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-config/flask-api.yaml}
run_dir=.run
mkdir -p "$run_dir"

value() { sed -n "s/^[[:space:]]*$1:[[:space:]]*\"\{0,1\}\([^\" #]*\).*/\1/p" "$config" | head -1; }
listen=$(value listen)
upstream=$(value upstream)
redis_url=$(value url)
upstream_port=${upstream##*:}
upstream_port=${upstream_port%/}
redis_port=$(echo "$redis_url" | sed -n 's|redis://\([^@]*@\)\{0,1\}[^:/]*:\([0-9]*\).*|\2|p')
redis_port=${redis_port:-6379}

pids=()
cleanup() {
    trap - EXIT INT TERM
    echo
    echo "stopping: ${pids[*]:-nothing}"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

.build/release/cache-proxy check --config "$config" >/dev/null

if redis-cli -u "$redis_url" ping >/dev/null 2>&1; then
    echo "using the Redis that answers at $redis_url"
else
    echo "starting a private redis-server on 127.0.0.1:$redis_port"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$run_dir" >"$run_dir/redis.log" 2>&1 &
    pids+=($!)
fi

if port_busy "$upstream_port"; then
    echo "something already listens on the upstream port $upstream_port; using it as the API"
else
    echo "starting the example API (gunicorn, SQLite in $run_dir/app.db) on 127.0.0.1:$upstream_port"
    export SQLITE_PATH="$PWD/$run_dir/app.db"
    examples/flask-api/.venv/bin/python examples/flask-api/seed.py --users 300 --orders-per-user 3 >/dev/null
    examples/flask-api/.venv/bin/gunicorn --chdir examples/flask-api -w 2 -b "127.0.0.1:$upstream_port" \
        --access-logfile - app:app >"$run_dir/api.log" 2>&1 &
    pids+=($!)
fi

for _ in $(seq 100); do port_busy "$upstream_port" && break; sleep 0.1; done
port_busy "$upstream_port" || { echo "the API did not start; see $run_dir/api.log"; exit 1; }

if port_busy "${listen##*:}"; then
    echo "port ${listen##*:} is taken: stop what runs there or change listen: in $config"
    exit 1
fi

base="http://$listen"
cat <<EOT

cache-proxy on $base, in front of $upstream. Paste these (each twice: MISS, then HIT):

  curl -si $base/user/show_all_user/ | grep -i -E '^(x-cache|cache-status)'
  curl -si -X POST -H 'Content-Type: application/json' -d '{"nick_name": "user0001"}' $base/user/show_one_user/ | grep -i -E '^(x-cache|cache-status)|nick_name'
  curl -si -X GET -H 'Content-Type: application/json' -d '{"nick_name": "user0002"}' $base/order/list_per_users/ | grep -i -E '^(x-cache|cache-status)'

A write purges what it changes before it answers; the next read is a MISS with the new data:

  curl -s -X PUT -H 'Content-Type: application/json' -d '{"nick_name": "user0001", "name": "New Name"}' $base/user/edit_user/
  curl -si -X POST -H 'Content-Type: application/json' -d '{"nick_name": "user0001"}' $base/user/show_one_user/ | grep -i -E '^(x-cache|cache-status)|name'

Ctrl-C stops everything started here. Logs: $run_dir/.

EOT
.build/release/cache-proxy --config "$config" &
pids+=($!)
wait "${pids[-1]}"
