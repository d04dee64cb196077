#!/usr/bin/env bash
# Installs (or upgrades) Tollgate on Ubuntu 22.04/24.04 or Debian 12, from the package deploy/package makes (no
# Swift needed on this machine) or by building this checkout. Idempotent: run it again to upgrade (with the new
# package, or after `git pull`); it never overwrites your config, users file or certificates.
#
#   sudo deploy/install.sh [--package tollgate_VERSION_amd64.deb] [--dry-run] [--domain NAME]
#                          [--first-user NAME] [--import-htpasswd FILE] [--no-start] [--scratch-path DIR]
#
# What it does, in order (each step says whether it changed anything):
#   1. checks, before anything is changed: root, the system, this checkout, the package or Swift >= 6 (not
#      downloaded for you; see below), an --import-htpasswd file that Tollgate can read
#   2. apt-get installs the missing build packages: libssl-dev libcrypt-dev libsqlite3-dev pkg-config (and openssl)
#   3. swift build -c release --static-swift-stdlib --product tollgate   (as the checkout's owner, not root)
#   4. installs the binary as /usr/local/bin/tollgate (atomic rename; a running server keeps its old binary)
#   5. creates the system user and group `tollgate`, and /etc/tollgate (0750 root:tollgate)
#   6. /etc/tollgate/tollgate.conf from deploy/tollgate.conf, only if absent
#      With --package, steps 2-6 are `apt-get install ./FILE.deb` instead: the package brings /usr/bin/tollgate,
#      the user, /etc/tollgate, the config (a conffile), the unit and the logrotate file, and restarts a running
#      server after an upgrade.
#   7. the users file, only if absent: imported from --import-htpasswd (e.g. nginx's), or a first user
#      (--first-user, default "admin", made an `admin` in the config) with a generated password, printed once
#   8. certificate: with --domain NAME, `acme-domain = NAME` in a new config (Tollgate gets and renews the certificate
#      itself from Let's Encrypt); where certbot's live/NAME lineage exists (a migration from nginx), that pair is
#      served until Tollgate's own is issued, made readable by the deploy hook
#   9. installs the certbot deploy hook, and (without --package) the systemd unit, the logrotate file and the docs
#  10. systemctl daemon-reload, enable, then start (or restart if the binary or unit changed)
#  11. smoke check: tollgate serve --help
#
# --dry-run prints every command that would change the system, and changes nothing.
set -euo pipefail

PROG=install.sh
ORIG_ARGS=("$@")
DRY_RUN=no
DOMAIN=""
FIRST_USER="admin"
IMPORT_HTPASSWD=""
PACKAGE=""
START=yes
SCRATCH=""

PREFIX_BIN=/usr/local/bin
BIN="$PREFIX_BIN/tollgate"
ETC=/etc/tollgate
CONF="$ETC/tollgate.conf"
UNIT_DEST=/etc/systemd/system/tollgate.service
HOOK_DEST=/etc/letsencrypt/renewal-hooks/deploy/tollgate.sh
LOGROTATE_DEST=/etc/logrotate.d/tollgate
DOC_DEST=/usr/local/share/doc/tollgate
SVC_USER=tollgate

