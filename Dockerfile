# syntax=docker/dockerfile:1
# The kube-locks controller image: compiled on a full Node.js image, run on a distroless
# one (no shell, no package manager) as an unprivileged user.
#
#   docker build -t kube-locks-controller:dev \
#     --build-arg VERSION=$(node -p 'require("./package.json").version') \
#     --build-arg REVISION=$(git rev-parse HEAD) .
#
# hack/kind.sh builds it and runs it in a local kind cluster.

ARG NODE_MAJOR=24

# The production dependencies, exactly as locked, without install scripts: what the image ships.
FROM node:${NODE_MAJOR}-bookworm-slim AS runtime-deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# `npm run build` is `tsc -p tsconfig.build.json`: it needs the compiler and the type
# declarations, and the production tree already holds those of the dependencies and Node.js
# (@types/node comes with @kubernetes/client-node). So the compiler, at the version the
# lockfile pins, is the only addition, installed apart from the project: no test runner, linter,
# benchmark peers or the `node` devDependency's download.
FROM runtime-deps AS build
RUN --mount=type=cache,target=/root/.npm \
    npm install --prefix /tools --no-save --ignore-scripts --no-audit --no-fund \
      "typescript@$(node -p 'require("./package-lock.json").packages["node_modules/typescript"].version')"
COPY tsconfig.json tsconfig.build.json ./
COPY sdk ./sdk
COPY controller ./controller
COPY cli ./cli
RUN /tools/node_modules/.bin/tsc -p tsconfig.build.json

FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot
# Set by the build: the release version and the commit it was built from.
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kube-locks-controller" \
      org.opencontainers.image.description="Frees expired kube-locks locks, garbage-collects free ones, emits Events and Prometheus metrics" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/kube-locks/kube-locks" \
      org.opencontainers.image.url="https://github.com/kube-locks/kube-locks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=runtime-deps /src/node_modules ./node_modules
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/dist/sdk ./dist/sdk
COPY --from=build /src/dist/controller ./dist/controller
# 65532 is distroless' "nonroot"; numeric so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
# The compiled files ship with their source maps: stack traces in the logs point at the
# TypeScript sources.
ENTRYPOINT ["/nodejs/bin/node", "--enable-source-maps", "/app/dist/controller/main.js"]
