#!/usr/bin/env bash
# Make PostgreSQL and Redis answer at TEST_DATABASE_URL and REDIS_URL (and, with --browser, put
# Debian's Chromium in place) for `make test` and `make bench`.
#
# What already answers is left alone. What does not is provisioned on a Debian machine where we
# are root: Debian's packages are installed (one `apt-get update`, only when something is
# missing), the local cluster trusts 127.0.0.1 and ::1, and the servers are started. Anywhere
# else, or with TRACKER_PROVISION=0, it stops at once with a message saying how to provide them.
set -euo pipefail

DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tracker}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
PROVISION=${TRACKER_PROVISION:-1}
WANT_BROWSER=false
[ "${1:-}" = "--browser" ] && WANT_BROWSER=true

say() { printf 'services: %s\n' "$*" >&2; }

# scheme://[user[:password]@]host[:port][/path] -> the part asked for
url_part() {
  local rest=${1#*://} part=$2 auth="" hostport path=""
  if [[ $rest == */* ]]; then path=${rest#*/}; rest=${rest%%/*}; fi
  if [[ $rest == *@* ]]; then auth=${rest%@*}; rest=${rest##*@}; fi
  hostport=$rest
  case $part in
    user) printf '%s' "${auth%%:*}" ;;
    host) local h=${hostport%:*}; [[ $hostport == *:* ]] || h=$hostport; h=${h#[}; printf '%s' "${h%]}" ;;
    port) [[ $hostport == *:* ]] && printf '%s' "${hostport##*:}" ;;
    path) printf '%s' "${path%%\?*}" ;;
  esac
}

PG_USER=$(url_part "$DATABASE_URL" user); PG_USER=${PG_USER:-postgres}
PG_HOST=$(url_part "$DATABASE_URL" host); PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=$(url_part "$DATABASE_URL" port); PG_PORT=${PG_PORT:-5432}
PG_DB=$(url_part "$DATABASE_URL" path); PG_DB=${PG_DB:-tracker}
REDIS_HOST=$(url_part "$REDIS_URL" host); REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=$(url_part "$REDIS_URL" port); REDIS_PORT=${REDIS_PORT:-6379}

# A TCP connect answers at once on a closed local port; the timeout covers a silent remote host.
answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
is_local() { [[ $1 == 127.* || $1 == localhost || $1 == ::1 ]]; }

missing=()
answers "$PG_HOST" "$PG_PORT" || missing+=("PostgreSQL at $PG_HOST:$PG_PORT")
answers "$REDIS_HOST" "$REDIS_PORT" || missing+=("Redis at $REDIS_HOST:$REDIS_PORT")
browser_missing=false
$WANT_BROWSER && [ ! -x /usr/bin/chromium ] && browser_missing=true
[ ${#missing[@]} -eq 0 ] && ! $browser_missing && exit 0

refuse() {
  cat >&2 <<EOF
services: not reachable: $(IFS=,; echo "${missing[*]:-}") ($1).
  Provide them and point the tests at them, e.g.
    make test TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/tracker REDIS_URL=redis://HOST:6379/0
  or start the bundled ones with: docker compose --profile bundled up -d db redis
  (as root on Debian, make test installs and starts them itself unless TRACKER_PROVISION=0).
EOF
  exit 2
}
if [ ${#missing[@]} -gt 0 ]; then
  [ "$PROVISION" = "0" ] && refuse "provisioning is off: TRACKER_PROVISION=0"
  [ -f /etc/debian_version ] || refuse "this is not a Debian machine"
  [ "$(id -u)" = 0 ] || refuse "installing them needs root"
  for host in "$PG_HOST" "$REDIS_HOST"; do
    is_local "$host" || refuse "$host is not this machine, so it cannot be provisioned here"
  done
fi

# --- packages: one apt-get update, only when a package is missing ----------------------------
packages=()
answers "$PG_HOST" "$PG_PORT" || compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || packages+=(postgresql)
answers "$REDIS_HOST" "$REDIS_PORT" || command -v redis-server >/dev/null || packages+=(redis-server)
$browser_missing && packages+=(chromium)
if [ ${#packages[@]} -gt 0 ]; then
  say "installing Debian's ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d 101: the packages must not try to start services through an init system that may
  # be absent; this script starts them itself.
  policy=/usr/sbin/policy-rc.d; own_policy=false
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; own_policy=true; fi
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  $own_policy && rm -f $policy
fi

# --- PostgreSQL: a local cluster that trusts loopback, started ------------------------------
wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  say "$what did not answer within 30 s"; return 1
}
if ! answers "$PG_HOST" "$PG_PORT"; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  cluster=tracker
  # Reuse the cluster that listens on the port if there is one, else make ours on it.
  for conf in /etc/postgresql/"$version"/*/postgresql.conf; do
    [ -f "$conf" ] || continue
    port=$(sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$conf")
    if [ "${port:-5432}" = "$PG_PORT" ]; then cluster=$(basename "$(dirname "$conf")"); break; fi
  done
  if [ ! -f "/etc/postgresql/$version/$cluster/postgresql.conf" ]; then
    say "creating PostgreSQL $version cluster '$cluster' on port $PG_PORT"
    pg_createcluster --port "$PG_PORT" "$version" "$cluster" >/dev/null
  fi
  hba=/etc/postgresql/$version/$cluster/pg_hba.conf
  if ! grep -q 'llmops-tracker' "$hba"; then
    # Prepended: pg_hba.conf is read top-down, so these win over Debian's password rules.
    { echo "# llmops-tracker tests: loopback only, no password (scripts/services.sh)"
      echo "host all all 127.0.0.1/32 trust"
      echo "host all all ::1/128 trust"
      cat "$hba"; } >"$hba.new" && mv "$hba.new" "$hba" && chown postgres:postgres "$hba"
  fi
  conf_d=/etc/postgresql/$version/$cluster/conf.d
  mkdir -p "$conf_d"
  # A disposable test cluster: durability is not needed, and the suite creates many databases.
  cat >"$conf_d/llmops-tracker.conf" <<EOF
listen_addresses = '127.0.0.1,::1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  # pg_ctl sends the server's stdin to /dev/null as the postgres user: a /dev/null that only root
  # may open (left so by a root process's chmod) stops the server with "Permission denied".
  if [ -c /dev/null ] && [ "$(stat -c %a /dev/null)" != 666 ]; then
    say "/dev/null has mode $(stat -c %a /dev/null); restoring 666 so PostgreSQL can start"
    chmod 666 /dev/null
  fi
  say "starting PostgreSQL $version/$cluster"
  pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
  wait_for "PostgreSQL" pg_isready -h "$PG_HOST" -p "$PG_PORT" -q
  if [ "$PG_USER" != postgres ]; then
    su postgres -c "psql -p $PG_PORT -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'\"" | grep -q 1 ||
      su postgres -c "psql -p $PG_PORT -qc 'CREATE ROLE \"$PG_USER\" LOGIN SUPERUSER'"
  fi
  su postgres -c "psql -p $PG_PORT -qtAc \"SELECT 1 FROM pg_database WHERE datname='$PG_DB'\"" | grep -q 1 ||
    su postgres -c "psql -p $PG_PORT -qc 'CREATE DATABASE \"$PG_DB\" OWNER \"$PG_USER\"'"
fi

# --- Redis: a server of its own, no persistence ----------------------------------------------
if ! answers "$REDIS_HOST" "$REDIS_PORT"; then
  dir=/var/lib/llmops-tracker-redis
  mkdir -p "$dir"
  say "starting redis-server on port $REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis-$REDIS_PORT.log" --pidfile "$dir/redis-$REDIS_PORT.pid"
  wait_for "Redis" redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping
fi