say()  { printf '%s: %s\n' "$PROG" "$*"; }
step() { printf '\n==> %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# run CMD...: runs a command that changes the system; with --dry-run only prints it.
run() {
    if [ "$DRY_RUN" = yes ]; then
        printf '    would run: %s\n' "$(printf '%q ' "$@")"
    else
        printf '    + %s\n' "$(printf '%q ' "$@")"
        "$@"
    fi
}

# apply_domain: a new config made from the example gets --domain's name: acme-domain, and certbot's paths (left
# commented out unless that lineage exists: then its pair is served until Tollgate's own certificate is issued).
apply_domain() {
    run sed -i -E -e "s|^acme-domain = example\.com$|acme-domain = $DOMAIN|" \
        -e "s|/etc/letsencrypt/live/example\.com/|/etc/letsencrypt/live/$DOMAIN/|g" "$CONF"
    if [ -d "/etc/letsencrypt/live/$DOMAIN" ]; then
        run sed -i -E "s,^# (cert|key) = (/etc/letsencrypt/live/$DOMAIN/),\1 = \2," "$CONF"
    fi
}

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=yes ;;
        --domain) [ $# -ge 2 ] || die "--domain needs a name"; DOMAIN="$2"; shift ;;
        --domain=*) DOMAIN="${1#*=}" ;;
        --first-user) [ $# -ge 2 ] || die "--first-user needs a name"; FIRST_USER="$2"; shift ;;
        --first-user=*) FIRST_USER="${1#*=}" ;;
        --import-htpasswd) [ $# -ge 2 ] || die "--import-htpasswd needs a file"; IMPORT_HTPASSWD="$2"; shift ;;
        --import-htpasswd=*) IMPORT_HTPASSWD="${1#*=}" ;;
        --package) [ $# -ge 2 ] || die "--package needs a .deb file"; PACKAGE="$2"; shift ;;
        --package=*) PACKAGE="${1#*=}" ;;
        --no-start) START=no ;;
        --scratch-path) [ $# -ge 2 ] || die "--scratch-path needs a directory"; SCRATCH="$2"; shift ;;
        --scratch-path=*) SCRATCH="${1#*=}" ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
# The name goes into the config and into sed expressions: a DNS name only.
if [ -n "$DOMAIN" ] && ! printf '%s' "$DOMAIN" | grep -qxE '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+'; then
    die "--domain $DOMAIN is not a DNS name like ollama.example.com"
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRATCH="${SCRATCH:-$REPO/.build}"
[ "$DRY_RUN" = yes ] && say "dry run: nothing will be changed"

# The config the paths are read from: the installed one, or (before it exists, e.g. in a dry run) the example.
CONF_SRC="$CONF"
[ -r "$CONF_SRC" ] || CONF_SRC="$REPO/deploy/tollgate.conf"

# conf_get KEY: first value of KEY in the config ("key = value", # comments, optional quotes).
conf_get() {
    [ -r "$CONF_SRC" ] || return 0
    sed -n -E "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$CONF_SRC" | head -n 1 |
        sed -E 's/[[:space:]]+#.*$//; s/[[:space:]]+$//; s/^"(.*)"$/\1/; s/^'"'"'(.*)'"'"'$/\1/'
}
# conf_all KEY: every value of KEY (repeated keys or comma-separated lists), one per line.
conf_all() {
    [ -r "$CONF_SRC" ] || return 0
    sed -n -E "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$CONF_SRC" |
        sed -E 's/[[:space:]]+#.*$//; s/"//g' | tr ', ' '\n' | sed '/^$/d'
}

# ---------------------------------------------------------------------------------------------------------------
step "1. checks"
if [ "$(id -u)" -ne 0 ]; then
    [ "$DRY_RUN" = yes ] || die "run as root: sudo $0 ${ORIG_ARGS[*]:-}"
    warn "not root: fine for --dry-run, but the real run needs sudo"
fi
if [ ! -f "$REPO/Package.swift" ] || [ ! -f "$REPO/deploy/tollgate.service" ]; then
    die "$REPO is not a Tollgate checkout (no Package.swift or deploy/tollgate.service)"
fi
say "checkout: $REPO"

if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    case "${ID:-}:${VERSION_ID:-}" in
        ubuntu:22.04|ubuntu:24.04|debian:12) say "system: $PRETTY_NAME" ;;
        *) warn "tested on Ubuntu 22.04 and 24.04 and Debian 12; this is ${PRETTY_NAME:-unknown}: continuing" ;;
    esac
fi

HAVE_SYSTEMD=no
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    HAVE_SYSTEMD=yes
else
    warn "systemd is not running here: files are installed, but the service is not enabled or started"
fi

