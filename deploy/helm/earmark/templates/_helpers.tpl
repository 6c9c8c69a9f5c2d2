{{/* Names ------------------------------------------------------------------------------------ */}}
{{- define "earmark.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "earmark.fullname" -}}
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

{{- define "earmark.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "earmark.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: include "earmark.selectorLabels" (list $ "worker") */}}
{{- define "earmark.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "earmark.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "earmark.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "earmark.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "earmark.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The queue URL of the split roles. */}}
{{- define "earmark.queueUrl" -}}
{{- if .Values.singleNode }}memory
{{- else if .Values.redis.enabled }}{{ printf "redis://%s-redis:6379" (include "earmark.fullname" .) }}
{{- else if .Values.redis.externalUrl }}{{ .Values.redis.externalUrl }}
{{- else }}{{ fail "redis.enabled is false and redis.externalUrl is empty: give the URL of your Redis (redis://HOST:PORT)" }}
{{- end }}
{{- end }}

{{- define "earmark.storeClaimName" -}}
{{- default (printf "%s-store" (include "earmark.fullname" .)) .Values.store.pvc.existingClaim }}
{{- end }}

{{/* Checks that stop rendering with a message a user can act on. */}}
{{- define "earmark.validate" -}}
{{- if eq .Values.store.type "s3" }}
{{- fail "store.type=s3 is not implemented: earmark serve keeps uploads, job state and reports in a shared directory and has no S3 client. Use store.type=pvc with a ReadWriteMany claim (NFS, CephFS, EFS, ...), or mount the bucket as a PVC with an S3 CSI driver and give it as store.pvc.existingClaim." }}
{{- end }}
{{- if not (has .Values.store.type (list "pvc" "hostPath" "emptyDir" "s3")) }}
{{- fail (printf "store.type=%s: expected pvc, hostPath or emptyDir" .Values.store.type) }}
{{- end }}
{{- if and (not .Values.models.existingClaim) (not .Values.models.hostPath) (not .Values.models.fetch) }}
{{- fail "models: give models.existingClaim or models.hostPath, or set models.fetch=true to download them at start" }}
{{- end }}
{{- if and (not .Values.singleNode) (eq .Values.store.type "emptyDir") }}
{{- fail "store.type=emptyDir only works with singleNode=true: gateway, workers and reporter must share the store" }}
{{- end }}
{{- end }}

{{/* Pod annotations: config checksum (restart on config change) and Prometheus scraping. */}}
{{- define "earmark.podAnnotations" -}}
{{- $root := index . 0 -}}
checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
{{- if $root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $root.Values.serve.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with index . 1 }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes shared by every earmark pod. */}}
{{- define "earmark.volumes" -}}
- name: config
  configMap:
    name: {{ include "earmark.fullname" . }}-config
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: models
{{- if .Values.models.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.models.existingClaim }}
    readOnly: true
{{- else if .Values.models.hostPath }}
  hostPath:
    path: {{ .Values.models.hostPath }}
    type: Directory
{{- else }}
  emptyDir:
    sizeLimit: 1Gi
{{- end }}
- name: store
{{- if eq .Values.store.type "pvc" }}
  persistentVolumeClaim:
    claimName: {{ include "earmark.storeClaimName" . }}
{{- else if eq .Values.store.type "hostPath" }}
  hostPath:
    path: {{ .Values.store.hostPath }}
    type: DirectoryOrCreate
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}

{{- define "earmark.volumeMounts" -}}
- name: config
  mountPath: /etc/earmark
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: models
  mountPath: /models
  readOnly: {{ or (not (empty .Values.models.existingClaim)) (not (empty .Values.models.hostPath)) }}
- name: store
  mountPath: /data
{{- end }}

{{- define "earmark.env" -}}
- name: EARMARK_MODELS
  value: /models
- name: EARMARK_STORE
  value: /data
- name: EARMARK_QUEUE
  value: {{ include "earmark.queueUrl" . | quote }}
- name: EARMARK_FETCH
  value: {{ join " " .Values.models.names | quote }}
- name: EARMARK_FETCH_MODELS
  value: {{ ternary "1" "0" (and .Values.models.fetch (empty .Values.models.existingClaim) (empty .Values.models.hostPath)) | quote }}
{{- with .Values.serve.logLevel }}
- name: EARMARK_LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.serve.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The earmark serve container of one role: include "earmark.serveContainer" (list $ "worker" $args $resources) */}}
{{- define "earmark.serveContainer" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
- name: earmark
  image: {{ include "earmark.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args:
    - serve
    - --role={{ $role }}
    - --host=0.0.0.0
    - --port={{ $root.Values.serve.port }}
    - --store=/data
    - --queue={{ include "earmark.queueUrl" $root }}
    - --models-dir=/models
    - --config=/etc/earmark/config.yaml
    - --max-upload-mb={{ $root.Values.serve.maxUploadMb }}
    {{- with index . 2 }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $root.Values.serve.extraArgs }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  env:
    {{- include "earmark.env" $root | nindent 4 }}
  ports:
    - name: http
      containerPort: {{ $root.Values.serve.port }}
      protocol: TCP
  startupProbe:
    httpGet: {path: /healthz, port: http}
    {{- toYaml $root.Values.probes.startup | nindent 4 }}
  livenessProbe:
    httpGet: {path: /healthz, port: http}
    {{- toYaml $root.Values.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet: {path: /readyz, port: http}
    {{- toYaml $root.Values.probes.readiness | nindent 4 }}
  resources:
    {{- toYaml (index . 3) | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  volumeMounts:
    {{- include "earmark.volumeMounts" $root | nindent 4 }}
{{- end }}
