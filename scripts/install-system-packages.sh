#!/bin/sh
# Installs the Debian packages the hub needs, only those missing. Idempotent; needs root or sudo
# when something is missing. Works on Debian 12 and Raspberry Pi OS (bookworm).
set -eu

PACKAGES="mosquitto espeak-ng sox chromium fonts-dejavu-core"

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

echo "installing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "error: need root (or sudo) to install:$missing" >&2
    exit 1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