if [ -n "$PACKAGE" ]; then
    [ -f "$PACKAGE" ] || die "--package $PACKAGE: no such file"
    [ "$(dpkg-deb -f "$PACKAGE" Package 2>/dev/null)" = tollgate ] || die "$PACKAGE is not a tollgate package"
    PKG_VERSION="$(dpkg-deb -f "$PACKAGE" Version)"
    PKG_ARCH="$(dpkg-deb -f "$PACKAGE" Architecture)"
    [ "$PKG_ARCH" = "$(dpkg --print-architecture)" ] || die "$PACKAGE is for $PKG_ARCH; this machine is $(dpkg --print-architecture)"
    # A from-source install's unit in /etc/systemd/system would hide the package's, and start the old binary.
    if [ -e /usr/local/bin/tollgate ] || [ -e "$UNIT_DEST" ]; then
        die "Tollgate was installed from source here (/usr/local/bin/tollgate, $UNIT_DEST). Remove those two
    first (config, users file and certificates stay): sudo systemctl stop tollgate;
    sudo rm -f /usr/local/bin/tollgate $UNIT_DEST; then run again"
    fi
    PREFIX_BIN=/usr/bin
    BIN="$PREFIX_BIN/tollgate"
    DOC_DEST=/usr/share/doc/tollgate
    say "package: $PACKAGE (tollgate $PKG_VERSION, $PKG_ARCH)"
