{{/*
Chart name, possibly overridden. Truncated to 63 characters, the limit of a label value.
*/}}
{{- define "kube-locks.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name given to every object: `<release>-<chart>`, or `<release>` when the release
name already contains the chart name. Truncated to leave room for suffixes such as
`-controller` and `-leader-election` within 63 characters.
*/}}
{{- define "kube-locks.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 46 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Namespace of every namespaced object of the release (except the per-namespace RBAC of
`controller.namespaces` and a ServiceMonitor given its own namespace): `namespaceOverride`,
else the release namespace. Lets a parent chart put this one in a namespace of its own.
*/}}
{{- define "kube-locks.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the controller's Deployment, Service, PodDisruptionBudget and ServiceMonitor. */}}
{{- define "kube-locks.controller.fullname" -}}
{{- printf "%s-controller" (include "kube-locks.fullname" .) }}
{{- end }}

{{/* `chart-version` for the helm.sh/chart label. */}}
{{- define "kube-locks.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object. Note that `app.kubernetes.io/managed-by` here names the tool
that installed the chart; the Leases that hold locks carry `managed-by: kube-locks`.
*/}}
{{- define "kube-locks.labels" -}}
helm.sh/chart: {{ include "kube-locks.chart" . }}
{{ include "kube-locks.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kube-locks
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that identify the release's objects; immutable once a Deployment exists. */}}
{{- define "kube-locks.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-locks.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of the controller's objects. */}}
{{- define "kube-locks.controller.labels" -}}
{{ include "kube-locks.labels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{/* Selector of the controller pods. */}}
{{- define "kube-locks.controller.selectorLabels" -}}
{{ include "kube-locks.selectorLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{/*
Rules of the controller where it looks after locks: watch the Leases, free expired ones
and delete long-free ones (update and delete), record Events on them.
*/}}
{{- define "kube-locks.controller.rules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* The controller's ServiceAccount. */}}
{{- define "kube-locks.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-locks.controller.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ClusterRole that applications bind to take locks. */}}
{{- define "kube-locks.clientRoleName" -}}
{{- default (printf "%s-client" (include "kube-locks.fullname" .)) .Values.rbac.clientRole.name }}
{{- end }}

{{/* Namespace of the controller's leader-election lock. */}}
{{- define "kube-locks.leaderElection.namespace" -}}
{{- default (include "kube-locks.namespace" .) .Values.controller.leaderElection.namespace }}
{{- end }}

{{/* Name of the controller's leader-election lock. */}}
{{- define "kube-locks.leaderElection.name" -}}
{{- default (include "kube-locks.controller.fullname" .) .Values.controller.leaderElection.name }}
{{- end }}

{{/* The controller image reference: repository[:tag][@digest]. */}}
{{- define "kube-locks.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
API version of the flow-control objects: flowcontrol.apiserver.k8s.io/v1 from Kubernetes
1.29, v1beta3 (same fields) before.
*/}}
{{- define "kube-locks.apiPriority.apiVersion" -}}
{{- if semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version }}
{{- print "flowcontrol.apiserver.k8s.io/v1" }}
{{- else }}
{{- print "flowcontrol.apiserver.k8s.io/v1beta3" }}
{{- end }}
{{- end }}

{{/*
Values that the schema cannot reject on their own, because they contradict each other.
Included from every template, so that no partial release is rendered.
*/}}
{{- define "kube-locks.validate" -}}
{{- $v := .Values }}
{{- if and (not $v.serviceAccount.create) (not $v.serviceAccount.name) }}
{{- fail "serviceAccount.create is false, so serviceAccount.name must name an existing ServiceAccount for the controller (the namespace's `default` account is never used)" }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled is true but metrics.service.enabled is false: the ServiceMonitor scrapes the metrics Service; enable it or disable the ServiceMonitor" }}
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
{{- $min := toString $v.podDisruptionBudget.minAvailable }}
{{- $max := toString $v.podDisruptionBudget.maxUnavailable }}
{{- if and (ne $min "") (ne $max "") }}
{{- fail (printf "podDisruptionBudget.minAvailable (%s) and podDisruptionBudget.maxUnavailable (%s) are both set; set one of them, and the other to \"\"" $min $max) }}
{{- end }}
{{- if and (eq $min "") (eq $max "") }}
{{- fail "podDisruptionBudget.enabled is true but neither podDisruptionBudget.minAvailable nor podDisruptionBudget.maxUnavailable is set" }}
{{- end }}
{{- if and (ne $min "") (not (hasSuffix "%" $min)) (ge (int $min) (int $v.replicaCount)) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%s) is not below replicaCount (%d): no controller pod could ever be evicted and node drains would hang; raise replicaCount or lower minAvailable" $min (int $v.replicaCount)) }}
{{- end }}
{{- end }}
{{- if $v.apiPriority.enabled }}
{{- $p := $v.apiPriority }}
{{- if not (or $p.controller $p.serviceAccounts $p.groups $p.users) }}
{{- fail "apiPriority.enabled is true but the FlowSchema would match no one: set apiPriority.controller to true, or list apiPriority.serviceAccounts, apiPriority.groups or apiPriority.users" }}
{{- end }}
{{- if and (eq $p.limitResponse "Queue") (gt (int $p.queuing.handSize) (int $p.queuing.queues)) }}
{{- fail (printf "apiPriority.queuing.handSize (%d) is larger than apiPriority.queuing.queues (%d): a flow is dealt handSize of the queues; lower handSize or raise queues" (int $p.queuing.handSize) (int $p.queuing.queues)) }}
{{- end }}
{{- end }}
{{- if and $v.affinity.podAntiAffinity (ne $v.podAntiAffinity "none") }}
{{- fail (printf "affinity.podAntiAffinity is set and so is podAntiAffinity (%s); set podAntiAffinity to none to use your own" $v.podAntiAffinity) }}
{{- end }}
{{- end }}
