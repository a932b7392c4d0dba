#!/usr/bin/env bash
# Gateway overhead, measured: the same requests straight to an upstream, through a bare .NET forwarder (HttpClient
# relaying bytes, nothing else: the floor), through AiGate (its relay, and its YARP pass-through to the same upstream
# endpoint), and through a peer gateway (Portkey's open-source AI gateway, Node, pinned in bench/peer), side by side
# in one run, on loopback, release builds. Prints requests/s and p50/p99 per case (wrk, closed loop), the throughput
# ratios again in alternating rounds (ROUNDS, default 3; the targets use their median), then the issue-16 table: throughput ratios, added latency and time to first token at a fixed 200 requests/s (bench/Load,
# open loop), allocations, GC and thread-pool figures per call (dotnet-counters on the gateway), each beside its target.
#
#   bench/run.sh                 (defaults: 10 s per case, 32 connections, 2 wrk threads)
#   DURATION=30s CONNECTIONS=64 bench/run.sh
#   bench/run.sh streams         (10,000 concurrent slow streams through the gateway: served, errors, peak RSS)
#   bench/run.sh rounds          (only the alternating throughput rounds, with each process's CPU per call)
#   bench/run.sh serve           (the upstream, the bare forwarder and the gateway left running; their addresses in .local/bench/serve.env)
#   bench/run.sh syscalls        (system calls per call, the bare forwarder beside AiGate; PROFILE=stream for streams)
#   bench/run.sh tokens          (the prompt token counter beside Microsoft.ML.Tokenizers: memory, load time, speed)
#   bench/run.sh profile         (which types the gateway allocates per non-streamed call, from a dotnet-trace capture;
#                                 PROFILE=stream for streamed calls; CPU=1 for where the CPU time goes instead;
#                                 PROFILE_RATE=wrk saturated by wrk instead of the default 1,000 calls/s;
#                                 PROFILE_TARGET=forwarder the bare forwarder instead, the floor to read it against)
#   PROMPT_BYTES=8192 bench/run.sh ...   (any mode: every case's prompt 8 KB of English instead of one line)
set -euo pipefail
[ -z "${BENCH_TRACE:-}" ] || set -x   # BENCH_TRACE=1: every command as it runs, to find where a run stopped
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode="${1:-all}"
# As the Dockerfile deploys it (a runtime setting chosen by bench/run.sh streams), for every .NET process here alike.
export DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION="${DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION:-1024}"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-32}"
threads="${THREADS:-2}"
work=".local/bench"
mkdir -p "$work"

scripts/bootstrap.sh
# apt_install COMMAND: the Debian package of that name, unless the command is there (a fresh machine's package lists may
# be empty: they are brought up first).
apt_install() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}
apt_install wrk

if [ "$mode" = tokens ]; then
  # The token counter beside Microsoft.ML.Tokenizers: heap kept, load time, counting speed on this repository's files.
  exec dotnet run -c Release --project bench/TokenCount -- "$PWD"
fi

echo "building release binaries..." >&2
dotnet publish AiGate.Web -c Release -o "$work/app" --nologo -v quiet >/dev/null
dotnet publish bench/EchoUpstream -c Release -o "$work/upstream" --nologo -v quiet >/dev/null
dotnet publish bench/BareForwarder -c Release -o "$work/forwarder" --nologo -v quiet >/dev/null
dotnet publish bench/Load -c Release -o "$work/load" --nologo -v quiet >/dev/null
[ -x "$work/tools/dotnet-counters" ] || dotnet tool install --tool-path "$work/tools" dotnet-counters --version 10.0.750501 >/dev/null
if [ "$mode" = profile ]; then
  dotnet publish bench/AllocProfile -c Release -o "$work/allocprofile" --nologo -v quiet >/dev/null
  [ -x "$work/tools/dotnet-trace" ] || dotnet tool install --tool-path "$work/tools" dotnet-trace --version 10.0.750501 >/dev/null
fi
(cd bench/peer && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)

server="$(scripts/pg.sh url)"
db="aigate_bench"
scripts/pg.sh psql -q -c "drop database if exists $db with (force)" -c "create database $db" >/dev/null
cs="${server/Database=aigate/Database=$db}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
upstream_port=$(free_port)
upstream_h2c_port=$(free_port)
forwarder_port=$(free_port)
telemetry_port=$(free_port)
prometheus_port=$(free_port)
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

# PROMPT_BYTES=N: each prompt, in every case, carries N more bytes of English text (a real prompt is kilobytes, not a line).
filler=$(yes 'the quick brown fox jumps over the lazy dog' | tr '\n' ' ' | head -c "${PROMPT_BYTES:-0}" || true)
# chat_body MODEL TEXT [stream]: one user message of TEXT, the filler after it, 16 tokens at most.
chat_body() {
  printf '{"model":"%s","messages":[{"role":"user","content":"%s %s"}],"max_tokens":16%s}' "$1" "$2" "$filler" "${3:+,\"stream\":true}"
}
chat_body bench/model "Say something short." > "$work/gateway.json"
# The profile and syscalls modes' calls: streamed with PROFILE=stream.
profile_stream=$([ "${PROFILE:-json}" != stream ] || echo stream)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
PORT="$upstream_port" H2C_PORT="$upstream_h2c_port" dotnet "$work/upstream/EchoUpstream.dll" >/dev/null 2>&1 & pids+=($!)
wait_port() { for _ in $(seq 1 150); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; return 1; }