else
    if dpkg-query -W -f='${Status}' tollgate 2>/dev/null | grep -q "install ok installed"; then
        die "the tollgate package is installed here: upgrade with --package tollgate_VERSION_amd64.deb (deploy/package makes one)"
    fi
    # The checkout's owner builds (so .build/ is not root-owned in their checkout); root builds a root-owned checkout.
    OWNER="$(stat -c %U "$REPO")"
    OWNER_HOME="$(getent passwd "$OWNER" | cut -d: -f6)"
    OWNER_HOME="${OWNER_HOME:-/root}"

    # find_swift: $SWIFT, then PATH (sudo resets it), then the usual toolchain and swiftly locations.
    find_swift() {
        local c
        for c in "${SWIFT:-}" "$(command -v swift 2>/dev/null || true)" \
                 "$OWNER_HOME/.local/share/swiftly/bin/swift" "/home/${SUDO_USER:-nobody}/.local/share/swiftly/bin/swift" \
                 /usr/bin/swift /opt/swift/usr/bin/swift /usr/share/swift/usr/bin/swift /usr/local/bin/swift; do
            if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
        done
        return 1
    }
    if ! SWIFT_BIN="$(find_swift)"; then
        die "Swift is not installed (or not on root's PATH). Tollgate needs Swift 6 or newer. Install it as the
        user who owns $REPO, with swiftly (https://www.swift.org/install/linux/):
            curl -O https://download.swift.org/swiftly/linux/swiftly-\$(uname -m).tar.gz
            tar zxf swiftly-\$(uname -m).tar.gz && ./swiftly init
            . ~/.local/share/swiftly/env.sh && swift --version
        swiftly lists the apt packages Swift itself needs. Then run again; if sudo still cannot find it:
            sudo SWIFT=\"\$(command -v swift)\" $0"
    fi
    # as_owner CMD...: run as the checkout's owner with their HOME (swiftly keeps its state there).
    as_owner() {
        if [ "$OWNER" = root ] || [ "$(id -un)" = "$OWNER" ]; then
            "$@"
        else
            runuser -u "$OWNER" -- env HOME="$OWNER_HOME" PATH="$(dirname "$SWIFT_BIN"):$PATH" "$@"
        fi
    }
    SWIFT_VERSION="$(as_owner "$SWIFT_BIN" --version 2>/dev/null | sed -n -E 's/.*Swift version ([0-9]+)\.([0-9]+).*/\1.\2/p' | head -n 1)"
    [ -n "$SWIFT_VERSION" ] || die "$SWIFT_BIN --version did not print a Swift version"
    [ "${SWIFT_VERSION%%.*}" -ge 6 ] || die "Swift $SWIFT_VERSION at $SWIFT_BIN is too old; Tollgate needs Swift 6 or newer"
    say "swift: $SWIFT_BIN (Swift $SWIFT_VERSION), building as $OWNER"
fi
# An --import-htpasswd file is checked before anything changes (and loaded by the binary once it is built).
if [ -n "$IMPORT_HTPASSWD" ]; then
    if [ ! -f "$IMPORT_HTPASSWD" ] || [ ! -r "$IMPORT_HTPASSWD" ]; then
        die "--import-htpasswd $IMPORT_HTPASSWD: not a readable file"
    fi
fi
# check_import TOLLGATE: does that binary load the --import-htpasswd file? Dies, naming the problem, if not.
check_import() {
    if [ -z "$IMPORT_HTPASSWD" ] || [ "$DRY_RUN" = yes ]; then return 0; fi
    "$1" users list --file "$IMPORT_HTPASSWD" >/dev/null ||
        die "--import-htpasswd $IMPORT_HTPASSWD: Tollgate cannot use it (above); nothing was installed from it"
}

if [ -n "$PACKAGE" ]; then
    # -----------------------------------------------------------------------------------------------------------
    step "2-6. package"
    # Before installing: the package's binary loads the file to import (when this machine has its libraries).
    if [ -n "$IMPORT_HTPASSWD" ] && [ "$DRY_RUN" = no ]; then
        unpacked="$(mktemp -d)"
        dpkg-deb -x "$PACKAGE" "$unpacked"
        if "$unpacked/usr/bin/tollgate" --version >/dev/null 2>&1; then check_import "$unpacked/usr/bin/tollgate"; fi
        rm -rf "$unpacked"
    fi
    CONF_EXISTED=no
    [ -e "$CONF" ] && CONF_EXISTED=yes
    INSTALLED_VERSION="$(dpkg-query -W -f='${Version}' tollgate 2>/dev/null || true)"
    if [ "$INSTALLED_VERSION" = "$PKG_VERSION" ]; then
        say "tollgate $PKG_VERSION is already installed"
    else
        # apt wants a path with a slash to treat the argument as a file; it installs the Depends too.
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$(realpath "$PACKAGE")"
    fi
    if [ "$CONF_EXISTED" = no ] && [ -n "$DOMAIN" ]; then
        apply_domain
    fi
    BINARY_CHANGED=no   # the package's postinst restarts a running server after an upgrade
else
    # ---------------------------------------------------------------------------------------------------------------
    step "2. build packages"
    missing=()
    for pkg in libssl-dev libcrypt-dev libsqlite3-dev pkg-config openssl; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "all present: libssl-dev libcrypt-dev libsqlite3-dev pkg-config openssl"
    else
        run apt-get update -qq
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi

    # ---------------------------------------------------------------------------------------------------------------
    step "3. build"
    # --static-swift-stdlib: the binary must not load the Swift runtime from the toolchain directory, which may be in
    # a home directory (swiftly) that the unit hides (ProtectHome=true) or be removed by the next toolchain upgrade.
    BUILD=(build -c release --static-swift-stdlib --product tollgate --package-path "$REPO" --scratch-path "$SCRATCH")
    run as_owner "$SWIFT_BIN" "${BUILD[@]}"
    BUILT="$SCRATCH/release/tollgate"
    if [ "$DRY_RUN" = no ]; then
        [ -x "$BUILT" ] || die "the build did not produce $BUILT"
        if ldd "$BUILT" 2>/dev/null | grep -q 'libswiftCore'; then
            die "$BUILT links the Swift runtime dynamically; the service could not load it. Is the toolchain's static stdlib installed?"
        fi
        check_import "$BUILT"
    fi

    # ---------------------------------------------------------------------------------------------------------------
    step "4. binary"
    BINARY_CHANGED=no
    if [ "$DRY_RUN" = yes ]; then
        run install -m 0755 -o root -g root "$BUILT" "$PREFIX_BIN/.tollgate.new"
        run mv -f "$PREFIX_BIN/.tollgate.new" "$BIN"
    elif [ -f "$BIN" ] && cmp -s "$BUILT" "$BIN"; then
        say "$BIN is already this build"
    else
        run install -m 0755 -o root -g root "$BUILT" "$PREFIX_BIN/.tollgate.new"
        "$PREFIX_BIN/.tollgate.new" --help >/dev/null || { rm -f "$PREFIX_BIN/.tollgate.new"; die "the new binary does not run"; }
        run mv -f "$PREFIX_BIN/.tollgate.new" "$BIN"
        BINARY_CHANGED=yes
    fi

    # ---------------------------------------------------------------------------------------------------------------
    step "5. user, group, directories"
    if getent group "$SVC_USER" >/dev/null; then
        say "group $SVC_USER exists"
    else
        run groupadd --system "$SVC_USER"
    fi
    if id -u "$SVC_USER" >/dev/null 2>&1; then
        say "user $SVC_USER exists"
    else
        run useradd --system --gid "$SVC_USER" --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "Tollgate proxy" "$SVC_USER"
    fi
    # install -d also corrects the owner and mode of an existing directory.
    run install -d -m 0750 -o root -g "$SVC_USER" "$ETC"

    # ---------------------------------------------------------------------------------------------------------------
    step "6. config"
    if [ -e "$CONF" ]; then
        say "$CONF exists: kept as is"
        if [ -f "$REPO/deploy/tollgate.conf" ] && ! cmp -s "$REPO/deploy/tollgate.conf" "$CONF"; then
            say "  (to see what the example has that yours lacks: diff -u $CONF $REPO/deploy/tollgate.conf)"
        fi
    elif [ -f "$REPO/deploy/tollgate.conf" ]; then
        run install -m 0640 -o root -g "$SVC_USER" "$REPO/deploy/tollgate.conf" "$CONF"
        if [ -n "$DOMAIN" ]; then
            apply_domain
        fi
        say "review $CONF before going live (listen addresses, acme-domain or cert/key, limits)"
    else
        die "$REPO/deploy/tollgate.conf is missing from the checkout, and $CONF does not exist"
    fi
fi

# Paths the server will read, from the installed config (or the example in a dry run).
[ -r "$CONF" ] && CONF_SRC="$CONF"
USERS_FILE="$(conf_get users)"; USERS_FILE="${USERS_FILE:-$ETC/users.htpasswd}"
CERT_FILE="$(conf_get cert)"
KEY_FILE="$(conf_get key)"
ACME_DOMAIN="$(conf_all acme-domain | head -n 1)"
if [ -n "$DOMAIN" ] && [ "$CONF_SRC" != "$CONF" ]; then   # (a dry run did not rewrite the example)
    [ "$ACME_DOMAIN" = example.com ] && ACME_DOMAIN="$DOMAIN"
    if [ -d "/etc/letsencrypt/live/$DOMAIN" ]; then
        CERT_FILE="/etc/letsencrypt/live/$DOMAIN/fullchain.pem"
        KEY_FILE="/etc/letsencrypt/live/$DOMAIN/privkey.pem"
    fi
fi

# ---------------------------------------------------------------------------------------------------------------
step "7. users file ($USERS_FILE)"
if [ -e "$USERS_FILE" ]; then
    say "exists: kept; $(grep -cE '^[[:space:]]*[^#[:space:]][^:]*:' "$USERS_FILE" 2>/dev/null || true) user line(s)"
elif [ -n "$IMPORT_HTPASSWD" ]; then
    run install -m 0640 -o root -g "$SVC_USER" "$IMPORT_HTPASSWD" "$USERS_FILE"
    [ "$DRY_RUN" = yes ] || "$BIN" users list --file "$USERS_FILE"
else
    # --generate: no terminal needed (cloud-init, `ssh host sudo ...`); the password is printed once, here.
    say "creating it with user $FIRST_USER and a generated password"
    if [ "$DRY_RUN" = yes ]; then
        run "$BIN" users add "$FIRST_USER" --generate --file "$USERS_FILE"
    else
        echo "--------------------------------------------------------------------------------"
        "$BIN" users add "$FIRST_USER" --generate --file "$USERS_FILE" </dev/null ||
            die "could not create $USERS_FILE (above); everything before this step is in place: fix it and run again"
        echo "--------------------------------------------------------------------------------"
        say "write that password down now: it is stored only as a bcrypt hash"
    fi
    # The first user administers the server (pull, create, delete models), unless the config names admins.
    if [ -z "$(conf_get admin)" ]; then
        say "making $FIRST_USER an admin in $CONF"
        if [ "$DRY_RUN" = yes ]; then
            run sh -c "printf 'admin = %s\n' '$FIRST_USER' >> $CONF"
        else
            printf '\n# The first user, made by install.sh.\nadmin = %s\n' "$FIRST_USER" >>"$CONF"
        fi
    fi
fi
# A file `tollgate users` creates belongs to whoever ran it (root here); edits keep the owner and mode. The server
# (group tollgate) must be able to read it.
run chown root:"$SVC_USER" "$USERS_FILE"
run chmod 0640 "$USERS_FILE"

# ---------------------------------------------------------------------------------------------------------------
step "8. certificate"
HOOK_SRC="$REPO/deploy/certbot-deploy-hook.sh"
if [ -n "$DOMAIN" ] && [ -n "$CERT_FILE" ] && [ -d "/etc/letsencrypt/live/$DOMAIN" ]; then
    run env TOLLGATE_CONF="$CONF" TOLLGATE_VERIFY=no bash "$HOOK_SRC" "$DOMAIN"
fi
CERT_OK=yes
CERT_FILES=()
if [ -n "$CERT_FILE" ] || [ -n "$KEY_FILE" ]; then
    CERT_FILES=("$CERT_FILE" "$KEY_FILE")
    for f in "${CERT_FILES[@]}"; do
        if [ -z "$f" ] || [ ! -e "$f" ]; then
            CERT_OK=no
            [ "$DRY_RUN" = yes ] || warn "${f:-cert or key} does not exist yet: the service will not start until it does (sudo certbot certonly ..., then sudo $HOOK_DEST DOMAIN)"
        fi
    done
fi
case "$ACME_DOMAIN" in
    "")
        if [ "${#CERT_FILES[@]}" -eq 0 ]; then
            CERT_OK=no
            warn "no certificate configured: set acme-domain (or cert and key) in $CONF"
        fi ;;
    example.com|*.example.com|example.net|*.example.net|example.org|*.example.org)
        CERT_OK=no
        warn "acme-domain in $CONF is still the example's $ACME_DOMAIN: set this server's name, or run again with --domain NAME (deploy/README.md, step 5)" ;;
    *)
        say "from Let's Encrypt for $ACME_DOMAIN (acme-domain): Tollgate gets it at its first start and renews it itself;"
        say "  the name's DNS must point here and port 443 be reachable from the internet${CERT_FILE:+ ($CERT_FILE is served until then)}" ;;
