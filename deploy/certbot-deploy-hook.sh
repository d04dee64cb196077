#!/usr/bin/env bash
# Certbot deploy hook for Tollgate: after each successful issue or renewal, hand the new certificate to Tollgate
# and reload it without dropping in-flight streams.
#
# Installed by deploy/install.sh as /etc/letsencrypt/renewal-hooks/deploy/tollgate.sh; certbot runs every
# executable in that directory after a renewal, with RENEWED_LINEAGE=/etc/letsencrypt/live/<name>.
# Run it by hand once after the first `certbot certonly` (or to re-copy):
#     sudo /etc/letsencrypt/renewal-hooks/deploy/tollgate.sh example.com
#
# certbot's live/ and archive/ directories are root-only (0700) and Tollgate runs as the unprivileged `tollgate`
# user. After checking that the new key matches the new certificate, the hook does one of two things, chosen by
# the `cert` path in /etc/tollgate/tollgate.conf:
#   point to  `cert`/`key` under /etc/letsencrypt/live/NAME/ (the example config): give the `tollgate` group
#             read access to that lineage only (live/ and archive/ directories g+rx, its privkey*.pem 0640
#             root:tollgate). certbot preserves a key's group and group mode across renewals.
#   copy      `cert`/`key` anywhere else, e.g. /etc/tollgate/fullchain.pem and /etc/tollgate/privkey.pem: copy
#             fullchain.pem and privkey.pem there, 0640 root:tollgate, each replaced atomically (temp + rename).
#             certbot's directories stay root-only.
#
# Then `systemctl reload tollgate` (SIGHUP): new connections get the new certificate, in-flight streams finish on
# the old one. The hook then asks the running server which certificate it presents; if it still shows the old one
# (a Tollgate without certificate reload), it falls back to `systemctl restart tollgate`, which drains in-flight
# requests for up to drain-timeout first. Set TOLLGATE_RESTART_IF_STALE=no to only warn instead.
#
# Environment (all optional):
#   TOLLGATE_CERT_NAME         act only on this certbot lineage (install.sh --domain fills it in below);
#                              empty: act on every renewed lineage
#   TOLLGATE_CONF              config file (default /etc/tollgate/tollgate.conf)
#   TOLLGATE_RESTART_IF_STALE  yes (default) or no
#   TOLLGATE_VERIFY            yes (default) or no: compare the served certificate with the new one
set -euo pipefail

CERT_NAME="${TOLLGATE_CERT_NAME:-}"   # install.sh --domain NAME puts NAME after the :-
CONF="${TOLLGATE_CONF:-/etc/tollgate/tollgate.conf}"
RESTART_IF_STALE="${TOLLGATE_RESTART_IF_STALE:-yes}"
VERIFY="${TOLLGATE_VERIFY:-yes}"
GROUP=tollgate
UNIT=tollgate

log() {
    echo "tollgate-certbot-hook: $*" >&2
    if command -v logger >/dev/null 2>&1; then logger -t tollgate-certbot-hook -- "$*" || true; fi
}
die() { log "error: $*"; exit 1; }

# conf_get KEY: the first value of KEY in the config file ("key = value", # comments, optional quotes).
conf_get() {
    [ -r "$CONF" ] || return 0
    sed -n -E "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$CONF" | head -n 1 |
        sed -E 's/[[:space:]]+#.*$//; s/[[:space:]]+$//; s/^"(.*)"$/\1/; s/^'"'"'(.*)'"'"'$/\1/'
}

