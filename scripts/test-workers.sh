#!/bin/sh
# How many processes `make test` runs the suite in: two where the machine has two cores and the
# memory for two (each holds both speech engines' models and a Chromium: about 3 GB, so 7 GB
# available with room to spare), otherwise one (a Raspberry Pi with 4 GB runs it in order).
#   test-workers.sh        (MEMINFO names another file to read than /proc/meminfo)
set -eu
cores=$(nproc 2>/dev/null || echo 1)
available_kb=$(awk '/^MemAvailable:/ {print $2}' "${MEMINFO:-/proc/meminfo}" 2>/dev/null || echo 0)
if [ "$cores" -ge 2 ] && [ "${available_kb:-0}" -ge 7000000 ]; then
    echo 2
else
    echo 1
fi
