# camserve HTTP service. Build:  docker build -t camserve .   (any of linux/amd64, linux/arm64: buildx --platform)
#   with labels:  docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t camserve .
# Run:    docker run -p 8080:8080 camserve            (serves the default model, models/shapes)
#         docker run -p 8080:8080 -v /my/models:/models:ro camserve   (serves /my/models/<id>/model.onnx)
#   hardened: add --read-only --cap-drop ALL --security-opt no-new-privileges (see docs/deploy.md).
# Configuration by environment: see `docker run --rm camserve node dist/src/http/main.js --help`.

# Base images pinned to an exact release (add @sha256:<digest> to pin the bytes as well).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- build: dev dependencies + TypeScript → dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# No install scripts: `prepare` would compile before the sources are here; .npmrc skips
# onnxruntime-node's download (its linux binaries ship inside the package).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

# ---- deps: production dependencies, pruned to the target platform (linux/<arch>) ----
# onnxruntime-node ships binaries for darwin, win32 and linux (245 MB that linux/<arch> never loads), sharp
# may add its wasm32 build: the prune keeps linux/<arch> only. TARGETARCH is set by BuildKit; the classic
# builder leaves it empty and the script falls back to `uname -m`.
FROM ${NODE_IMAGE} AS deps
ARG TARGETARCH
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY deploy/docker/prune-node-modules.sh /tmp/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && sh /tmp/prune-node-modules.sh node_modules "${TARGETARCH:-$(uname -m)}"

# ---- runtime: node, the pruned dependencies, the compiled service, the page, the default model ----
FROM ${NODE_IMAGE} AS runtime
# (a global ARG is visible in a stage only when declared again there)
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=
ARG SOURCE=
LABEL org.opencontainers.image.title="camserve" \
      org.opencontainers.image.description="HTTP service that explains image CNNs (ONNX) with class activation maps (Grad-CAM and relatives)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY public ./public
COPY openapi.yaml ./
# The default model. Serve your own by mounting a folder on /models (read-only is enough):
# -v /my/models:/models:ro. No VOLUME: nothing is written there, and anonymous volumes would pile up.
COPY models/shapes /models/shapes
# ORT_DISABLE_TELEMETRY: onnxruntime would otherwise try HTTPS telemetry uploads (a service without egress
# only logs warnings) and write a device id (the root filesystem is read-only in a hardened run).
ENV MODELS_DIR=/models \
    PORT=8080 \
    HOST=0.0.0.0 \
    LOG_LEVEL=info \
    ORT_DISABLE_TELEMETRY=1
EXPOSE 8080
# Numeric uid:gid (the node image's unprivileged user), so that Kubernetes' runAsNonRoot can verify it.
# The files above stay root's: the service cannot change its own code or model.
USER 1000:1000
# Asks the service at the address HOST and PORT name (0.0.0.0 and :: mean loopback); Docker format only
# (OCI images and Kubernetes ignore it: see deploy/kubernetes for the probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/dist/src/http/healthcheck.js"]
# SIGTERM: stop accepting, finish in-flight requests for SHUTDOWN_TIMEOUT_MS (default 7 s), exit within
# 2 s more: inside `docker stop`'s 10 s. Longer grace: raise both (docker run --stop-timeout 40 -e
# SHUTDOWN_TIMEOUT_MS=30000).
STOPSIGNAL SIGTERM
# exec form: node is PID 1 and receives SIGTERM itself (graceful shutdown).
CMD ["node", "dist/src/http/main.js"]