# counters_start PID FILE SECONDS 'System.Runtime[...]': dotnet-counters on PID into FILE (csv) in the background for
# SECONDS; its pid is left in counters_pid. Read FILE after `wait "$counters_pid"`.
counters_start() {
  rm -f "$2"
  "$work/tools/dotnet-counters" collect -p "$1" --format csv -o "$2" --refresh-interval 1 --duration "00:00:$3" --counters "$4" >/dev/null 2>&1 &
  counters_pid=$!
  sleep 1
}

# start_forwarder PORT / start_gateway PORT: the bare forwarder (to the upstream, HTTP/1.1) or the gateway listening on
# PORT, in the background; their pids in forwarder_pid / gateway_pid.
start_forwarder() {
  UPSTREAM="http://127.0.0.1:$upstream_port" ASPNETCORE_URLS="http://127.0.0.1:$1" dotnet "$work/forwarder/BareForwarder.dll" >/dev/null 2>&1 &
  forwarder_pid=$!; pids+=($forwarder_pid)
}
start_gateway() {
  dotnet "$work/app/AiGate.Web.dll" --urls "http://127.0.0.1:$1" >"$work/gateway.log" 2>&1 &
  gateway_pid=$!; pids+=($gateway_pid)
}

rss_peak_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

# rss_parts PID: the resident memory now as anonymous (heaps, stacks, JIT code) + file-backed (mapped assemblies) MB,
# and the process's threads.
rss_parts() { awk '/RssAnon/ {a = $2} /RssFile/ {f = $2} /^Threads/ {t = $2} END {printf "%.0f+%.0f, %d threads", a/1024, f/1024, t}' "/proc/$1/status"; }
# sample_rss PID FILE: until PID ends or FILE.stop exists, keeps in FILE the parts of the largest RSS seen (every 0.2 s).
# (A stop file, not FILE's removal: a sample written just after the removal brought FILE back and the loop never ended.)
sample_rss() {
  local top=0 now
  rm -f "$2.stop"
  while [ ! -e "$2.stop" ] && [ -r "/proc/$1/status" ]; do
    now=$(awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
    if [ "${now:-0}" -gt "$top" ]; then top=$now; rss_parts "$1" > "$2.tmp" 2>/dev/null && mv "$2.tmp" "$2"; fi
    sleep 0.2
  done
}

if [ "$mode" = streams ]; then
  # 10,000 streams at once, each an event a second for 13 s. The gateway takes them over HTTP/1.1 (one socket
  # each) and calls the upstream over HTTP/2 (Providers__bench__HttpVersion=2, h2c): 10,000 upstream sockets as
  # well would not fit this machine's limit of 20,000 open files per process. The bare .NET forwarder (Kestrel +
  # HttpClient over h2c, zero-byte reads, nothing else) carries the same streams first, as the floor, and is stopped
  # before the gateway starts. GCDUMP=1: what is alive on each one's managed heap once every stream is open.
  count="${STREAMS:-10000}"
  chat_body bench/model SLOW-STREAM stream > "$work/slow.json"
  printf '{"model":"bench/model","messages":[{"role":"user","content":"Say something short."}],"max_tokens":16,"stream":true}' > "$work/warm.json"
  [ -z "${GCDUMP:-}" ] || [ -x "$work/tools/dotnet-gcdump" ] || dotnet tool install --tool-path "$work/tools" dotnet-gcdump --version 10.0.750501 >/dev/null
  # heap_dump_later PID NAME: once the streams are open, the largest types alive (MB, count, type) into $work/NAME-gcdump.txt.
  heap_dump_later() {
    [ -n "${GCDUMP:-}" ] || return 0
    (sleep $(( ${RAMP:-10} + 2 )); rm -f "$work/$2.gcdump"
     "$work/tools/dotnet-gcdump" collect -p "$1" -o "$work/$2.gcdump" >/dev/null 2>&1
     "$work/tools/dotnet-gcdump" report "$work/$2.gcdump" > "$work/$2-gcdump-full.txt" 2>/dev/null
     head -n 2 "$work/$2-gcdump-full.txt" > "$work/$2-gcdump.txt"
     awk 'NR > 4 { b = $1; c = $2; gsub(",", "", b); gsub(",", "", c); printf "%8.1f MB  %s\n", b * c / 1048576, $0 }' \
       "$work/$2-gcdump-full.txt" | sort -rn | head -n 25 >> "$work/$2-gcdump.txt") & dump_pid=$!
  }
  print_heap_dump() {
    [ -n "${GCDUMP:-}" ] || return 0
    wait "$dump_pid" || true
    echo "$1's managed heap with every stream open (dotnet-gcdump, largest types):"; cat "$work/$2-gcdump.txt"
  }
  echo
  echo "$count concurrent slow streams (an event a second, 13 s each), opened over ${RAMP:-10} s, $(nproc) cores"

  UPSTREAM="http://127.0.0.1:$upstream_h2c_port" UPSTREAM_HTTP2=1 ZERO_BYTE_READS=1 ASPNETCORE_URLS="http://127.0.0.1:$forwarder_port" \
    dotnet "$work/forwarder/BareForwarder.dll" >/dev/null 2>&1 & forwarder_pid=$!; pids+=($forwarder_pid)
  wait_port "$upstream_port"; wait_port "$forwarder_port"
  curl -sf -o /dev/null -H 'Content-Type: application/json' --data @"$work/warm.json" "http://127.0.0.1:$forwarder_port/v1/chat/completions" || true
  idle=$(rss_parts "$forwarder_pid")
  heap_dump_later "$forwarder_pid" forwarder-streams
  echo 0+0 > "$work/peak-parts"; sample_rss "$forwarder_pid" "$work/peak-parts" & sampler_pid=$!
  floor=$(dotnet "$work/load/Load.dll" streams --url "http://127.0.0.1:$forwarder_port/v1/chat/completions" --body "$work/slow.json" \
    --count "$count" --ramp-seconds "${RAMP:-10}")
  touch "$work/peak-parts.stop"; wait "$sampler_pid" || true; parts=$(cat "$work/peak-parts"); rm -f "$work/peak-parts" "$work/peak-parts.stop"
  echo "bare .NET forwarder: $floor peak_rss_mb=$(rss_peak_mb "$forwarder_pid") (anon+file MB: before $idle, at the peak $parts)"
  print_heap_dump "the bare forwarder" forwarder-streams
  kill "$forwarder_pid"; wait "$forwarder_pid" 2>/dev/null || true
  sleep 2

  Providers__bench__BaseUrl="http://127.0.0.1:$upstream_h2c_port/v1" Providers__bench__HttpVersion=2 \
    Gateway__MaxConcurrentStreams=$((count + 100)) Gateway__MaxConcurrentRequestsPerAccount=$((count + 100)) \
    dotnet "$work/app/AiGate.Web.dll" --urls "http://127.0.0.1:$gateway_port" >"$work/gateway-streams.log" 2>&1 & gateway_pid=$!; pids+=($gateway_pid)
  wait_port "$upstream_port"; wait_port "$gateway_port"
  curl -sf -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $key" --data @"$work/warm.json" \
    "http://127.0.0.1:$gateway_port/api/v1/chat/completions" 2>/dev/null || true
  idle=$(rss_parts "$gateway_pid")
  heap_dump_later "$gateway_pid" streams
  echo 0+0 > "$work/peak-parts"; sample_rss "$gateway_pid" "$work/peak-parts" & sampler_pid=$!
  result=$(dotnet "$work/load/Load.dll" streams --url "http://127.0.0.1:$gateway_port/api/v1/chat/completions" --body "$work/slow.json" \
    --key "$key" --count "$count" --ramp-seconds "${RAMP:-10}")
  touch "$work/peak-parts.stop"; wait "$sampler_pid" || true; parts=$(cat "$work/peak-parts"); rm -f "$work/peak-parts" "$work/peak-parts.stop"
  echo "AiGate:              $result peak_rss_mb=$(rss_peak_mb "$gateway_pid") (anon+file MB: before $idle, at the peak $parts)"
  sleep 2
  print_heap_dump AiGate streams
  scripts/pg.sh psql -q -d "$db" -tA -c "select 'usage rows: ' || count(*) || ', ledger = balance: ' || ((select sum(amount_micros) from ledger_entries) = (select sum(balance_micros) from credit_accounts)) from usage_events"
  exit 0
fi

if [ "$mode" = serve ]; then
  # The upstream, the bare forwarder and the gateway, left running for measuring by hand until the script is stopped.
  start_forwarder "$forwarder_port"; start_gateway "$gateway_port"
  for port in "$upstream_port" "$forwarder_port" "$gateway_port"; do wait_port "$port"; done
  chat_body bench-model "Say something short." > "$work/direct.json"
  { echo "FORWARDER_URL=http://127.0.0.1:$forwarder_port/v1/chat/completions FORWARDER_PID=$forwarder_pid"
    echo "GATEWAY_URL=http://127.0.0.1:$gateway_port/api/v1/chat/completions GATEWAY_PID=$gateway_pid AIGATE_KEY=$key"
    echo "DIRECT_BODY=$work/direct.json GATEWAY_BODY=$work/gateway.json"; } | tee "$work/serve.env"
  wait
fi

if [ "$mode" = syscalls ]; then
  # The system calls each process makes per call (strace -c on every thread), the bare forwarder beside AiGate: each
  # socket read or write costs microseconds here, more than most of the gateway's own code.
  apt_install strace
  start_forwarder "$forwarder_port"; start_gateway "$gateway_port"
  for port in "$upstream_port" "$forwarder_port" "$gateway_port"; do wait_port "$port"; done
  chat_body bench-model "Say something short." "$profile_stream" > "$work/direct-sys.json"
  chat_body bench/model "Say something short." "$profile_stream" > "$work/gateway-sys.json"
  # count_syscalls NAME PID URL BODY [KEY]: warm up; the thread pool's work items and the contended locks per call
  # (dotnet-counters, 3,000 calls at 500 a second); then strace on the process over another 3,000.
  count_syscalls() {
    dotnet "$work/load/Load.dll" rate --rate 500 --seconds 4 --url "$3" --body "$4" ${5:+--key "$5"} >/dev/null
    local counters="$work/counters-sys-$2.csv"
    counters_start "$2" "$counters" 08 'System.Runtime[dotnet.thread_pool.work_item.count,dotnet.monitor.lock_contentions,dotnet.gc.heap.total_allocated]'
    local pool_calls
    pool_calls=$(dotnet "$work/load/Load.dll" rate --rate 500 --seconds 6 --url "$3" --body "$4" ${5:+--key "$5"} | tr ' ' '\n' | awk -F= '$1=="ok" {print $2}')
    wait "$counters_pid" || true
    strace -c -f -q -p "$2" -o "$work/$1.strace" & local strace_pid=$!
    sleep 1
    local out calls
    out=$(dotnet "$work/load/Load.dll" rate --rate 500 --seconds 6 --url "$3" --body "$4" ${5:+--key "$5"})
    calls=$(tr ' ' '\n' <<<"$out" | awk -F= '$1=="ok" {print $2}')
    sleep 1; kill -INT "$strace_pid"; wait "$strace_pid" 2>/dev/null || true
    echo "$1: $calls calls"
    awk -F, -v calls="$pool_calls" '/work_item.count/ {w += $5} /lock_contentions/ {l += $5} /total_allocated/ {a += $5}
      END { printf "  %-22s %8.2f\n  %-22s %8.2f\n  %-22s %8.2f\n", "thread-pool work items", w / calls, "contended locks", l / calls, "KB allocated", a / calls / 1024 }' "$counters"
    awk -v calls="$calls" '$NF != "total" && $4 ~ /^[0-9]+$/ { n[$NF] = $4 } $NF == "total" { t = $4 }
      END { printf "  %-22s %8.2f\n", "all system calls", t / calls; for (k in n) if (n[k] / calls >= 0.05) printf "  %-22s %8.2f\n", k, n[k] / calls }' \
      "$work/$1.strace" | sort -k2 -rn -t$'\t'
  }
  echo; echo "system calls per ${PROFILE:-json} call (strace -c on every thread, 3,000 calls at 500 a second):"
  count_syscalls "bare-forwarder" "$forwarder_pid" "http://127.0.0.1:$forwarder_port/v1/chat/completions" "$work/direct-sys.json"
  count_syscalls "AiGate" "$gateway_pid" "http://127.0.0.1:$gateway_port/api/v1/chat/completions" "$work/gateway-sys.json" "$key"
  exit 0
fi

if [ "$mode" = profile ]; then
  profile_body="$work/gateway-profile.json"
  if [ "${PROFILE_TARGET:-}" = forwarder ]; then
    # The bare forwarder the same way: the floor to read the gateway's profile against.
    start_forwarder "$gateway_port"; gateway_pid=$forwarder_pid
    url="http://127.0.0.1:$gateway_port/v1/chat/completions"
    chat_body bench-model "Say something short." "$profile_stream" > "$profile_body"
  else
    start_gateway "$gateway_port"
    url="http://127.0.0.1:$gateway_port/api/v1/chat/completions"
    chat_body bench/model "Say something short." "$profile_stream" > "$profile_body"
  fi
  wait_port "$upstream_port"; wait_port "$gateway_port"
  dotnet "$work/load/Load.dll" rate --rate 500 --seconds 5 --url "$url" --body "$profile_body" --key "$key" >/dev/null   # warm-up
  rm -f "$work/alloc.nettrace"
  # GC keyword (0x1) at verbose level (5): AllocationTick events. CPU=1: the runtime's sample profiler instead (a stack
  # per thread every millisecond), with the runtime events that name JIT-compiled methods.
  providers='Microsoft-Windows-DotNETRuntime:0x1:5'
  [ -n "${CPU:-}" ] && providers='Microsoft-DotNETCore-SampleProfiler,Microsoft-Windows-DotNETRuntime:0x14C14FCCBD:4'
  "$work/tools/dotnet-trace" collect -p "$gateway_pid" --providers "$providers" --duration 00:00:12 \
    -o "$work/alloc.nettrace" >/dev/null 2>&1 &
  trace_pid=$!
  sleep 2
  if [ "${PROFILE_RATE:-}" = wrk ]; then
    # Saturated: wrk's closed loop (as in the throughput rounds) instead of a fixed rate.
    out=$(BODY_FILE="$profile_body" AIGATE_KEY="$key" wrk -t"$threads" -c"$connections" -d8s -s bench/post.lua "$url")
    out="ok=$(awk '/requests in/ {print $1}' <<<"$out") $(awk '/Requests\/sec/ {print "rate=" $2}' <<<"$out")"
  else
    out=$(dotnet "$work/load/Load.dll" rate --rate "${PROFILE_RATE:-1000}" --seconds 8 --url "$url" --body "$profile_body" --key "$key")
  fi
  wait "$trace_pid" || true
  echo
  echo "metered ${PROFILE:-json} calls at ${PROFILE_RATE:-1000} req/s for 8 s: $out"
  dotnet "$work/allocprofile/AllocProfile.dll" ${CPU:+cpu} "$work/alloc.nettrace" "$(tr ' ' '\n' <<<"$out" | awk -F= '$1=="ok" {print $2}')" "${TOP:-30}"
  exit 0
fi

start_forwarder "$forwarder_port"; start_gateway "$gateway_port"
# The same build with metering switched off (refused in Production, so this one runs as Staging).
ASPNETCORE_ENVIRONMENT=Staging Credits__DisableMeteringForBenchmarks=true \
  dotnet "$work/app/AiGate.Web.dll" --urls "http://127.0.0.1:$unmetered_port" >"$work/gateway-unmetered.log" 2>&1 & unmetered_pid=$!; pids+=($unmetered_pid)
# The same build with telemetry on (a Prometheus scrape on its own port): what turning it on costs.
Telemetry__PrometheusPort="$prometheus_port" \
  dotnet "$work/app/AiGate.Web.dll" --urls "http://127.0.0.1:$telemetry_port" >"$work/gateway-telemetry.log" 2>&1 & telemetry_pid=$!; pids+=($telemetry_pid)
# The peer: it forwards to the host named in each request's x-portkey-custom-host, which must be trusted.
NODE_ENV=production TRUSTED_CUSTOM_HOSTS=127.0.0.1 \
  node bench/peer/node_modules/@portkey-ai/gateway/build/start-server.js --port="$peer_port" --headless >"$work/peer.log" 2>&1 & peer_pid=$!; pids+=($peer_pid)
for port in "$upstream_port" "$forwarder_port" "$gateway_port" "$unmetered_port" "$telemetry_port" "$peer_port"; do wait_port "$port"; done

chat_body bench-model "Say something short." > "$work/direct.json"
chat_body bench-model "Say something short." stream > "$work/direct-stream.json"
chat_body bench/model "Say something short." stream > "$work/gateway-stream.json"

# Sanity: every path answers 200 before anything is timed.
curl -sf -o /dev/null -H 'Content-Type: application/json' --data @"$work/direct.json" "http://127.0.0.1:$upstream_port/v1/chat/completions"
curl -sf -o /dev/null -H 'Content-Type: application/json' --data @"$work/direct.json" "http://127.0.0.1:$forwarder_port/v1/chat/completions"
curl -sf -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $key" --data @"$work/gateway.json" "http://127.0.0.1:$gateway_port/api/v1/chat/completions"
# The YARP forwarder: the pass-through to the bench provider's own /v1/chat/completions, metered, with the upstream model's name.
passthrough="http://127.0.0.1:$gateway_port/api/v1/passthrough/bench/chat/completions"
curl -sf -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $key" --data @"$work/direct.json" "$passthrough"

declare -A rps
wrk_run() {   # url body-file key [peer custom host]: wrk's report
  BODY_FILE="$2" AIGATE_KEY="$3" PEER_CUSTOM_HOST="${4:-}" wrk -t"$threads" -c"$connections" -d"$duration" --latency -s bench/post.lua "$1"
}
measure() {   # name url body-file key [peer custom host]
  local out
  out=$(wrk_run "$2" "$3" "$4" "${5:-}")
  local r p50 p99 errors
  r=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  rps["$1"]="$r"
  printf '%-40s %12s %10s %10s %8s\n' "$1" "$r" "$p50" "$p99" "${errors:-0}"
}

peer_host="http://127.0.0.1:$upstream_port/v1"
curl -sf -o /dev/null -H 'Content-Type: application/json' -H 'Authorization: Bearer bench-provider-key' \
  -H 'x-portkey-provider: openai' -H "x-portkey-custom-host: $peer_host" --data @"$work/direct.json" "http://127.0.0.1:$peer_port/v1/chat/completions"

# Warm-up (JIT, connection pools, key cache), not reported.
for target in "$work/gateway.json $key http://127.0.0.1:$gateway_port/api/v1/chat/completions" \
              "$work/gateway.json $key http://127.0.0.1:$unmetered_port/api/v1/chat/completions" \
              "$work/gateway.json $key http://127.0.0.1:$telemetry_port/api/v1/chat/completions" \
              "$work/direct.json $key $passthrough" \
              "$work/direct.json - http://127.0.0.1:$forwarder_port/v1/chat/completions" \
              "$work/direct.json - http://127.0.0.1:$upstream_port/v1/chat/completions"; do
  read -r body k url <<<"$target"; [ "$k" = - ] && k=""
  BODY_FILE="$body" AIGATE_KEY="$k" wrk -t1 -c8 -d3s -s bench/post.lua "$url" >/dev/null
done
BODY_FILE="$work/direct.json" AIGATE_KEY=bench-provider-key PEER_CUSTOM_HOST="$peer_host" \
  wrk -t1 -c8 -d3s -s bench/post.lua "http://127.0.0.1:$peer_port/v1/chat/completions" >/dev/null

if [ "$mode" != rounds ]; then
echo
echo "wrk -t$threads -c$connections -d$duration, loopback, $(nproc) cores; upstream answers instantly"
printf '%-40s %12s %10s %10s %8s\n' "case" "requests/s" "p50" "p99" "non-2xx"
measure "direct, JSON"                     "http://127.0.0.1:$upstream_port/v1/chat/completions" "$work/direct.json" ""
measure "bare .NET forwarder, JSON"        "http://127.0.0.1:$forwarder_port/v1/chat/completions" "$work/direct.json" ""
measure "AiGate, metering off, JSON"       "http://127.0.0.1:$unmetered_port/api/v1/chat/completions" "$work/gateway.json" "$key"
measure "AiGate, metering on, JSON"        "http://127.0.0.1:$gateway_port/api/v1/chat/completions" "$work/gateway.json" "$key"
measure "AiGate, metering + telemetry, JSON" "http://127.0.0.1:$telemetry_port/api/v1/chat/completions" "$work/gateway.json" "$key"
measure "AiGate via YARP forwarder, JSON"  "$passthrough" "$work/direct.json" "$key"
measure "peer (Portkey 1.15.2), JSON"      "http://127.0.0.1:$peer_port/v1/chat/completions" "$work/direct.json" bench-provider-key "$peer_host"
measure "direct, stream"                   "http://127.0.0.1:$upstream_port/v1/chat/completions" "$work/direct-stream.json" ""
measure "bare .NET forwarder, stream"      "http://127.0.0.1:$forwarder_port/v1/chat/completions" "$work/direct-stream.json" ""
measure "AiGate, metering off, stream"     "http://127.0.0.1:$unmetered_port/api/v1/chat/completions" "$work/gateway-stream.json" "$key"
measure "AiGate, metering on, stream"      "http://127.0.0.1:$gateway_port/api/v1/chat/completions" "$work/gateway-stream.json" "$key"
measure "AiGate via YARP forwarder, stream" "$passthrough" "$work/direct-stream.json" "$key"
measure "peer (Portkey 1.15.2), stream"    "http://127.0.0.1:$peer_port/v1/chat/completions" "$work/direct-stream.json" bench-provider-key "$peer_host"
fi

# The throughput ratios again, in alternating rounds: this machine's speed drifts by 10-30 % from one minute to the next
# (it is shared), so a single 10 s run of each case can catch the forwarder in a fast minute and the gateway in a slow
# one, or the other way round. Each round runs the bare forwarder, AiGate (metering on) and Portkey back to back on
# JSON; the targets use the median of the rounds' ratios.
rounds="${ROUNDS:-3}"
# wrk_rps PID url body key [peer host]: "requests/s CPU-µs-per-call", the CPU being PID's own (user + system, from
# /proc), which the machine's drift moves far less than requests/s: what a call costs the process, not how fast the minute was.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# machine_ticks: "busy total" ticks of every core (from /proc/stat): how busy the whole machine was over a case. A case
# that leaves the cores idle is waiting on something (a lock, a hand-off), not short of CPU.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
wrk_rps() {
  local pid="$1" before out machine; shift
  machine=$(machine_ticks); before=$(cpu_ticks "$pid"); out=$(wrk_run "$@")
  awk -v used=$(( $(cpu_ticks "$pid") - before )) -v hz="$(getconf CLK_TCK)" -v m0="$machine" -v m1="$(machine_ticks)" '
    /requests in/ {n = $1} /Requests\/sec/ {r = $2}
    END {split(m0, a, " "); split(m1, b, " ")
         printf "%s %.0f %.0f\n", r, (n > 0 ? used / hz / n * 1e6 : 0), (b[2] > a[2] ? 100 * (b[1] - a[1]) / (b[2] - a[2]) : 0)}' <<<"$out"
}
# postgres_ticks: the CPU ticks of every PostgreSQL process (the usage writer's inserts are part of what a metered call costs).
postgres_ticks() { local t=0 p; for p in $(pgrep -x postgres); do t=$(( t + $(cpu_ticks "$p" 2>/dev/null || echo 0) )); done; echo "$t"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "throughput ratios, JSON, in $rounds alternating rounds (wrk as above); each process's own CPU per call in µs, and how"
echo "busy the whole machine was over the case (every core, every process: under 100 % means the case waited, not computed)"
printf '%-8s %22s %22s %22s %10s %12s\n' "round" "forwarder (µs, busy)" "AiGate (µs, busy)" "Portkey (µs, busy)" "vs fwd" "vs Portkey"
bare_ratios=(); peer_ratios=(); bare_cpu=(); gateway_cpu=(); peer_cpu=(); pg_cpu=()
for round in $(seq 1 "$rounds"); do
  read -r f fc fb < <(wrk_rps "$forwarder_pid" "http://127.0.0.1:$forwarder_port/v1/chat/completions" "$work/direct.json" "")
  # COUNTERS=1: the gateway's runtime counters over its case (contended locks, thread-pool threads and queue, GC), per call.
  if [ -n "${COUNTERS:-}" ]; then
    counters_start "$gateway_pid" "$work/counters-round.csv" "$(( ${duration%s} + 1 ))" \
      'System.Runtime[dotnet.monitor.lock_contentions,dotnet.thread_pool.thread.count,dotnet.thread_pool.queue.length,dotnet.thread_pool.work_item.count,dotnet.gc.collections,dotnet.gc.pause.time]'
  fi
  pg_before=$(postgres_ticks)
  read -r g gc gb < <(wrk_rps "$gateway_pid" "http://127.0.0.1:$gateway_port/api/v1/chat/completions" "$work/gateway.json" "$key")
  pg_cpu+=("$(awk -v t=$(( $(postgres_ticks) - pg_before )) -v hz="$(getconf CLK_TCK)" -v r="$g" -v s="${duration%s}" 'BEGIN { printf "%.0f", (r > 0 ? t / hz / (r * s) * 1e6 : 0) }')")
  if [ -n "${COUNTERS:-}" ]; then
    wait "$counters_pid" || true
    awk -F, -v rps="$g" -v secs="${duration%s}" '/lock_contentions/ {l += $5} /thread.count/ {if ($5 > t) t = $5} /queue.length/ {if ($5 > q) q = $5}
      /work_item.count/ {w += $5} /gc.collections/ {c += $5} /pause.time/ {p += $5}
      END {n = rps * secs; printf "  AiGate counters: %.3f contended locks, %.2f work items a call; up to %d pool threads, queue %d; %d GCs, %.3f s paused\n", l / n, w / n, t, q, c, p}' \
      "$work/counters-round.csv" >&2
  fi
  read -r p pc pb < <(wrk_rps "$peer_pid" "http://127.0.0.1:$peer_port/v1/chat/completions" "$work/direct.json" bench-provider-key "$peer_host")
  bare_ratios+=("$(ratio "$g" "$f")"); peer_ratios+=("$(ratio "$g" "$p")"); bare_cpu+=("$fc"); gateway_cpu+=("$gc"); peer_cpu+=("$pc")
  printf '%-8s %22s %22s %22s %10s %12s\n' "$round" "$f ($fc, $fb%)" "$g ($gc, $gb%)" "$p ($pc, $pb%)" "${bare_ratios[-1]}x" "${peer_ratios[-1]}x"
done
echo "PostgreSQL's CPU per AiGate call (the usage writer's inserts), by round: ${pg_cpu[*]} µs"

[ "$mode" != rounds ] || exit 0

# The wrk cases leave the gateways' usage writers, and PostgreSQL on the same two cores, hundreds of thousands of rows
# to write. The open loop measures a steady 200 requests/s, so it starts once the usage rows stop growing.
usage_rows() { scripts/pg.sh psql -q -d "$db" -tA -c "select count(*) from usage_events"; }
settle_started=$SECONDS
rows_before=$(usage_rows)
while sleep 1; rows_after=$(usage_rows); [ "$rows_after" != "$rows_before" ] && [ $((SECONDS - settle_started)) -lt 120 ]; do rows_before=$rows_after; done
echo
echo "(the usage writers caught up in $((SECONDS - settle_started)) s: $rows_after usage rows)"

# Open loop at a fixed rate: latency from each request's scheduled start (bench/Load). The gateways measured only for
# throughput are stopped first: idle, each still polls the database every second, on the same two cores. The cases
# alternate over LATENCY_ROUNDS rounds and each added figure is the median of the rounds' (case - direct in that
# round): on this shared machine one case's single run swings by 0.1-0.3 ms at p50 from one minute to the next.
kill "$unmetered_pid" "$telemetry_pid" 2>/dev/null || true
rate="${RATE:-200}"
latency_rounds="${LATENCY_ROUNDS:-3}"
load() { dotnet "$work/load/Load.dll" rate --rate "$rate" --seconds "${RATE_SECONDS:-6}" --warmup-seconds 2 "$@"; }
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1==k {print $2}'; }
echo
echo "open loop, $rate requests/s for ${RATE_SECONDS:-6} s a case after a 2 s warm-up (bench/Load), $latency_rounds alternating rounds;"
echo "latency in ms from each request's scheduled start; AiGate's own Server-Timing: its handler, and the slowest 1 % calls' handler"
printf '%-6s %-34s %8s %8s %8s %10s %8s %s\n' "round" "case" "p50" "p99" "p99.9" "first p50" "errors" "AiGate handler p50 / the slowest 1 %'s handler + upstream call"
declare -A lat
added_p50s=(); added_p99s=(); bare_p50s=(); bare_p99s=(); peer_p50s=(); peer_p99s=(); ttfts=()
open_loop() {   # round name url body key [headers...]
  local round="$1" name="$2" url="$3" body="$4" k="$5"; shift 5
  local out; out=$(load --url "$url" --body "$body" --key "$k" "$@")
  lat["$name"]="$out"
  local handler=""; [ -z "$(field "$out" handler_p50_ms)" ] || handler="$(field "$out" handler_p50_ms) / $(field "$out" slowest_1pct_handler_p50_ms) + upstream $(field "$out" slowest_1pct_upstream_p50_ms)"
  printf '%-6s %-34s %8s %8s %8s %10s %8s %s\n' "$round" "$name" "$(field "$out" p50_ms)" "$(field "$out" p99_ms)" "$(field "$out" p999_ms)" \
    "$(field "$out" first_p50_ms)" "$(field "$out" errors)" "$handler"
}
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
added() { minus "$(field "${lat[$1]}" "$3")" "$(field "${lat[$2]}" "$3")"; }   # case baseline field
for round in $(seq "$latency_rounds"); do
  open_loop "$round" "direct, JSON"               "http://127.0.0.1:$upstream_port/v1/chat/completions" "$work/direct.json" ""
  open_loop "$round" "bare .NET forwarder, JSON"  "http://127.0.0.1:$forwarder_port/v1/chat/completions" "$work/direct.json" ""
  open_loop "$round" "AiGate, metering on, JSON"  "http://127.0.0.1:$gateway_port/api/v1/chat/completions" "$work/gateway.json" "$key"
  open_loop "$round" "peer (Portkey 1.15.2), JSON" "http://127.0.0.1:$peer_port/v1/chat/completions" "$work/direct.json" bench-provider-key \
    --header "x-portkey-provider: openai" --header "x-portkey-custom-host: $peer_host"
  open_loop "$round" "direct, stream"             "http://127.0.0.1:$upstream_port/v1/chat/completions" "$work/direct-stream.json" ""
  open_loop "$round" "AiGate, metering on, stream" "http://127.0.0.1:$gateway_port/api/v1/chat/completions" "$work/gateway-stream.json" "$key"
  added_p50s+=("$(added "AiGate, metering on, JSON" "direct, JSON" p50_ms)"); added_p99s+=("$(added "AiGate, metering on, JSON" "direct, JSON" p99_ms)")
  bare_p50s+=("$(added "bare .NET forwarder, JSON" "direct, JSON" p50_ms)"); bare_p99s+=("$(added "bare .NET forwarder, JSON" "direct, JSON" p99_ms)")
  peer_p50s+=("$(added "peer (Portkey 1.15.2), JSON" "direct, JSON" p50_ms)"); peer_p99s+=("$(added "peer (Portkey 1.15.2), JSON" "direct, JSON" p99_ms)")
  ttfts+=("$(added "AiGate, metering on, stream" "direct, stream" first_p50_ms)")
done

# Allocations, GC and the thread pool per call: a process at a fixed 1,000 requests/s for 10 s, with dotnet-counters
# attached for the same window (System.Runtime's rates, summed over the window). The gateway, and the bare forwarder
# as the floor of what Kestrel and HttpClient allocate for the same relay.
runtime_counters() {   # pid url body key -> "calls bytes pause gen0 gen1 gen2 queue_max"
  local counters="$work/counters-$1.csv"
  counters_start "$1" "$counters" 11 'System.Runtime[dotnet.gc.heap.total_allocated,dotnet.gc.pause.time,dotnet.gc.collections,dotnet.thread_pool.queue.length]'
  local out; out=$(dotnet "$work/load/Load.dll" rate --rate 1000 --seconds 10 --url "$2" --body "$3" --key "$4")
  wait "$counters_pid" || true
  echo "$(field "$out" ok) $(awk -F, '
    /total_allocated/ {a += $5}
    /pause.time/ {p += $5}
    /generation=gen0/ {g0 += $5} /generation=gen1/ {g1 += $5} /generation=gen2/ {g2 += $5}
    /queue.length/ { if ($5 > q) q = $5 }
    END {printf "%d %.4f %d %d %d %d\n", a, p, g0, g1, g2, q}' "$counters")"
}
read -r alloc_calls alloc_bytes gc_pause gen0 gen1 gen2 queue_max < <(runtime_counters "$gateway_pid" \
  "http://127.0.0.1:$gateway_port/api/v1/chat/completions" "$work/gateway.json" "$key")
read -r floor_calls floor_bytes _ _ _ _ _ < <(runtime_counters "$forwarder_pid" \
  "http://127.0.0.1:$forwarder_port/v1/chat/completions" "$work/direct.json" "")

verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "ge") ? (v >= t) : (v <= t); print ok ? "met" : "missed" }'; }

