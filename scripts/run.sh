#!/usr/bin/env bash
# Runs AiGate locally: installs what is missing, starts the project's PostgreSQL, builds (front end
# included), then serves on http://localhost:5080 in Development, which migrates the database and
# seeds demo data at start. Ctrl+C stops the app; `scripts/pg.sh stop` stops the database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/bootstrap.sh
connection_string="$(scripts/pg.sh url)"
dotnet build AiGate.Web -c Debug --nologo -v quiet -clp:NoSummary

url="${AIGATE_URL:-http://localhost:5080}"
printf '\nAiGate: %s  (Ctrl+C to stop)\n\n' "$url"
cd AiGate.Web
ASPNETCORE_ENVIRONMENT=Development ConnectionStrings__Default="$connection_string" \
  exec dotnet bin/Debug/net10.0/AiGate.Web.dll --urls "$url"
