#!/usr/bin/env bash
# Gateway overhead, measured: the same requests straight to an upstream, through AiGate (its relay, and
# its YARP pass-through to the same upstream endpoint), and through a peer gateway (Portkey's open-source AI gateway, Node, pinned in bench/peer), side by side in one run,
# on loopback, release builds. Prints requests/s and p50/p99 latency per case.
#
#   bench/run.sh                 (defaults: 10 s per case, 32 connections, 2 wrk threads)
#   DURATION=30s CONNECTIONS=64 bench/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration="${DURATION:-10s}"
connections="${CONNECTIONS:-32}"
threads="${THREADS:-2}"
work=".local/bench"
mkdir -p "$work"

scripts/bootstrap.sh
command -v wrk >/dev/null 2>&1 || {
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}

echo "building release binaries..." >&2
dotnet publish AiGate.Web -c Release -o "$work/app" --nologo -v quiet >/dev/null
dotnet publish bench/EchoUpstream -c Release -o "$work/upstream" --nologo -v quiet >/dev/null
(cd bench/peer && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)

server="$(scripts/pg.sh url)"
db="aigate_bench"
scripts/pg.sh psql -q -c "drop database if exists $db with (force)" -c "create database $db" >/dev/null
cs="${server/Database=aigate/Database=$db}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
upstream_port=$(free_port)
gateway_port=$(free_port)
unmetered_port=$(free_port)
peer_port=$(free_port)
pepper=$(head -c 32 /dev/urandom | base64)
# The content root is the published folder, where appsettings.json (plans, packs) lives.
export ASPNETCORE_CONTENTROOT="$PWD/$work/app"
export ConnectionStrings__Default="$cs" Keys__Pepper="$pepper" ASPNETCORE_ENVIRONMENT=Production \
  Providers__bench__Kind=openai Providers__bench__BaseUrl="http://127.0.0.1:$upstream_port/v1" Providers__bench__ApiKey=bench-provider-key \
  Logging__LogLevel__Default=Warning Jobs__SchedulerEnabled=false \
  Resend__ApiKey=re_bench_unused Email__From=bench@example.test Email__BaseUrl=http://127.0.0.1 \
  Stripe__SecretKey=sk_bench_unused Stripe__WebhookSecret=whsec_bench_unused \
  Billing__Plans__0__RequestsPerMinute=1000000000 Billing__Plans__0__TokensPerMinute=1000000000000

dotnet "$work/app/AiGate.Web.dll" migrate >/dev/null
# A user, a priced model routed to the bench upstream, and a key.
scripts/pg.sh psql -q -d "$db" >/dev/null <<SQL
insert into users (id, created_at, user_name, normalized_user_name, email, normalized_email, email_confirmed, security_stamp,
                   phone_number_confirmed, two_factor_enabled, lockout_enabled, access_failed_count)
values ('00000000-0000-7000-8000-000000000001', now(), 'bench@example.test', 'BENCH@EXAMPLE.TEST', 'bench@example.test',
        'BENCH@EXAMPLE.TEST', true, 'bench', false, false, false, 0);
insert into models (id, name, kind, owned_by, context_length, max_output_tokens, input_micros_per_mtok, output_micros_per_mtok,
                    cached_input_micros_per_mtok, margin_basis_points, aliases, modalities, enabled, created_at)
values ('bench/model', 'Bench', 'chat', 'bench', 8192, 1024, 1000000, 2000000, 500000, null, array[]::text[], array['text'], true, now());
insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled) values ('bench/model', 'bench', 'bench-model', 0, 1, true);
SQL
key=$(dotnet "$work/app/AiGate.Web.dll" create-key --email bench@example.test --name bench | tail -n 1)
dotnet "$work/app/AiGate.Web.dll" grant-credits --email bench@example.test --usd 100000 --reason bench >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
ASPNETCORE_URLS="http://127.0.0.1:$upstream_port" dotnet "$work/upstream/EchoUpstream.dll" >/dev/null 2>&1 & pids+=($!)
dotnet "$work/app/AiGate.Web.dll" --urls "http://127.0.0.1:$gateway_port" >"$work/gateway.log" 2>&1 & pids+=($!)
# The same build with metering switched off (refused in Production, so this one runs as Staging).
ASPNETCORE_ENVIRONMENT=Staging Credits__DisableMeteringForBenchmarks=true \
  dotnet "$work/app/AiGate.Web.dll" --urls "http://127.0.0.1:$unmetered_port" >"$work/gateway-unmetered.log" 2>&1 & pids+=($!)
# The peer: it forwards to the host named in each request's x-portkey-custom-host, which must be trusted.
NODE_ENV=production TRUSTED_CUSTOM_HOSTS=127.0.0.1 \
  node bench/peer/node_modules/@portkey-ai/gateway/build/start-server.js --port="$peer_port" --headless >"$work/peer.log" 2>&1 & pids+=($!)
for port in "$upstream_port" "$gateway_port" "$unmetered_port" "$peer_port"; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done

