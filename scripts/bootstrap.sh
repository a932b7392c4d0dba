#!/usr/bin/env bash
# Installs what the project needs from Debian's packages, once: PostgreSQL always, Node.js for the
# front-end build when it is missing, and with --browser the Chromium that the E2E tests drive.
# Idempotent: it only calls apt when something is missing.
set -euo pipefail

want=()
command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || want+=(postgresql)
command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
if [ "${1:-}" = "--browser" ]; then
  [ -x /usr/bin/chromium ] || want+=(chromium fonts-liberation)
fi
command -v dotnet >/dev/null 2>&1 || { echo "bootstrap: the .NET 10 SDK is required (dotnet on PATH)" >&2; exit 1; }

if [ ${#want[@]} -gt 0 ]; then
  echo "bootstrap: installing ${want[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
