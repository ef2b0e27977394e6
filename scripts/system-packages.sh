#!/bin/sh
# System (Debian) packages the tests need besides Python's: installs any whose command
# is missing when run as root (apt-get update once, then apt-get install -y), else warns.
# Tests that need a missing tool skip, or fail under CI=true.
set -eu

# "command package" pairs, one a line.
PACKAGES='
strace strace
'

missing=""
for pair in $(printf '%s' "$PACKAGES" | tr ' ' ':'); do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    if ! command -v "$cmd" >/dev/null 2>&1; then
        missing="$missing $pkg"
    fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-packages: installing$missing"
    apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
else
    echo "system-packages: warning: missing$missing; install with:" \
        "sudo apt-get install -y$missing (tests that need them will skip, or fail under CI=true)" >&2
fi
