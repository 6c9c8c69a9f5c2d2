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

{{/* The store as earmark serve takes it (--store / EARMARK_STORE): /data (the mounted volume) or
     s3://BUCKET or s3://BUCKET/PREFIX. */}}
{{- define "earmark.storeUrl" -}}
{{- if eq .Values.store.type "s3" }}
{{- $prefix := trimAll "/" (toString (default "" .Values.store.s3.prefix)) }}
{{- if $prefix }}{{ printf "s3://%s/%s" (toString .Values.store.s3.bucket) $prefix }}{{ else }}{{ printf "s3://%s" (toString .Values.store.s3.bucket) }}{{ end }}
{{- else }}/data
{{- end }}
{{- end }}

{{/* Checks that stop rendering with a message a user can act on. */}}
{{- define "earmark.validate" -}}
{{- if not (has .Values.store.type (list "pvc" "hostPath" "emptyDir" "s3")) }}
{{- fail (printf "store.type=%s: expected pvc, hostPath, emptyDir or s3" .Values.store.type) }}
{{- end }}
{{- if and (not .Values.models.existingClaim) (not .Values.models.hostPath) (not .Values.models.fetch) }}
{{- fail "models: give models.existingClaim or models.hostPath, or set models.fetch=true to download them at start" }}
{{- end }}
{{- if and (not .Values.singleNode) (eq .Values.store.type "emptyDir") }}
{{- fail "store.type=emptyDir only works with singleNode=true: gateway, workers and reporter must share the store (use pvc, hostPath on one node, or s3)" }}
{{- end }}
{{- $keep := toString .Values.store.keepHours }}
{{- if not (regexMatch "^[0-9]+([.][0-9]+)?$" $keep) }}
{{- fail (printf "store.keepHours=%v: give the hours after which the gateway removes finished jobs (a number, 0 keeps them forever)" $keep) }}
{{- end }}
{{- if eq .Values.store.type "s3" }}
{{- $s3 := .Values.store.s3 }}
{{- if not $s3.bucket }}
{{- fail "store.type=s3: store.s3.bucket is empty; give the bucket that holds uploads, job state and reports (create it first; the chart does not)" }}
{{- end }}
{{- if not (regexMatch "^[a-z0-9.-]{3,63}$" (toString $s3.bucket)) }}
{{- fail (printf "store.s3.bucket=%v is not a valid bucket name: 3-63 characters, lower-case letters, digits, '.' and '-'" $s3.bucket) }}
{{- end }}
{{- if contains "//" (trimAll "/" (toString (default "" $s3.prefix))) }}
{{- fail (printf "store.s3.prefix=%v has an empty part ('//'); write it as a/b" $s3.prefix) }}
{{- end }}
{{- if and (not $s3.existingSecret) (not $s3.workloadIdentity) }}
{{- fail "store.type=s3: store.s3.existingSecret is empty; create a Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (optional AWS_SESSION_TOKEN) and give its name (deploy/README.md shows the kubectl command), or set store.s3.workloadIdentity=true on EKS with Pod Identity or IAM roles for service accounts" }}
{{- end }}
{{- if and $s3.endpoint (not (regexMatch "^https?://[^/]+/?$" (toString $s3.endpoint))) }}
{{- fail (printf "store.s3.endpoint=%v: write it as http://HOST:PORT or https://HOST (empty for AWS)" $s3.endpoint) }}
{{- end }}
{{- if not (or (kindIs "bool" $s3.pathStyle) (eq (toString $s3.pathStyle) "")) }}
{{- fail (printf "store.s3.pathStyle=%v: use true (http://endpoint/bucket/key), false (http://bucket.endpoint/key) or \"\" (path style for a custom endpoint, virtual-hosted for AWS)" $s3.pathStyle) }}
{{- end }}
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

{{/* Volumes of every earmark pod: the base ones (config, /tmp, models) and the store's. */}}
{{- define "earmark.volumes" -}}
{{ include "earmark.baseVolumes" . }}
{{ include "earmark.storeVolumes" . | trim }}
{{- end }}

