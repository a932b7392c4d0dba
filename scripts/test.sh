#!/usr/bin/env bash
# Runs every test: unit and integration (AiGate.Web.Tests, real PostgreSQL, the app in-process)
# and end-to-end (AiGate.E2E, the app as a process, headless Chromium). Installs what is missing
# and starts the project's PostgreSQL first. Screenshots land in TestResults/screenshots.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/bootstrap.sh --browser
pg_url="$(scripts/pg.sh url)"   # a failure stops here (set -e), not in every test
export AIGATE_TEST_PG="$pg_url"
export AIGATE_CHROMIUM="${AIGATE_CHROMIUM:-/usr/bin/chromium}"

dotnet build AiGate.sln -c Debug --nologo -v quiet -clp:NoSummary

status=0
log="$(mktemp)"
dotnet test AiGate.sln -c Debug --no-build --nologo 2>&1 | tee "$log" || status=$?

# One closing line over both test assemblies: "N passed, N failed".
awk '/(Passed|Failed)! +- Failed: /{
       for (i = 1; i <= NF; i++) { gsub(",", "", $(i+1)); if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) }
     } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit "$status"
