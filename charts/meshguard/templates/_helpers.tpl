{{/* Names and labels shared by every object. */}}

{{- define "meshguard.fullname" -}}
{{- if contains "meshguard" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-meshguard" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "meshguard.labels" -}}
app.kubernetes.io/name: meshguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one part: include with (list . "controlplane") */}}
{{- define "meshguard.selector" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: meshguard
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "meshguard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "meshguard.controlplane" -}}{{ include "meshguard.fullname" . }}-controlplane{{- end -}}
{{- define "meshguard.authz" -}}{{ include "meshguard.fullname" . }}-authz{{- end -}}
{{- define "meshguard.ratelimit" -}}{{ include "meshguard.fullname" . }}-ratelimit{{- end -}}

{{- define "meshguard.spire" -}}
{{- eq .Values.mesh.identityProvider "spire" -}}
{{- end -}}

{{/* The pod-level pieces every part shares. */}}
{{- define "meshguard.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
automountServiceAccountToken: true
{{- end -}}

{{- define "meshguard.downwardEnv" -}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: POD_IP
  valueFrom: {fieldRef: {fieldPath: status.podIP}}
{{- end -}}

{{/* The SPIRE agent socket volume's source. */}}
{{- define "meshguard.spireVolume" -}}
{{- if eq .Values.spire.socketVolume "csi" -}}
csi: {driver: {{ .Values.spire.csiDriver }}, readOnly: true}
{{- else -}}
hostPath: {path: {{ .Values.spire.socketDir }}, type: Directory}
{{- end -}}
{{- end -}}
