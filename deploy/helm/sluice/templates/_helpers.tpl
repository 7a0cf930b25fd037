{{- define "sluice.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sluice.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sluice.configMapName" -}}
{{- default (include "sluice.fullname" .) .Values.existingConfigMap -}}
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
sluice.discovery: what the config's kubernetes_sd_configs read, as JSON
{"roles": [...], "attach": [...]}: the roles and attach_metadata kinds of
every scrape config of every prometheus receiver of an inline config, plus
rbac.discoveryRoles and rbac.attachMetadata (for an existingConfigMap, whose
content the chart cannot see).
*/}}
{{- define "sluice.discovery" -}}
{{- $roles := .Values.rbac.discoveryRoles | default list -}}
{{- $attach := .Values.rbac.attachMetadata | default list -}}
{{- if not .Values.existingConfigMap -}}
{{- $cfg := fromYaml .Values.config -}}
{{- range $id, $r := (get $cfg "receivers" | default dict) -}}
{{- if and (kindIs "map" $r) (or (eq $id "prometheus") (hasPrefix "prometheus/" $id)) -}}
{{- range (dig "config" "scrape_configs" list $r) -}}
{{- range (get . "kubernetes_sd_configs" | default list) -}}
{{- $roles = append $roles (get . "role") -}}
{{- range $kind, $on := (get . "attach_metadata" | default dict) -}}
{{- if $on }}{{ $attach = append $attach $kind }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "roles" (uniq $roles | sortAlpha) "attach" (uniq $attach | sortAlpha) | toJson -}}
{{- end -}}

{{/*
sluice.automountToken: "true" when the pod gets its service-account token:
automountServiceAccountToken when set, else rbac.create (discovery is the
only reason Sluice calls the Kubernetes API).
*/}}
{{- define "sluice.automountToken" -}}
{{- if kindIs "invalid" .Values.automountServiceAccountToken -}}
{{- .Values.rbac.create -}}
{{- else -}}
{{- .Values.automountServiceAccountToken -}}
{{- end -}}
{{- end -}}
