# syntax=docker/dockerfile:1
# The kube-locks controller image: compiled on a full Node.js image, run on a distroless
# one (no shell, no package manager) as an unprivileged user.
#
#   docker build -t kube-locks-controller:dev .
#
# hack/kind.sh builds it and runs it in a local kind cluster.

ARG NODE_MAJOR=24

FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY sdk ./sdk
COPY controller ./controller
COPY cli ./cli
RUN npm run build

FROM node:${NODE_MAJOR}-bookworm-slim AS runtime-deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot
LABEL org.opencontainers.image.title="kube-locks-controller" \
      org.opencontainers.image.description="Frees expired kube-locks locks, garbage-collects free ones, emits Events and Prometheus metrics" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=runtime-deps /src/node_modules ./node_modules
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/dist/sdk ./dist/sdk
COPY --from=build /src/dist/controller ./dist/controller
# 65532 is distroless' "nonroot"; numeric so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/controller/main.js"]