# --- which lineage ---
lineage="${RENEWED_LINEAGE:-}"
if [ $# -gt 0 ]; then
    case "$1" in
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        /*) lineage="$1" ;;
        *) lineage="/etc/letsencrypt/live/$1" ;;
    esac
fi
if [ -z "$lineage" ]; then
    [ -n "$CERT_NAME" ] || die "no RENEWED_LINEAGE (certbot sets it); run as: $0 DOMAIN"
    lineage="/etc/letsencrypt/live/$CERT_NAME"
fi
name="$(basename "$lineage")"
if [ -n "$CERT_NAME" ] && [ "$name" != "$CERT_NAME" ]; then
    log "renewed lineage $name is not $CERT_NAME; nothing to do"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "must run as root (certbot runs hooks as root)"
src_cert="$lineage/fullchain.pem"
src_key="$lineage/privkey.pem"
[ -r "$src_cert" ] || die "$src_cert not found or not readable"
[ -r "$src_key" ] || die "$src_key not found or not readable"

# --- check the pair before touching anything ---
openssl x509 -in "$src_cert" -noout -checkend 0 >/dev/null || die "$src_cert is expired or not a certificate"
cert_pub="$(openssl x509 -in "$src_cert" -noout -pubkey 2>/dev/null)" || die "cannot read $src_cert"
key_pub="$(openssl pkey -in "$src_key" -pubout 2>/dev/null)" || die "cannot read $src_key"
[ "$cert_pub" = "$key_pub" ] || die "$src_key does not match $src_cert; nothing changed"
new_fp="$(openssl x509 -in "$src_cert" -noout -fingerprint -sha256 | sed 's/.*=//')"

# --- copy where the config says, unless it reads certbot's files directly ---
dest_cert="$(conf_get cert)"; dest_cert="${dest_cert:-/etc/tollgate/fullchain.pem}"
dest_key="$(conf_get key)"; dest_key="${dest_key:-/etc/tollgate/privkey.pem}"

# install_atomic SRC DEST: copy as root:tollgate 0640 to a temporary name beside DEST, then rename over DEST, so
# Tollgate never reads a half-written file.
install_atomic() {
    local src="$1" dest="$2" tmp
    tmp="$(dirname "$dest")/.$(basename "$dest").new.$$"
    install -m 0640 -o root -g "$GROUP" "$src" "$tmp"
    mv -f "$tmp" "$dest"
}

getent group "$GROUP" >/dev/null || die "group $GROUP does not exist (run deploy/install.sh first)"
case "$dest_cert" in
    /etc/letsencrypt/*)
        # "Point to": Tollgate reads certbot's files. Let the tollgate group traverse live/ and archive/ and read
        # this lineage's keys; nothing is copied. certbot keeps a private key's group and group mode on renewal
        # (since 0.29), and this runs after every renewal anyway. Other lineages' keys stay 0600 root.
        for d in /etc/letsencrypt/live /etc/letsencrypt/archive "/etc/letsencrypt/live/$name" "/etc/letsencrypt/archive/$name"; do
            [ -d "$d" ] || continue
            chgrp "$GROUP" "$d"
            chmod g+rx,o-rwx "$d"
        done
        for f in "/etc/letsencrypt/archive/$name"/privkey*.pem; do
            [ -e "$f" ] || continue
            chgrp "$GROUP" "$f"
            chmod 0640 "$f"
        done
        log "$CONF reads $dest_cert from certbot's directory: made lineage $name readable by group $GROUP (sha256 $new_fp)" ;;
    *)
        # "Copy": certbot's directories stay root-only; Tollgate reads its own copies.
        [ -d "$(dirname "$dest_cert")" ] || die "$(dirname "$dest_cert") does not exist"
        [ -d "$(dirname "$dest_key")" ] || die "$(dirname "$dest_key") does not exist"
        trap 'rm -f "$(dirname "$dest_cert")"/.*.new.$$ "$(dirname "$dest_key")"/.*.new.$$' EXIT
        install_atomic "$src_key" "$dest_key"
        install_atomic "$src_cert" "$dest_cert"
        log "installed $name certificate (sha256 $new_fp) as $dest_cert and $dest_key" ;;
esac

# --- reload the running server ---
if ! command -v systemctl >/dev/null 2>&1 || ! systemctl is-active --quiet "$UNIT" 2>/dev/null; then
    log "$UNIT is not running; it will use the new certificate when started"
    exit 0
fi
systemctl reload "$UNIT"
log "reloaded $UNIT"
[ "$VERIFY" = yes ] || exit 0

# --- did it take? ask the server which certificate it presents ---
listen="$(conf_get listen | sed -E 's/[,[:space:]].*$//')"
listen="${listen:-0.0.0.0:8443}"
port="${listen##*:}"
host="${listen%:*}"
case "$host" in
    ""|0.0.0.0|"*") host=127.0.0.1 ;;
    "[::]") host="[::1]" ;;
esac
served_fp() {
    timeout 10 openssl s_client -connect "$host:$port" -servername "$name" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//'
}
for _ in 1 2 3 4 5; do
    sleep 1
    [ "$(served_fp || true)" = "$new_fp" ] && { log "$UNIT now serves the new certificate"; exit 0; }
done
if [ "$RESTART_IF_STALE" = yes ]; then
    log "warning: $UNIT at $host:$port still serves another certificate after reload; restarting (in-flight requests get drain-timeout to finish)"
    systemctl restart "$UNIT"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        sleep 1
        [ "$(served_fp || true)" = "$new_fp" ] && { log "$UNIT now serves the new certificate"; exit 0; }
    done
    die "$UNIT at $host:$port does not serve the new certificate even after a restart; check: journalctl -u $UNIT"
fi
die "$UNIT at $host:$port still serves another certificate; run: systemctl restart $UNIT"
