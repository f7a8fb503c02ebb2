#!/usr/bin/env bash
# Install Debian's chromium for the report's browser test (tests/test_report_browser.py).
# Quiet and idempotent: does nothing when /usr/bin/chromium exists or apt-get is missing.
# The test drives this system browser through the `playwright` Python package; it never
# downloads a browser build of its own (no `playwright install`).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser.sh: no apt-get here; install chromium by hand for the browser test" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  else
    echo "install_browser.sh: not root and no sudo; install chromium by hand" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
if [ ! -x /usr/bin/chromium ]; then
  echo "install_browser.sh: apt-get ran but /usr/bin/chromium is still missing" >&2
  exit 1
fi
