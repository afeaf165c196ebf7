{{/*
Names, labels and the values derived from several settings. Every resource's labels include
"conclave.validate", so inconsistent values fail any render.
*/}}

{{- define "conclave.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "conclave.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "conclave.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by every resource of the release. */}}
{{- define "conclave.labels" -}}
helm.sh/chart: {{ include "conclave.chart" . }}
{{ include "conclave.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: conclave
{{- include "conclave.validate" . }}
{{- end }}

{{/* The two labels that select every pod of the release (the default-deny policy uses them). */}}
{{- define "conclave.instanceLabels" -}}
app.kubernetes.io/name: {{ include "conclave.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one component: include "conclave.selectorLabels" (list $ "gateway"). */}}
{{- define "conclave.selectorLabels" -}}
{{- $root := index . 0 -}}
{{ include "conclave.instanceLabels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "conclave.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "conclave.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "conclave.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "conclave.secretName" -}}
{{- .Values.secret.existingSecret | default (printf "%s-secrets" (include "conclave.fullname" .)) }}
{{- end }}

{{/* True (non-empty) when the in-chart llama.cpp server is rendered. */}}
{{- define "conclave.llamaEnabled" -}}
{{- if not .Values.inference.external.endpoint }}true{{ end }}
{{- end }}

{{- define "conclave.llamaName" -}}
{{- printf "%s-llama" (include "conclave.fullname" .) }}
{{- end }}

{{- define "conclave.postgresqlName" -}}
{{- printf "%s-postgresql" (include "conclave.fullname" .) }}
{{- end }}

{{- define "conclave.natsName" -}}
{{- printf "%s-nats" (include "conclave.fullname" .) }}
{{- end }}

{{- define "conclave.workerName" -}}
{{- $root := index . 0 }}
{{- printf "%s-worker-%s" (include "conclave.fullname" $root) (index . 1) }}
{{- end }}

{{/*
The JetStream names of one role, the contract with `conclave worker --role ROLE`:
stream CONCLAVE_STEPS, subject conclave.steps.<role>, durable consumer worker-<role>.
*/}}
{{- define "conclave.jetstreamStream" -}}CONCLAVE_STEPS{{- end }}
{{- define "conclave.jetstreamSubject" -}}conclave.steps.{{ . }}{{- end }}
{{- define "conclave.jetstreamConsumer" -}}worker-{{ . }}{{- end }}

{{/* storage.url: the external URL, or the in-chart PostgreSQL's (no password: it comes from the env). */}}
{{- define "conclave.storageURL" -}}
{{- if .Values.postgresql.external.url }}
{{- .Values.postgresql.external.url }}
{{- else }}
{{- printf "postgres://%s@%s:%d/%s" .Values.postgresql.user (include "conclave.postgresqlName" .) (int .Values.postgresql.port) .Values.postgresql.database }}
{{- end }}
{{- end }}

{{- define "conclave.natsURL" -}}
{{- if .Values.nats.external.url }}
{{- .Values.nats.external.url }}
{{- else }}
{{- printf "nats://%s:%d" (include "conclave.natsName" .) (int .Values.nats.port) }}
{{- end }}
{{- end }}

{{/* host:port of NATS monitoring as KEDA (in another namespace) reaches it. */}}
{{- define "conclave.natsMonitoringEndpoint" -}}
{{- if .Values.nats.external.url }}
{{- .Values.nats.external.monitoringEndpoint }}
{{- else }}
{{- printf "%s.%s.svc.%s:%d" (include "conclave.natsName" .) .Release.Namespace .Values.clusterDomain (int .Values.nats.monitoringPort) }}
{{- end }}
{{- end }}

{{/* inference.endpoint: the external one, or the in-chart llama-server's (base URL including /v1). */}}
{{- define "conclave.inferenceEndpoint" -}}
{{- if .Values.inference.external.endpoint }}
{{- .Values.inference.external.endpoint }}
{{- else }}
{{- printf "http://%s:%d/v1" (include "conclave.llamaName" .) (int .Values.inference.llama.port) }}
{{- end }}
{{- end }}

{{/* Combinations the schema cannot express; each failure names the keys to change. */}}
{{- define "conclave.validate" -}}
{{- if and .Values.postgresql.enabled .Values.postgresql.external.url }}
{{- fail "postgresql.external.url is set while postgresql.enabled is true: set postgresql.enabled=false to use the external PostgreSQL, or clear the URL" }}
{{- end }}
{{- if not (or .Values.postgresql.enabled .Values.postgresql.external.url) }}
{{- fail "postgresql.enabled is false and postgresql.external.url is empty: Conclave needs a PostgreSQL (set one of them)" }}
{{- end }}
{{- if and .Values.nats.enabled .Values.nats.external.url }}
{{- fail "nats.external.url is set while nats.enabled is true: set nats.enabled=false to use the external NATS, or clear the URL" }}
{{- end }}
{{- if not (or .Values.nats.enabled .Values.nats.external.url) }}
{{- fail "nats.enabled is false and nats.external.url is empty: Conclave needs a NATS server with JetStream (set one of them)" }}
{{- end }}
{{- if and .Values.workers.autoscaling.enabled .Values.nats.external.url (not .Values.nats.external.monitoringEndpoint) }}
{{- fail "nats.external.monitoringEndpoint (HOST:8222) is required with nats.external.url while workers.autoscaling.enabled is true: KEDA reads the consumer lag from it" }}
{{- end }}
{{- $model := .Values.inference.llama.model }}
{{- if and (include "conclave.llamaEnabled" .) (not $model.existingClaim) (not $model.persistence.enabled) (not $model.downloadURL) }}
{{- fail "inference.llama.model: with persistence.enabled=false and no existingClaim, downloadURL is required (each llama pod fetches the model into an emptyDir)" }}
{{- end }}
{{- end }}

{{/* Volumes and mounts shared by the gateway and the workers. */}}
{{- define "conclave.volumes" -}}
- name: config
  projected:
    defaultMode: 0440
    sources:
      - configMap:
          name: {{ include "conclave.fullname" . }}-config
          items:
            - key: conclave.yaml
              path: conclave.yaml
      - secret:
          name: {{ include "conclave.secretName" . }}
          items:
            - key: hs256-key
              path: keys/hs256.key
            - key: audit-signing-key
              path: keys/audit-ed25519.key
- name: tmp
  emptyDir: {}
- name: var
  emptyDir: {}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "conclave.volumeMounts" -}}
- name: config
  mountPath: /etc/conclave
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: var
  mountPath: /opt/conclave/var
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Environment shared by the gateway and the workers. */}}
{{- define "conclave.env" -}}
- name: CONCLAVE_STORAGE__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "conclave.secretName" . }}
      key: storage-password
{{- if and .Values.inference.external.endpoint .Values.inference.external.apiKeyFromSecret }}
- name: INFERENCE_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "conclave.secretName" . }}
      key: inference-api-key
{{- end }}
{{- end }}

{{/* Pod annotations that roll the Conclave pods when their configuration changes. */}}
{{- define "conclave.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/*
Service-mesh sidecar injection (mesh.inject): pod labels, then pod annotations.
*/}}
{{- define "conclave.meshLabels" -}}
{{- if eq .Values.mesh.inject "istio" }}
sidecar.istio.io/inject: "true"
{{- end }}
{{- end }}

{{- define "conclave.meshAnnotations" -}}
{{- if eq .Values.mesh.inject "linkerd" }}
linkerd.io/inject: enabled
{{- end }}
{{- end }}
