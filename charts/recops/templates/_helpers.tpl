{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "recops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the release name alone when it already holds the chart name. */}}
{{- define "recops.fullname" -}}
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

{{- define "recops.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "recops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: recops
{{- end }}

{{- define "recops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "recops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "recops.operatorSelectorLabels" -}}
{{ include "recops.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "recops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "recops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference: repository, then the digest when set, else the tag (appVersion by default). */}}
{{- define "recops.image" -}}
{{- $image := index .root.Values.images .name }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* Namespace of the Grafana dashboards ConfigMaps: the release's unless set. */}}
{{- define "recops.dashboardsNamespace" -}}
{{- default .Release.Namespace .Values.grafana.dashboards.namespace }}
{{- end }}
