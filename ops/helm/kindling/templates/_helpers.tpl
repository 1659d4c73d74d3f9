{{/* Names, labels and small pieces the templates share. */}}

{{- define "kindling.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kindling.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The headless service the members reach each other through. */}}
{{- define "kindling.peers" -}}
{{- printf "%s-peers" (include "kindling.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <peers>.<namespace>.svc.<domain>: each pod is <pod>.<this>. */}}
{{- define "kindling.peerDomain" -}}
{{- printf "%s.%s.svc.%s" (include "kindling.peers" .) .Release.Namespace .Values.cluster.domain -}}
{{- end -}}

{{- define "kindling.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kindling.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kindling.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kindling.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "kindling.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kindling.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kindling.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The authentication modes as a list: "basic, oidc" -> [basic oidc]. */}}
{{- define "kindling.authModes" -}}
{{- $modes := list -}}
{{- range splitList "," .Values.auth.mode -}}
{{- $modes = append $modes (trim .) -}}
{{- end -}}
{{- toJson $modes -}}
{{- end -}}

{{- define "kindling.authOn" -}}
{{- if ne (trim .Values.auth.mode) "none" -}}true{{- end -}}
{{- end -}}

{{- define "kindling.scheme" -}}
{{- if .Values.tls.secretName -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* A value as TOML: strings quoted (JSON escapes are TOML's), numbers as integers (every
     numeric setting is one), lists inline. */}}
{{- define "kindling.toml" -}}
{{- if kindIs "string" . -}}
{{- toJson . -}}
{{- else if kindIs "bool" . -}}
{{- . -}}
{{- else if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) -}}
{{- int64 . -}}
{{- else if kindIs "slice" . -}}
[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "kindling.toml" $v }}{{ end }}]
{{- else -}}
{{- fail (printf "cannot write %v (%s) in the config file" . (kindOf .)) -}}
{{- end -}}
{{- end -}}

{{/* The lines of a TOML table from a map, keys quoted. */}}
{{- define "kindling.tomlTable" -}}
{{- $lines := list -}}
{{- range $k, $v := . -}}
{{- $lines = append $lines (printf "%s = %s" (toJson $k) (include "kindling.toml" $v)) -}}
{{- end -}}
{{- join "\n" $lines -}}
{{- end -}}
