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
# A second Asterisk on the same host's network (docker/compose.yaml, profile node-b) needs its
# own ports and identity; each of these, when set, rewrites its line at every start:
#   ASTERISK_HTTP_PORT       http.conf bindport, ARI's port (shipped: 8088)
#   ASTERISK_SIP_PORT        the port of pjsip.conf's transport (bind = 0.0.0.0:5060 shipped)
#   ASTERISK_RTP_START, ASTERISK_RTP_END
#                            rtp.conf rtpstart / rtpend (shipped: 10000-10999), set together
#   ASTERISK_ENTITY_ID       asterisk.conf entityid, a MAC such as 02:00:00:00:00:0b (by default
#                            Asterisk takes the host's network card's: the same on every node
#                            of one host)
#   ASTERISK_SYSTEM_NAME     asterisk.conf systemname, the prefix of the node's channel ids
#                            (letters, digits, '.', '_', '-')
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

port_value() {  # port_value NAME VALUE: VALUE if it is a port number, else die
    [[ "$2" =~ ^[0-9]{1,5}$ ]] && (( 10#$2 >= 1 && 10#$2 <= 65535 )) \
        || die "$1 '$2' is not a port number (1-65535)"
    printf '%d' "$((10#$2))"
}

rewrite() {  # rewrite FILE REGEX REPLACEMENT WHAT: sed -E on every matching line; die if none
    local file="$etc_dir/$1"
    grep -Eq "$2" "$file" 2>/dev/null \
        || die "$4: $file has no line matching '$2' to rewrite"
    sed -i -E "s/$2/$3/" "$file"
}

set_option() {  # set_option NAME VALUE: NAME = VALUE in asterisk.conf's [options]
    local file="$etc_dir/asterisk.conf" tmp
    [[ -f "$file" ]] || die "$file is missing: cannot set $1"
    tmp="$(mktemp "$etc_dir/.asterisk.conf.XXXXXX")"
    # Any earlier value goes (set at a previous start, or by hand); the new one comes first in
    # [options], which is added when the file has none (Asterisk reads the first [options] only).
    awk -v line="$1 = $2" -v name="$1" '
        $0 ~ "^[[:space:]]*" name "[[:space:]]*=" { next }
        { print }
        !done && /^\[options\]/ { print line; done = 1 }
        END { if (!done) { print ""; print "[options]"; print line } }' "$file" > "$tmp"
    cat -- "$tmp" > "$file"  # keeps the file's owner and mode
    rm -f -- "$tmp"
}

if [[ -n "${ASTERISK_HTTP_PORT:-}" ]]; then
    port="$(port_value ASTERISK_HTTP_PORT "$ASTERISK_HTTP_PORT")"
    rewrite http.conf '^bindport[[:space:]]*=.*' "bindport = $port" ASTERISK_HTTP_PORT
fi
if [[ -n "${ASTERISK_SIP_PORT:-}" ]]; then
    port="$(port_value ASTERISK_SIP_PORT "$ASTERISK_SIP_PORT")"
    # bind = <address>:<port>: the address stays, the port changes
    rewrite pjsip.conf '^(bind[[:space:]]*=[[:space:]]*[^;[:space:]]+):[0-9]+' "\\1:$port" \
        ASTERISK_SIP_PORT
fi
if [[ -n "${ASTERISK_RTP_START:-}${ASTERISK_RTP_END:-}" ]]; then
    [[ -n "${ASTERISK_RTP_START:-}" && -n "${ASTERISK_RTP_END:-}" ]] \
        || die "set ASTERISK_RTP_START and ASTERISK_RTP_END together (e.g. 11000 and 11999)"
    rtp_start="$(port_value ASTERISK_RTP_START "$ASTERISK_RTP_START")"
    rtp_end="$(port_value ASTERISK_RTP_END "$ASTERISK_RTP_END")"
    (( rtp_start < rtp_end )) \
        || die "ASTERISK_RTP_START ($rtp_start) must be below ASTERISK_RTP_END ($rtp_end)"
    rewrite rtp.conf '^rtpstart[[:space:]]*=.*' "rtpstart = $rtp_start" ASTERISK_RTP_START
    rewrite rtp.conf '^rtpend[[:space:]]*=.*' "rtpend = $rtp_end" ASTERISK_RTP_END
fi
if [[ -n "${ASTERISK_ENTITY_ID:-}" ]]; then
    [[ "$ASTERISK_ENTITY_ID" =~ ^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$ ]] \
        || die "ASTERISK_ENTITY_ID '$ASTERISK_ENTITY_ID' is not a MAC address such as" \
               "02:00:00:00:00:0b (6 hex bytes separated by ':')"
    set_option entityid "$ASTERISK_ENTITY_ID"
fi
if [[ -n "${ASTERISK_SYSTEM_NAME:-}" ]]; then
    [[ "$ASTERISK_SYSTEM_NAME" =~ ^[A-Za-z0-9._-]{1,64}$ ]] \
        || die "ASTERISK_SYSTEM_NAME '$ASTERISK_SYSTEM_NAME' is not a valid system name: use" \
               "letters, digits, '.', '_' and '-' (it prefixes the channel ids)"
    set_option systemname "$ASTERISK_SYSTEM_NAME"
fi

# Volumes mounted over these start empty; Asterisk needs them to exist.
mkdir -p -- "$run_dir" "$spool_dir/recording"

# Asterisk and anything it starts need not see the secret in their environment.
unset ARI_PASSWORD ARI_PASSWORD_FILE ari_password

if [[ $# -eq 0 ]]; then
    set -- asterisk -f -n
fi
exec "$@"