esac

# ---------------------------------------------------------------------------------------------------------------
step "9. systemd unit, certbot hook, logrotate, docs"
UNIT_CHANGED=no
if [ -n "$PACKAGE" ]; then
    say "the unit, the logrotate file and the docs came with the package"
elif [ -f "$UNIT_DEST" ] && cmp -s "$REPO/deploy/tollgate.service" "$UNIT_DEST"; then
    say "$UNIT_DEST is up to date"
else
    run install -m 0644 -o root -g root "$REPO/deploy/tollgate.service" "$UNIT_DEST"
    UNIT_CHANGED=yes
fi
run install -d -m 0755 "$(dirname "$HOOK_DEST")"
# The hook acts only on the lineage named by --domain (or the one baked into the installed hook by an earlier
# run), so renewals of other certificates on this machine leave Tollgate alone.
HOOK_DOMAIN="$DOMAIN"
if [ -z "$HOOK_DOMAIN" ] && [ -f "$HOOK_DEST" ]; then
    HOOK_DOMAIN="$(sed -n -E 's/^CERT_NAME="\$\{TOLLGATE_CERT_NAME:-([^}]+)\}".*/\1/p' "$HOOK_DEST" | head -n 1)"
fi
tmp_hook="$(mktemp)"
trap 'rm -f "$tmp_hook"' EXIT
if [ -n "$HOOK_DOMAIN" ]; then
    sed "s|^CERT_NAME=\"\${TOLLGATE_CERT_NAME:-}\"|CERT_NAME=\"\${TOLLGATE_CERT_NAME:-$HOOK_DOMAIN}\"|" "$HOOK_SRC" >"$tmp_hook"
    grep -qF "TOLLGATE_CERT_NAME:-$HOOK_DOMAIN}" "$tmp_hook" || die "could not set the domain in the hook"