{{- define "earmark.baseVolumes" -}}
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
{{- end }}

{{/* The store volume mounted at /data, or with store.type=s3 (no volume: the bucket) the local
     scratch folder for staged uploads, downloaded inputs and reports in the making. */}}
{{- define "earmark.storeVolumes" -}}
{{- if eq .Values.store.type "s3" }}
- name: scratch
  emptyDir:
    {{- with .Values.store.scratch.medium }}
    medium: {{ . }}
    {{- end }}
    sizeLimit: {{ .Values.store.scratch.sizeLimit }}
{{- else }}
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
{{- end }}

{{- define "earmark.volumeMounts" -}}
{{ include "earmark.baseVolumeMounts" . }}
{{ include "earmark.storeVolumeMounts" . | trim }}
{{- end }}

{{- define "earmark.baseVolumeMounts" -}}
- name: config
  mountPath: /etc/earmark
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: models
  mountPath: /models
  readOnly: {{ or (not (empty .Values.models.existingClaim)) (not (empty .Values.models.hostPath)) }}
{{- end }}

{{- define "earmark.storeVolumeMounts" -}}
{{- if eq .Values.store.type "s3" }}
- name: scratch
  mountPath: /scratch
{{- else }}
- name: store
  mountPath: /data
{{- end }}
{{- end }}

{{/* Environment of the earmark containers: include "earmark.env" (list $ WITH_STORE). The batch
     Job leaves the S3 store settings (and credentials) out: earmark detect does not use them. */}}
{{- define "earmark.env" -}}
{{- $root := index . 0 -}}
{{- $withStore := index . 1 -}}
{{- $s3 := and $withStore (eq $root.Values.store.type "s3") -}}
- name: EARMARK_MODELS
  value: /models
{{- if or $withStore (ne $root.Values.store.type "s3") }}
- name: EARMARK_STORE
  value: {{ include "earmark.storeUrl" $root | quote }}
{{- end }}
- name: EARMARK_QUEUE
  value: {{ include "earmark.queueUrl" $root | quote }}
- name: EARMARK_FETCH
  value: {{ join " " $root.Values.models.names | quote }}
- name: EARMARK_FETCH_MODELS
  value: {{ ternary "1" "0" (and $root.Values.models.fetch (empty $root.Values.models.existingClaim) (empty $root.Values.models.hostPath)) | quote }}
{{- if $s3 }}
{{- $v := $root.Values.store.s3 }}
- name: EARMARK_SCRATCH
  value: /scratch
{{- with $v.endpoint }}
- name: EARMARK_S3_ENDPOINT
  value: {{ trimSuffix "/" (toString .) | quote }}
{{- end }}
- name: EARMARK_S3_REGION
  value: {{ default "us-east-1" $v.region | quote }}
{{- if kindIs "bool" $v.pathStyle }}
- name: EARMARK_S3_PATH_STYLE
  value: {{ ternary "1" "0" $v.pathStyle | quote }}
{{- end }}
{{- if not $v.workloadIdentity }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $v.existingSecret }}
      key: {{ $v.secretKeys.accessKeyId }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.existingSecret }}
      key: {{ $v.secretKeys.secretAccessKey }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $v.existingSecret }}
      key: {{ $v.secretKeys.sessionToken }}
      optional: true
{{- end }}
{{- end }}
{{- with $root.Values.serve.logLevel }}
- name: EARMARK_LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
{{- with $root.Values.serve.extraEnv }}
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
    - --store={{ include "earmark.storeUrl" $root }}
    - --queue={{ include "earmark.queueUrl" $root }}
    - --models-dir=/models
    - --config=/etc/earmark/config.yaml
    - --max-upload-mb={{ $root.Values.serve.maxUploadMb }}
    {{- if has $role (list "gateway" "all") }}
    - --keep-hours={{ toString $root.Values.store.keepHours }}
    {{- end }}
    {{- with index . 2 }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $root.Values.serve.extraArgs }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  env:
    {{- include "earmark.env" (list $root true) | nindent 4 }}
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
