#!/bin/sh
# Installs the Debian packages the hub needs, only those missing. Idempotent; needs root or sudo
# when something is missing. Works on Debian 12 and Raspberry Pi OS (bookworm).
#   install-system-packages.sh          what the hub and the demo need
#   install-system-packages.sh --test   plus what only the tests and benchmarks need (RabbitMQ
#                                       for the cluster test; festival and flite voices for
#                                       bench/voice.py)
set -eu

# libatomic1: Vosk's library and Playwright's node need it on aarch64 (a Pi), where nothing
# else pulls it in.
PACKAGES="mosquitto espeak-ng sox chromium fonts-dejavu-core fonts-nanum libatomic1"
TEST_PACKAGES="rabbitmq-server festival festvox-kallpc16k festvox-us-slt-hts flite"

if [ "${1:-}" = "--test" ]; then
    PACKAGES="$PACKAGES $TEST_PACKAGES"
fi

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

# Debian's own Python needs python3-venv for `python3 -m venv`.
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    missing="$missing python3-venv"
fi

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

# The tests start RabbitMQ nodes of their own; the system service Debian starts on install would
# only hold ports and memory on a store's hub for good.
case " $missing " in
    *" rabbitmq-server "*)
        if command -v systemctl >/dev/null 2>&1; then
            $SUDO systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
        fi;;
esac
