# syntax=docker/dockerfile:1
#
# AiGate production image: `fly deploy` builds it (fly.toml [build]); `docker build .` works too.
# Three stages: the front end (Node), the .NET build, and a small runtime image that holds only
# the published app.

# ---------------------------------------------------------------------------------------------
# 1. Front end: wwwroot-src -> AiGate.Web/wwwroot/dist
# ---------------------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/wwwroot-src

# Manifests first, so `npm ci` is cached until the dependencies change.
COPY wwwroot-src/package.json wwwroot-src/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

COPY wwwroot-src/ ./
# build.mjs writes ../AiGate.Web/wwwroot/dist relative to wwwroot-src, i.e.
# /src/AiGate.Web/wwwroot/dist. Only wwwroot-src is in this stage, so the front-end build must
# not read files from elsewhere in the repo.
RUN mkdir -p /src/AiGate.Web/wwwroot && npm run build

# ---------------------------------------------------------------------------------------------
# 2. .NET build and publish
# ---------------------------------------------------------------------------------------------
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src

# Restore inputs first, so the package layer is cached until a version or reference changes.
# Directory.Build.props / Directory.Packages.props carry the shared settings and the central
# package versions; global.json pins the SDK band. Only the app project is restored: the test
# projects are not part of the image. (If AiGate.Web ever references another project, copy its
# .csproj here too.)
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY AiGate.Web/AiGate.Web.csproj AiGate.Web/
RUN dotnet restore AiGate.Web/AiGate.Web.csproj

COPY AiGate.Web/ AiGate.Web/
# The front end comes from stage 1 (.dockerignore keeps any local wwwroot/dist out of the context).
COPY --from=frontend /src/AiGate.Web/wwwroot/dist/ AiGate.Web/wwwroot/dist/

# SkipFrontEndBuild: the csproj would otherwise run npm, which this image does not have.
# UseAppHost=false: the app is started as `dotnet AiGate.Web.dll`, so no native launcher is needed.
RUN dotnet publish AiGate.Web/AiGate.Web.csproj -c Release -o /app --no-restore \
      -p:SkipFrontEndBuild=true -p:UseAppHost=false

# ---------------------------------------------------------------------------------------------
# 3. Runtime
# ---------------------------------------------------------------------------------------------
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app

# Files stay owned by root and are only read by the app user.
COPY --from=build /app ./

ENV ASPNETCORE_HTTP_PORTS=8080
EXPOSE 8080

# The shared array pool keeps up to 1,024 arrays of a size per core instead of .NET's 32: with thousands of streams
# open, HttpClient's 16 KB HTTP/2 receive blocks (and our own rented buffers) otherwise overflow the pool and churn
# through the GC. bench/run.sh streams, 10,000 streams: peak RSS 549-612 MB without it, 484-515 MB with it.
ENV DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION=1024

# Non-root: the aspnet images ship an `app` user; APP_UID (1654) is set by the base image.
USER $APP_UID

# No HEALTHCHECK here: Fly.io does not run Docker health checks (fly.toml's [[http_service.checks]]
# polls GET /healthz instead), and the aspnet image has no curl or wget to run one with.
#
# The entrypoint is the app itself, so arguments select a CLI verb:
#   docker run <image> migrate       (Fly's release_command "migrate" is passed the same way:
#                                     it replaces CMD and keeps this ENTRYPOINT)
ENTRYPOINT ["dotnet", "AiGate.Web.dll"]
