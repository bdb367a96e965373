#!/usr/bin/env bash
# Entrypoint of docker/asterisk.Dockerfile: writes ARI's credentials from the environment into
# ari_users.conf (which config/asterisk/ari.conf #tryincludes), then runs the command, by default
# `asterisk -f -n`. There are no default credentials: without ARI_PASSWORD it refuses to start.
#
# Environment:
#   ARI_USER                 ARI user name (default: etiquette); the app's ETIQUETTE_ARI_USER
#   ARI_PASSWORD             ARI password, required; the app's ETIQUETTE_ARI_PASSWORD
#   ARI_PASSWORD_FILE        read the password from this file instead (e.g. /run/secrets/ari_password)
#   ASTERISK_HTTP_BINDADDR   optional: replaces http.conf's bindaddr (shipped: 127.0.0.1)
#   ASTERISK_ETC_DIR, ASTERISK_RUN_DIR, ASTERISK_SPOOL_DIR
#                            where the files go (defaults: Debian's /etc/asterisk, /var/run/asterisk,
#                            /var/spool/asterisk); changed by the unit tests only
set -euo pipefail

etc_dir="${ASTERISK_ETC_DIR:-/etc/asterisk}"
run_dir="${ASTERISK_RUN_DIR:-/var/run/asterisk}"
spool_dir="${ASTERISK_SPOOL_DIR:-/var/spool/asterisk}"

die() {
    printf 'asterisk-entrypoint: %s\n' "$*" >&2
    exit 64
}

ari_user="${ARI_USER:-etiquette}"
ari_password="${ARI_PASSWORD:-}"
if [[ -z "$ari_password" && -n "${ARI_PASSWORD_FILE:-}" ]]; then
    [[ -r "$ARI_PASSWORD_FILE" ]] || die "ARI_PASSWORD_FILE=$ARI_PASSWORD_FILE cannot be read"
    ari_password="$(head -n 1 -- "$ARI_PASSWORD_FILE")"
fi

if [[ -z "$ari_password" ]]; then
    die "ARI_PASSWORD is empty: refusing to start Asterisk without ARI credentials (there is no" \
        "default password). Generate one with 'openssl rand -hex 24', set ARI_PASSWORD in" \
        "docker/.env (or docker run -e ARI_PASSWORD=...), and give the app the same value" \
        "as ETIQUETTE_ARI_PASSWORD."
fi
if [[ ! "$ari_user" =~ ^[A-Za-z0-9_-]{1,64}$ ]]; then
    die "ARI_USER '$ari_user' is not a valid user name: use letters, digits, '_' and '-'"
fi
case "$ari_password" in
    *[[:space:][:cntrl:]\;]*)
        die "ARI_PASSWORD contains whitespace, a control character or ';' (which starts a comment" \
            "in Asterisk configs): use e.g. 'openssl rand -hex 24'" ;;
esac
if (( ${#ari_password} < 16 )); then
    printf 'asterisk-entrypoint: warning: ARI_PASSWORD is only %d characters long; use a long random one\n' \
        "${#ari_password}" >&2
fi

# Written afresh at every start, readable by root only (Asterisk runs as root here, without -U).
umask 077
tmp="$(mktemp "$etc_dir/.ari_users.conf.XXXXXX")"
cat > "$tmp" <<EOF
; Written by asterisk-entrypoint at container start from ARI_USER and ARI_PASSWORD.
; Do not edit: it is replaced at every start.
[${ari_user}]
type = user
read_only = no
password = ${ari_password}
EOF
mv -f -- "$tmp" "$etc_dir/ari_users.conf"
umask 022

if [[ -n "${ASTERISK_HTTP_BINDADDR:-}" ]]; then
    [[ "$ASTERISK_HTTP_BINDADDR" =~ ^[0-9A-Fa-f:.]+$ ]] \
        || die "ASTERISK_HTTP_BINDADDR '$ASTERISK_HTTP_BINDADDR' is not an IP address"
    sed -i "s/^bindaddr[[:space:]]*=.*/bindaddr = ${ASTERISK_HTTP_BINDADDR}/" "$etc_dir/http.conf"
fi

# Volumes mounted over these start empty; Asterisk needs them to exist.
mkdir -p -- "$run_dir" "$spool_dir/recording"

# Asterisk and anything it starts need not see the secret in their environment.
unset ARI_PASSWORD ARI_PASSWORD_FILE ari_password

if [[ $# -eq 0 ]]; then
    set -- asterisk -f -n
fi
exec "$@"
