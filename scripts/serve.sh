#!/usr/bin/env bash
# Serve the portal on http://127.0.0.1:5000 with gunicorn and the job worker beside it.
# First the database: migrations, rollups and (with --demo) the demo data, in one process.
# Ctrl-C (or TERM) stops both.
#   scripts/serve.sh [--demo]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5000}
case "${1:-}" in
  --demo) demo=(--demo) ;;
  "") demo=() ;;
  *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac

echo "== database: migrations, rollups${demo:+, demo data}"
# What it prints on stdout (the demo logins) is shown beside the address once the portal
# answers; its progress (stderr) shows as it goes.
said=$("$BIN/flask" --app portal prepare "${demo[@]}")

echo "== web server and worker"
# The worker is started again when it dies (a crash, the OOM killer), after a short wait
# that doubles while it keeps dying at once (1 s … 30 s): the web server stays up, and the
# new worker's sweepers send at once what the dead one left half-done. TERM (from stop)
# is passed on to the worker, which stops gracefully.
supervise_worker() {
  local pid="" delay=1 started status
  trap '[[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 0' TERM
  while :; do
    started=$SECONDS
    "$BIN/flask" --app portal worker &
    pid=$!
    status=0
    wait "$pid" || status=$?
    (( SECONDS - started > 60 )) && delay=1  # it ran a while: not a crash loop
    echo "$(date -u '+%F %T') worker exited (status $status); restarting it in ${delay}s" >&2
    sleep "$delay" &
    wait $! || true
    (( delay = delay < 30 ? delay * 2 : 30 )) || true
  done
}
supervise_worker &
worker=$!
# --preload: the app, the postal centroids and the routing snapshot are loaded once and the
# web workers fork from it (copy-on-write), instead of each loading them: half the start.
"$BIN/gunicorn" --bind "$HOST:$PORT" --workers "${WEB_WORKERS:-3}" --access-logfile - \
  --graceful-timeout 5 --preload "wsgi:app" &
web=$!

stop() {
  trap - INT TERM EXIT
  kill -TERM "$web" "$worker" 2>/dev/null || true
  wait "$web" "$worker" 2>/dev/null || true
  echo "stopped web and worker"
}
# Ctrl-C is how one stops it: a clean stop, not an error for make to report.
trap 'stop; exit 0' INT TERM
trap stop EXIT
# Say where the portal is once it answers, not before.
for _ in $(seq 1 600); do
  if "$BIN/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "http://$HOST:$PORT/readyz" 2>/dev/null; then
    [[ -n "$said" ]] && echo "$said"
    echo "Portal on http://$HOST:$PORT  (Ctrl-C stops it)"
    break
  fi
  kill -0 "$web" 2>/dev/null && kill -0 "$worker" 2>/dev/null || break
  sleep 0.2
done
# The web server stopping (a crash, say) stops the worker too; a dead worker is restarted.
wait -n "$web" "$worker"
