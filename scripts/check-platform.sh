#!/bin/sh
# Stops `make setup` early, with what to do, on a system the hub's packages have no wheels for:
# a 32-bit userland (Raspberry Pi OS 32-bit: onnxruntime, Vosk and others publish 64-bit Linux
# wheels only, and pip would end in "no matching distribution") or a Python older than 3.11.
#   check-platform.sh [PYTHON]
set -eu
PYTHON="${1:-python3}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: $PYTHON not found: install Python 3.11 or newer (sudo apt-get install -y python3)" >&2
    exit 1
fi
bits=$("$PYTHON" -c 'import struct; print(struct.calcsize("P") * 8)')
if [ "$bits" != 64 ]; then
    echo "error: this system runs $bits-bit programs ($(uname -m)); the hub needs a 64-bit one." >&2
    echo "On a Raspberry Pi, install Raspberry Pi OS (64-bit) (Pi 3, 4, 5 or Zero 2)." >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))'; then
    echo "error: $("$PYTHON" -V 2>&1) is too old; the hub needs Python 3.11 or newer" \
        "(Debian 12 and Raspberry Pi OS bookworm have it)." >&2
    exit 1
fi