json_gateway="${rps[AiGate, metering on, JSON]}"
through_bare=$(median "${bare_ratios[@]}")
through_peer=$(median "${peer_ratios[@]}")
added_p50=$(median "${added_p50s[@]}"); added_p99=$(median "${added_p99s[@]}")
bare_p50=$(median "${bare_p50s[@]}"); bare_p99=$(median "${bare_p99s[@]}")
peer_p50=$(median "${peer_p50s[@]}"); peer_p99=$(median "${peer_p99s[@]}")
ttft=$(median "${ttfts[@]}")
kb_per_call() { awk -v a="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", a / n / 1024; else print "n/a" }'; }
per_call_kb=$(kb_per_call "$alloc_bytes" "$alloc_calls")
floor_kb=$(kb_per_call "$floor_bytes" "$floor_calls")
telemetry_cost=$(ratio "${rps[AiGate, metering + telemetry, JSON]}" "$json_gateway")

echo
echo "issue 16 targets, this run"
printf '%-58s %-26s %-10s %s\n' "figure" "measured" "target" ""
printf '%-58s %-26s %-10s %s\n' "throughput vs the bare .NET forwarder (JSON, median of $rounds rounds)" "${through_bare}x" ">= 0.6x" "$(verdict "$through_bare" 0.6 ge)"
printf '%-58s %-26s %-10s %s\n' "throughput vs Portkey (JSON, median of $rounds rounds)" "${through_peer}x" ">= 15x" "$(verdict "$through_peer" 15 ge)"
printf '%-58s %-26s %-10s %s\n' "  CPU per call, median: forwarder / AiGate / Portkey" "$(median "${bare_cpu[@]}") / $(median "${gateway_cpu[@]}") / $(median "${peer_cpu[@]}") µs" "" ""
printf '%-58s %-26s %-10s %s\n' "added latency at $rate req/s, p50 (median of $latency_rounds rounds)" "$added_p50 ms (${added_p50s[*]})" "<= 0.15 ms" "$(verdict "$added_p50" 0.15 le)"
printf '%-58s %-26s %-10s %s\n' "added latency at $rate req/s, p99 (median of $latency_rounds rounds)" "$added_p99 ms (${added_p99s[*]})" "<= 0.6 ms" "$(verdict "$added_p99" 0.6 le)"
printf '%-58s %-26s %-10s %s\n' "  the bare forwarder's added latency, p50 / p99" "$bare_p50 / $bare_p99 ms" "" "(the floor)"
printf '%-58s %-26s %-10s %s\n' "  Portkey's added latency, p50 / p99" "$peer_p50 / $peer_p99 ms" "" ""
printf '%-58s %-26s %-10s %s\n' "streaming: added time to first token, p50" "$ttft ms (${ttfts[*]})" "<= 0.5 ms" "$(verdict "$ttft" 0.5 le)"
printf '%-58s %-26s %-10s %s\n' "allocations per non-streamed call (1,000 req/s, 10 s)" "$per_call_kb KB" "<= 8 KB" "$(verdict "$per_call_kb" 8 le)"
printf '%-58s %-26s %-10s %s\n' "  the bare forwarder, the same way" "$floor_kb KB" "" "(the floor)"
printf '%-58s %-26s %-10s %s\n' "  GC in that window: pause, gen0/gen1/gen2, max queue" "${gc_pause} s, $gen0/$gen1/$gen2, $queue_max" "" ""
printf '%-58s %-26s %-10s %s\n' "telemetry on (Prometheus) / off, JSON throughput" "${telemetry_cost}x" "~1.0x" ""
printf '%-58s %-26s %-10s %s\n' "database round trips per call, steady state" "0 (leases, batched writer)" "0" ""
echo "10,000 concurrent slow streams: bench/run.sh streams"
sleep 1
# Every metered call is in the ledger: usage rows, and balance = Σ ledger.
scripts/pg.sh psql -q -d "$db" -tA -c "select 'usage rows: ' || count(*) || ', ledger = balance: ' || ((select sum(amount_micros) from ledger_entries) = (select sum(balance_micros) from credit_accounts)) from usage_events"