printf '{"model":"%s","messages":[{"role":"user","content":"Say something short."}],"max_tokens":16}' bench-model > "$work/direct.json"
printf '{"model":"%s","messages":[{"role":"user","content":"Say something short."}],"max_tokens":16}' bench/model > "$work/gateway.json"
printf '{"model":"%s","messages":[{"role":"user","content":"Say something short."}],"max_tokens":16,"stream":true}' bench-model > "$work/direct-stream.json"
printf '{"model":"%s","messages":[{"role":"user","content":"Say something short."}],"max_tokens":16,"stream":true}' bench/model > "$work/gateway-stream.json"

# Sanity: both paths answer 200 before anything is timed.
curl -sf -o /dev/null -H 'Content-Type: application/json' --data @"$work/direct.json" "http://127.0.0.1:$upstream_port/v1/chat/completions"
curl -sf -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $key" --data @"$work/gateway.json" "http://127.0.0.1:$gateway_port/api/v1/chat/completions"
# The YARP forwarder: the pass-through to the bench provider's own /v1/chat/completions, metered, with the upstream model's name.
passthrough="http://127.0.0.1:$gateway_port/api/v1/passthrough/bench/chat/completions"
curl -sf -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $key" --data @"$work/direct.json" "$passthrough"

measure() {   # name url body-file key [peer custom host]
  local out
  out=$(BODY_FILE="$3" AIGATE_KEY="$4" PEER_CUSTOM_HOST="${5:-}" wrk -t"$threads" -c"$connections" -d"$duration" --latency -s bench/post.lua "$2")
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '%-34s %12s %10s %10s %8s\n' "$1" "$rps" "$p50" "$p99" "${errors:-0}"
}

peer_host="http://127.0.0.1:$upstream_port/v1"
curl -sf -o /dev/null -H 'Content-Type: application/json' -H 'Authorization: Bearer bench-provider-key' \
  -H 'x-portkey-provider: openai' -H "x-portkey-custom-host: $peer_host" --data @"$work/direct.json" "http://127.0.0.1:$peer_port/v1/chat/completions"

# Warm-up (JIT, connection pools, key cache), not reported.
BODY_FILE="$work/gateway.json" AIGATE_KEY="$key" wrk -t1 -c8 -d3s -s bench/post.lua "http://127.0.0.1:$gateway_port/api/v1/chat/completions" >/dev/null
BODY_FILE="$work/gateway.json" AIGATE_KEY="$key" wrk -t1 -c8 -d3s -s bench/post.lua "http://127.0.0.1:$unmetered_port/api/v1/chat/completions" >/dev/null
BODY_FILE="$work/direct.json" AIGATE_KEY="$key" wrk -t1 -c8 -d3s -s bench/post.lua "$passthrough" >/dev/null
BODY_FILE="$work/direct.json" wrk -t1 -c8 -d2s -s bench/post.lua "http://127.0.0.1:$upstream_port/v1/chat/completions" >/dev/null
BODY_FILE="$work/direct.json" AIGATE_KEY=bench-provider-key PEER_CUSTOM_HOST="$peer_host" \
  wrk -t1 -c8 -d3s -s bench/post.lua "http://127.0.0.1:$peer_port/v1/chat/completions" >/dev/null

echo
echo "wrk -t$threads -c$connections -d$duration, loopback, $(nproc) cores; upstream answers instantly"
printf '%-34s %12s %10s %10s %8s\n' "case" "requests/s" "p50" "p99" "non-2xx"
measure "direct, JSON"         "http://127.0.0.1:$upstream_port/v1/chat/completions" "$work/direct.json" ""
measure "AiGate, metering off, JSON" "http://127.0.0.1:$unmetered_port/api/v1/chat/completions" "$work/gateway.json" "$key"
measure "AiGate, metering on, JSON"  "http://127.0.0.1:$gateway_port/api/v1/chat/completions" "$work/gateway.json" "$key"
measure "AiGate via YARP forwarder, JSON" "$passthrough" "$work/direct.json" "$key"
measure "peer (Portkey 1.15.2), JSON" "http://127.0.0.1:$peer_port/v1/chat/completions" "$work/direct.json" bench-provider-key "$peer_host"
measure "direct, stream"       "http://127.0.0.1:$upstream_port/v1/chat/completions" "$work/direct-stream.json" ""
measure "AiGate, metering off, stream" "http://127.0.0.1:$unmetered_port/api/v1/chat/completions" "$work/gateway-stream.json" "$key"
measure "AiGate, metering on, stream"  "http://127.0.0.1:$gateway_port/api/v1/chat/completions" "$work/gateway-stream.json" "$key"
measure "AiGate via YARP forwarder, stream" "$passthrough" "$work/direct-stream.json" "$key"
measure "peer (Portkey 1.15.2), stream" "http://127.0.0.1:$peer_port/v1/chat/completions" "$work/direct-stream.json" bench-provider-key "$peer_host"
sleep 1
# Every metered call is in the ledger: usage rows, and balance = Σ ledger.
scripts/pg.sh psql -q -d "$db" -tA -c "select 'usage rows: ' || count(*) || ', ledger = balance: ' || ((select sum(amount_micros) from ledger_entries) = (select sum(balance_micros) from credit_accounts)) from usage_events"