else
    cp "$HOOK_SRC" "$tmp_hook"
fi
if [ -f "$HOOK_DEST" ] && cmp -s "$tmp_hook" "$HOOK_DEST"; then
    say "$HOOK_DEST is up to date${HOOK_DOMAIN:+ (lineage $HOOK_DOMAIN)}"
else
    say "certbot deploy hook${HOOK_DOMAIN:+ for lineage $HOOK_DOMAIN}:"
    run install -m 0755 -o root -g root "$tmp_hook" "$HOOK_DEST"
fi
if [ -z "$PACKAGE" ]; then
    run install -m 0644 -o root -g root "$REPO/deploy/logrotate.conf" "$LOGROTATE_DEST"
    run install -d -m 0755 "$DOC_DEST"
    for doc in README.md MIGRATION.md FIREWALL.md SCALE-OUT.md; do
        if [ -f "$REPO/deploy/$doc" ]; then run install -m 0644 "$REPO/deploy/$doc" "$DOC_DEST/$doc"; fi
    done
    if [ -f "$REPO/deploy/tollgate.conf" ]; then
        run install -m 0644 "$REPO/deploy/tollgate.conf" "$DOC_DEST/tollgate.conf.example"
    fi
fi

# ---------------------------------------------------------------------------------------------------------------
step "10. service"
# Can the service user read what it needs? (`tollgate users` and a hand copy easily leave files root-only.)
if [ "$DRY_RUN" = no ] && [ "$CERT_OK" = yes ]; then
    for f in "$CONF" "$USERS_FILE" "${CERT_FILES[@]}"; do
        runuser -u "$SVC_USER" -- test -r "$f" || die "$f is not readable by $SVC_USER (chown root:$SVC_USER $f; chmod 0640 $f)"
    done
    # (only once the binary has the subcommand: `tollgate --help` lists it)
    if "$BIN" --help 2>/dev/null | grep -qE '^[[:space:]]+check-config'; then
        runuser -u "$SVC_USER" -- "$BIN" check-config --config "$CONF" || die "tollgate check-config found a problem (above); fix $CONF"
    fi
