{{/* Labels every object carries: the lab's two, plus Helm's own. */}}
{{- define "hitl-gate.labels" -}}
app.kubernetes.io/part-of: hitl-lab
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The image of service `.service`: <prefix>/<service>:<tag or appVersion>. */}}
{{- define "hitl-gate.image" -}}
{{- $root := .root -}}
{{- printf "%s/%s:%s" $root.Values.image.prefix .service (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end }}

{{/* The pod and container security settings every service runs with. */}}
{{- define "hitl-gate.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "hitl-gate.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* Probes on the service's `http` port: live on /livez, ready on /readyz. */}}
{{- define "hitl-gate.probes" -}}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 5
livenessProbe:
  httpGet:
    path: /livez
    port: http
  periodSeconds: 20
  failureThreshold: 3
{{- end }}

{{/* hitl-extauth's replica count: one on SQLite (one file, one writer). */}}
{{- define "hitl-gate.extauthReplicas" -}}
{{- if eq .Values.store.type "sqlite" }}1{{ else }}{{ .Values.extauth.replicas }}{{ end -}}
{{- end }}

{{/*
A Secret's existing data, else nil: what `lookup` finds in the cluster (nothing when rendered
offline, e.g. `helm template`), so generated values are made once and kept on upgrade.
*/}}
{{- define "hitl-gate.existing" -}}
{{- $s := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if $s }}{{ toJson $s.data }}{{ else }}{}{{ end -}}
{{- end }}
