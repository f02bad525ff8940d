#!/usr/bin/env bash
# Installs toold: release binaries, systemd units, sysusers.d/tmpfiles.d files, default config.
# Run `scripts/install.sh --help` for the options. Build first with scripts/build.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/install.sh [--apply | --no-apply] [--help]

Installs the toold release build:
  $PREFIX/bin/toold, $PREFIX/bin/toolc                       (0755)
  $PREFIX/libexec/toold/toold-sandbox-zygote                  (0755; clones the sandboxes)
  $PREFIX/lib/systemd/system/toold.service, toold.socket      (0644; ExecStart= is $PREFIX/bin/toold)
  $PREFIX/lib/sysusers.d/toold.conf, $PREFIX/lib/tmpfiles.d/toold.conf
  $PREFIX/share/doc/toold/OPERATIONS.md
  /etc/toold/toold.json (0640; an existing one is never overwritten), /etc/toold/tools.d/
  /etc/toold/policy.json (0640; `toold --print-default-policy`; an existing one is never overwritten)

Environment:
  PREFIX         install prefix (default /usr; /usr/local also works: systemd searches
                 /usr/local/lib/systemd/system, sysusers.d and tmpfiles.d there)
  DESTDIR        staging root prepended to every path (default: none, i.e. the live system)
  TOOLD_BIN_DIR  where toold, toolc and toold-sandbox-zygote are taken from (default: .build/release)

--apply     after copying, create the users and directories (systemd-sysusers,
            systemd-tmpfiles --create) inside DESTDIR, and `systemctl daemon-reload` when
            installing live under a running systemd. Default when DESTDIR is empty.
--no-apply  only copy files (the default when DESTDIR is set: packaging/staging).

Then: systemctl enable --now toold.socket     (the daemon starts on the first connection)
USAGE
}

apply=""
for arg in "$@"; do
    case "$arg" in
        -h|--help) usage; exit 0 ;;
        --apply) apply=1 ;;
        --no-apply) apply=0 ;;
        *) echo "install.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr}
PREFIX=${PREFIX%/}
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
bin_src=${TOOLD_BIN_DIR:-$repo/.build/release}
[[ -z "$apply" ]] && { [[ -z "$DESTDIR" ]] && apply=1 || apply=0; }

case "$PREFIX" in /*) ;; *) echo "install.sh: PREFIX must be absolute: $PREFIX" >&2; exit 2 ;; esac

bindir=$PREFIX/bin
libexecdir=$PREFIX/libexec/toold
unitdir=$PREFIX/lib/systemd/system
sysusersdir=$PREFIX/lib/sysusers.d
tmpfilesdir=$PREFIX/lib/tmpfiles.d
docdir=$PREFIX/share/doc/toold
confdir=/etc/toold

for b in toold toolc toold-sandbox-zygote; do
    if [[ ! -x "$bin_src/$b" ]]; then
        echo "install.sh: $bin_src/$b not found: build first (scripts/build) or set TOOLD_BIN_DIR" >&2
        exit 1
    fi
done

install -d -m 0755 "$DESTDIR$bindir" "$DESTDIR$unitdir" "$DESTDIR$sysusersdir" "$DESTDIR$tmpfilesdir" "$DESTDIR$docdir" \
    "$DESTDIR$libexecdir"
install -m 0755 "$bin_src/toold" "$bin_src/toolc" "$DESTDIR$bindir/"
# toold looks for it beside itself, then in ../libexec/toold/ (Sources/Sandbox/SandboxRuntime.swift).
install -m 0755 "$bin_src/toold-sandbox-zygote" "$DESTDIR$libexecdir/"

# Units name the installed binary and docs for this prefix.
for u in toold.service toold.socket; do
    sed -e "s|^ExecStart=/usr/bin/toold|ExecStart=$bindir/toold|" \
        -e "s|file:///usr/share/doc/toold/|file://$docdir/|" \
        "$repo/systemd/$u" > "$DESTDIR$unitdir/$u.tmp"
    chmod 0644 "$DESTDIR$unitdir/$u.tmp"
    mv -f "$DESTDIR$unitdir/$u.tmp" "$DESTDIR$unitdir/$u"
done
install -m 0644 "$repo/systemd/sysusers.d/toold.conf" "$DESTDIR$sysusersdir/toold.conf"
install -m 0644 "$repo/systemd/tmpfiles.d/toold.conf" "$DESTDIR$tmpfilesdir/toold.conf"
[[ -f "$repo/docs/OPERATIONS.md" ]] && install -m 0644 "$repo/docs/OPERATIONS.md" "$DESTDIR$docdir/OPERATIONS.md"

install -d -m 0750 "$DESTDIR$confdir" "$DESTDIR$confdir/tools.d"
if [[ -e "$DESTDIR$confdir/toold.json" ]]; then
    kept=" (kept existing $confdir/toold.json)"
else
    install -m 0640 "$repo/systemd/toold.json" "$DESTDIR$confdir/toold.json"
    kept=""
fi
if [[ -e "$DESTDIR$confdir/policy.json" ]]; then
    kept+=" (kept existing $confdir/policy.json)"
else
    "$bin_src/toold" --print-default-policy > "$DESTDIR$confdir/policy.json.tmp"
    chmod 0640 "$DESTDIR$confdir/policy.json.tmp"
    mv -f "$DESTDIR$confdir/policy.json.tmp" "$DESTDIR$confdir/policy.json"
fi

echo "installed toold into ${DESTDIR:-/}: $bindir/{toold,toolc}, $unitdir/toold.{service,socket}$kept"

if [[ "$apply" == 1 ]]; then
    if [[ -z "$DESTDIR" ]]; then
        systemd-sysusers "$sysusersdir/toold.conf"
        systemd-tmpfiles --create "$tmpfilesdir/toold.conf"
        if [[ -d /run/systemd/system ]]; then
            systemctl daemon-reload
            echo "next: systemctl enable --now toold.socket"
        fi
    else
        systemd-sysusers --root="$DESTDIR" "$DESTDIR$sysusersdir/toold.conf"
        systemd-tmpfiles --root="$DESTDIR" --create "$DESTDIR$tmpfilesdir/toold.conf"
    fi
fi
