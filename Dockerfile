# camserve HTTP service. Build:  docker build -t camserve .
# Run:    docker run -p 8080:8080 camserve            (serves the default model, models/shapes)
#         docker run -p 8080:8080 -v /my/models:/models camserve   (serves /my/models/<id>/model.onnx)
# Configuration by environment: see `docker run --rm camserve node dist/src/http/main.js --help`.

# Base images pinned to an exact release (add @sha256:<digest> to pin the bytes as well).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- build: dev dependencies + TypeScript → dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# No install scripts: `prepare` would compile before the sources are here; .npmrc skips
# onnxruntime-node's download (its linux x64 binary ships inside the package).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

# ---- runtime: production dependencies, the compiled service, the page, the default model ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY public ./public
COPY openapi.yaml ./
# The default model; a volume mounted on /models replaces (or, if empty and named, receives) it.
COPY models/shapes /models/shapes
ENV MODELS_DIR=/models \
    PORT=8080 \
    HOST=0.0.0.0 \
    LOG_LEVEL=info
VOLUME ["/models"]
EXPOSE 8080
# The node image's unprivileged user (uid 1000).
USER node
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# exec form: node is PID 1 and receives SIGTERM itself (graceful shutdown).
CMD ["node", "dist/src/http/main.js"]
