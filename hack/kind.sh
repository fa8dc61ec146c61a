#!/usr/bin/env bash
# Runs kube-locks in a local kind cluster: builds the controller image, loads it into the
# cluster and installs the chart with it, in a namespace that enforces the `restricted`
# Pod Security Standard. Needs docker, kind, kubectl and helm.
#
#   hack/kind.sh up      build, create the cluster if needed, install (the default)
#   hack/kind.sh down    delete the cluster
#
# Environment:
#   KIND_CLUSTER  cluster name                        (default kube-locks)
#   NAMESPACE     namespace of the release            (default kube-locks)
#   RELEASE       Helm release name                   (default kube-locks)
#   IMAGE_REPO    image repository to build and load  (default kube-locks-controller)
#   IMAGE_TAG     image tag                           (default dev)
#   HELM_ARGS     more arguments for helm, e.g. "--set controller.logLevel=debug"
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cluster=${KIND_CLUSTER:-kube-locks}
namespace=${NAMESPACE:-kube-locks}
release=${RELEASE:-kube-locks}
image_repo=${IMAGE_REPO:-kube-locks-controller}
image_tag=${IMAGE_TAG:-dev}
context="kind-${cluster}"

die() {
  echo "kind.sh: $*" >&2
  exit 1
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (needed: $*)"
  done
}

up() {
  need docker kind kubectl helm
  docker info >/dev/null 2>&1 || die "the Docker engine is not reachable; start it and retry"

  echo "building ${image_repo}:${image_tag}" >&2
  docker build --tag "${image_repo}:${image_tag}" "$root"

  if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
    kind create cluster --name "$cluster" --wait 120s
  fi
  kind load docker-image "${image_repo}:${image_tag}" --name "$cluster"

  kubectl --context "$context" create namespace "$namespace" --dry-run=client -o yaml |
    kubectl --context "$context" apply -f -
  kubectl --context "$context" label --overwrite namespace "$namespace" \
    pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/warn=restricted

  # shellcheck disable=SC2086 # HELM_ARGS is a list of words on purpose.
  helm upgrade --install "$release" "$root/helm/kube-locks" \
    --kube-context "$context" \
    --namespace "$namespace" \
    --set image.repository="$image_repo" \
    --set image.tag="$image_tag" \
    --set image.pullPolicy=Never \
    --wait --timeout 3m \
    ${HELM_ARGS:-}

  kubectl --context "$context" -n "$namespace" get pods -l app.kubernetes.io/instance="$release" -o wide
}

down() {
  need kind
  kind delete cluster --name "$cluster"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) die "unknown command '${1}'; use 'up' or 'down'" ;;
esac
