#!/bin/sh
# The kiosk screen: Chromium in kiosk mode on the hub's kiosk page, started by the desktop
# session of the kiosk user (deploy/kiosk/retail-hub-kiosk.desktop), never as root: Chromium
# refuses to run as root without turning its sandbox off. Works on X11 and on Wayland (the
# default of Raspberry Pi OS bookworm).
#
# RETAIL_HUB_KIOSK_URL overrides the page (default: the hub on this machine, port 8080).
url="${RETAIL_HUB_KIOSK_URL:-http://127.0.0.1:8080/kiosk}"
health="${url%/kiosk}/healthz"

# The hub may still be starting (the model loads in a few seconds): wait for it.
# Any answer will do: a hub whose disk is full answers 503 but still serves the kiosk.
until curl -s -o /dev/null "$health"; do sleep 2; done

# Debian calls it chromium; older Raspberry Pi OS images chromium-browser.
browser="$(command -v chromium || command -v chromium-browser || echo chromium)"

# Restart the browser if it ever exits (a crash, an accidental close on the touch screen).
while true; do
  "$browser" --kiosk --noerrdialogs --disable-infobars --no-first-run --disable-translate \
    --disable-features=TranslateUI --check-for-update-interval=31536000 \
    --autoplay-policy=no-user-gesture-required --ozone-platform-hint=auto "$url"
  sleep 5
done
