#!/bin/sh
# Start script of the Redis Sentinel group in docker/compose.yaml (profile sentinel), run in the
# redis image: writes the config of a replica or of a sentinel into its volume, then hands it to
# the image's own entrypoint (which gives /data to the redis user and runs redis-server as it).
#
#   redis-node.sh replica     a replica; at its first start, of the master (the `redis` service)
#   redis-node.sh sentinel    a sentinel; at its first start, watching that master
#
# The file is written afresh at every start from the environment, except for what the sentinels
# decided: after a failover they change roles at run time (REPLICAOF) and record them in these
# files (CONFIG REWRITE). A restart (a host reboot) comes back with those roles, not the first
# ones: a promoted replica stays the master, a sentinel keeps watching the master it elected and
# what it learnt (its id, the epochs, the replicas and sentinels it knows). The `redis` service
# itself starts from its command line, as a master: if it was demoted, the sentinels make it a
# replica again within seconds (+convert-to-slave), and the app, which asks them, never writes to
# it meanwhile. When the group's ports or the master's name change, the roles start over.
#
# Environment:
#   REDIS_PASSWORD        required: every Redis's requirepass and masterauth, the sentinels' auth-pass
#   NODE_PORT             this process's port (on 127.0.0.1)
#   REDIS_MASTER_PORT     the master's port at the first start (the redis service's REDIS_PORT)
#   REDIS_DATA_PORTS      the master's and the replicas' ports, e.g. "6379 6380 6381"
#   SENTINEL_PORTS        sentinel only: the sentinels' ports, e.g. "26379 26380 26381"
#   REDIS_MASTER_NAME     sentinel only: the master's name (default etiquette; the app's
#                         ETIQUETTE_REDIS_MASTER)
#   SENTINEL_QUORUM       sentinel only: sentinels that must agree the master is down (default 2)
#   SENTINEL_DOWN_AFTER_MS, SENTINEL_FAILOVER_TIMEOUT_MS
#                         sentinel only: no answer for this long = down (default 5000); failover
#                         timeout (default 10000; a failed failover is retried after twice that)
#   REDIS_NODE_DIR, REDIS_ENTRYPOINT
#                         where the file goes (default /data, the volume) and what runs
#                         redis-server (default the image's docker-entrypoint.sh); changed by
#                         the unit tests only
set -eu

die() {
    printf 'redis-node: %s\n' "$*" >&2
    exit 64
}

number() {  # number NAME VALUE: die unless VALUE is a whole number
    case "$2" in
        '' | *[!0-9]*) die "$1 '$2' is not a number" ;;
    esac
}

kind="${1:-}"
case "$kind" in
    replica | sentinel) ;;
    *) die "usage: redis-node.sh replica|sentinel" ;;
esac

password="${REDIS_PASSWORD:-}"
[ -n "$password" ] || die "REDIS_PASSWORD is empty: set it in docker/.env (openssl rand -hex 24)"
case "$password" in
    *[!A-Za-z0-9._~+/=-]*)
        die "REDIS_PASSWORD has a character a Redis config file or the app's URL would garble:" \
            "use e.g. 'openssl rand -hex 24'" ;;
esac
port="${NODE_PORT:-}"
master_port="${REDIS_MASTER_PORT:-}"
data_ports="${REDIS_DATA_PORTS:-}"
number NODE_PORT "$port"
number REDIS_MASTER_PORT "$master_port"
[ -n "$data_ports" ] || die "REDIS_DATA_PORTS is empty"
for p in $data_ports; do number REDIS_DATA_PORTS "$p"; done

dir="${REDIS_NODE_DIR:-/data}"
entrypoint="${REDIS_ENTRYPOINT:-docker-entrypoint.sh}"
umask 077  # the files hold the password

if [ "$kind" = replica ]; then
    conf="$dir/redis.conf"
    topology="# etiquette-topology: data $data_ports; first master $master_port"
    role="replicaof 127.0.0.1 $master_port"
    if [ -f "$conf" ] && grep -qxF "$topology" "$conf"; then
        # as the sentinels last left it: none once promoted
        role="$(awk '$1 == "replicaof" || $1 == "slaveof" { r = "replicaof " $2 " " $3 }
                     END { print r }' "$conf")"
    fi
    tmp="$(mktemp "$dir/.redis.conf.XXXXXX")"
    cat > "$tmp" <<EOF
# Written by redis-node.sh at every start; the sentinels' CONFIG REWRITE records a new role.
$topology
bind 127.0.0.1
port $port
dir $dir
appendonly yes
appendfsync everysec
requirepass $password
masterauth $password
# Once promoted, refuse writes when no replica has followed for 10 s, instead of acknowledging
# what the next failover would throw away (the app answers 503 and calls wait: NOREPLICAS).
min-replicas-to-write 1
min-replicas-max-lag 10
$role
EOF
    mv -f -- "$tmp" "$conf"
    cd "$dir"
    exec "$entrypoint" redis-server "$conf"
fi

name="${REDIS_MASTER_NAME:-etiquette}"
sentinel_ports="${SENTINEL_PORTS:-}"
quorum="${SENTINEL_QUORUM:-2}"
down_after="${SENTINEL_DOWN_AFTER_MS:-5000}"
failover_timeout="${SENTINEL_FAILOVER_TIMEOUT_MS:-10000}"
case "$name" in
    '' | *[!A-Za-z0-9._-]*) die "REDIS_MASTER_NAME '$name' is not letters, digits, '.', '_', '-'" ;;
esac
[ -n "$sentinel_ports" ] || die "SENTINEL_PORTS is empty"
for p in $sentinel_ports; do number SENTINEL_PORTS "$p"; done
number SENTINEL_QUORUM "$quorum"
number SENTINEL_DOWN_AFTER_MS "$down_after"
number SENTINEL_FAILOVER_TIMEOUT_MS "$failover_timeout"

conf="$dir/sentinel.conf"
topology="# etiquette-topology: master $name; data $data_ports; sentinels $sentinel_ports;"
topology="$topology first master $master_port"
master="127.0.0.1 $master_port"
learned=""
if [ -f "$conf" ] && grep -qxF "$topology" "$conf"; then
    elected="$(awk -v name="$name" '$1 == "sentinel" && $2 == "monitor" && $3 == name {
                                        print $4, $5 }' "$conf")"
    [ -z "$elected" ] || master="$elected"
    learned="$(awk -v name="$name" '
        $1 == "sentinel" && ($2 == "myid" || $2 == "current-epoch") { print; next }
        $1 == "sentinel" && $3 == name && ($2 == "config-epoch" || $2 == "leader-epoch" ||
                                           $2 == "known-replica" || $2 == "known-sentinel")' \
        "$conf")"
fi
tmp="$(mktemp "$dir/.sentinel.conf.XXXXXX")"
cat > "$tmp" <<EOF
# Written by redis-node.sh at every start, keeping the master this sentinel last knew and what
# it learnt; the sentinel rewrites it as it goes.
$topology
bind 127.0.0.1
port $port
dir $dir
sentinel monitor $name $master $quorum
sentinel auth-pass $name $password
sentinel down-after-milliseconds $name $down_after
sentinel failover-timeout $name $failover_timeout
sentinel parallel-syncs $name 1
$learned
EOF
mv -f -- "$tmp" "$conf"
cd "$dir"
exec "$entrypoint" redis-server "$conf" --sentinel