fi
# Ports held by another program (nginx during a migration) would make the start fail.
BUSY=""
if command -v ss >/dev/null 2>&1; then
    for addr in $(conf_all listen) $(conf_all listen-redirect); do
        port="${addr##*:}"
        holder="$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -v '"tollgate"' | sed -n -E 's/.*users:\(\("([^"]+)".*/\1/p' | head -n 1 || true)"
        [ -n "$holder" ] && BUSY="$BUSY $port($holder)"
    done
fi

if [ "$HAVE_SYSTEMD" = no ] && [ "$DRY_RUN" = no ]; then
    say "no systemd: skipped daemon-reload, enable and start"
else
    run systemctl daemon-reload
    run systemctl enable tollgate.service
    if [ "$START" = no ]; then
        say "--no-start: not starting; when ready: sudo systemctl start tollgate"
    elif [ "$CERT_OK" = no ]; then
        say "not starting: no certificate yet (see step 8)"
    elif [ -n "$BUSY" ]; then
        warn "not starting: port(s)$BUSY already in use. Free them (deploy/MIGRATION.md, cut-over), then: sudo systemctl start tollgate"
    elif systemctl is-active --quiet tollgate; then
        if [ "$BINARY_CHANGED" = yes ] || [ "$UNIT_CHANGED" = yes ]; then
            say "restarting: in-flight requests get drain-timeout to finish first"
            run systemctl restart tollgate.service
        else
            say "running and unchanged: left alone (after editing $CONF: sudo systemctl reload tollgate)"
        fi
    else
        run systemctl start tollgate.service
    fi
    if [ "$DRY_RUN" = no ] && [ "$START" = yes ] && [ "$CERT_OK" = yes ] && [ -z "$BUSY" ]; then
        sleep 2
        if systemctl is-active --quiet tollgate; then
            say "tollgate is running"
        else
            journalctl -u tollgate -n 30 --no-pager >&2 || true
            die "tollgate did not stay up (journal above); fix and run: sudo systemctl restart tollgate"
        fi
    fi
fi

# ---------------------------------------------------------------------------------------------------------------
step "11. smoke check"
if [ "$DRY_RUN" = yes ]; then
    run "$BIN" serve --help
else
    "$BIN" serve --help >/dev/null || die "$BIN serve --help failed"
    say "$BIN serve --help: ok"
fi

echo
say "done. Next:"
say "  logs:       journalctl -u tollgate -f"
say "  users:      sudo tollgate users add NAME --generate --file $USERS_FILE   (keeps the file's owner and mode)"
say "  test:       curl -u USER:PASSWORD https://YOUR.DOMAIN/api/tags"
say "  migrating from nginx: $DOC_DEST/MIGRATION.md"
