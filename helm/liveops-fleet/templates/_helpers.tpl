{{/* Names, labels and the image reference shared by every template of the chart. */}}

{{- define "liveops-fleet.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; worker names are appended, so leave room for them. */}}
{{- define "liveops-fleet.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "liveops-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "liveops-fleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "liveops-fleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "liveops-fleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: liveops-fleet
{{- end }}

{{- define "liveops-fleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "liveops-fleet.configName" -}}
{{- printf "%s-config" (include "liveops-fleet.fullname" .) }}
{{- end }}

{{/*
The labels that select one worker's pods: the Deployment's selector and pod labels and the
worker's PodDisruptionBudget all use this, so the budget always covers exactly those pods.
Called with (dict "root" $ "worker" $name).
*/}}
{{- define "liveops-fleet.workerSelectorLabels" -}}
{{ include "liveops-fleet.selectorLabels" .root }}
app.kubernetes.io/component: {{ .worker }}
{{- end }}

{{/*
One env entry per variable of a map (environment variable -> key), each read from the existing
Secret. Called with (dict "root" $ "env" $map); renders nothing for an empty map.
*/}}
{{- define "liveops-fleet.secretKeyRefs" -}}
{{- range $variable, $key := .env }}
- name: {{ $variable }}
  valueFrom:
    secretKeyRef:
      name: {{ $.root.Values.secrets.existingSecret }}
      key: {{ $key }}
{{- end }}
{{- end }}

{{/*
One env entry per secrets.env variable, read from the existing Secret: used by the worker
Deployments, the gateway and the setup Job alike. Renders nothing when secrets.env is empty.
*/}}
{{- define "liveops-fleet.secretEnv" -}}
{{- include "liveops-fleet.secretKeyRefs" (dict "root" . "env" .Values.secrets.env) }}
{{- end }}

{{/*
The gateway's own secrets (secrets.gatewayEnv, e.g. the JWT key), read from the same Secret:
only the gateway pods get them, never a worker or the setup Job.
*/}}
{{- define "liveops-fleet.gatewaySecretEnv" -}}
{{- include "liveops-fleet.secretKeyRefs" (dict "root" . "env" .Values.secrets.gatewayEnv) }}
{{- end }}

{{/*
The setup Job's environment: every config entry inline, then the secrets. A pre-install hook
runs before the chart's ConfigMap exists, so the Job cannot use envFrom like the workers do.
*/}}
{{- define "liveops-fleet.setupEnv" -}}
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- include "liveops-fleet.secretEnv" . }}
{{- end }}

{{/*
Refuses autoscaling values no HorizontalPodAutoscaler could honour: minReplicas above
maxReplicas, and a CPU utilization target without a CPU request (utilization is a share of the
request, so the HPA would never get a value). Called with
(dict "where" "gateway" "autoscaling" $autoscaling "resources" $resources); renders nothing.
*/}}
{{- define "liveops-fleet.autoscalingChecks" -}}
{{- $a := .autoscaling }}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}
{{- fail (printf "%s.autoscaling: minReplicas (%v) is above maxReplicas (%v)" .where $a.minReplicas $a.maxReplicas) }}
{{- end }}
{{- if not (dig "requests" "cpu" "" (.resources | default dict)) }}
{{- fail (printf "%s.autoscaling: targetCPUUtilizationPercentage needs %s.resources.requests.cpu (utilization is a share of the request)" .where .where) }}
{{- end }}
{{- end }}

{{/*
The scaleTargetRef and CPU metric every HPA of the chart shares. Called with
(dict "name" $deploymentName "autoscaling" $autoscaling); the caller adds any further metric.
*/}}
{{- define "liveops-fleet.autoscalingSpec" -}}
scaleTargetRef:
  apiVersion: apps/v1
  kind: Deployment
  name: {{ .name }}
minReplicas: {{ .autoscaling.minReplicas }}
maxReplicas: {{ .autoscaling.maxReplicas }}
metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: {{ .autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
