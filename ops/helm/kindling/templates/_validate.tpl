{{/* Combinations that cannot work (or that the node would refuse at start) fail the render
     with a message that says what to set. */}}
{{- define "kindling.validate" -}}
{{- $v := .Values -}}
{{- $replicas := int $v.replicas -}}
{{- $modes := include "kindling.authModes" . | fromJsonArray -}}
{{- if lt $replicas 1 -}}
{{- fail "replicas must be at least 1" -}}
{{- end -}}
{{- if not (has $v.eventLog.type (list "sled" "kafka")) -}}
{{- fail (printf "eventLog.type must be sled or kafka, not %q" $v.eventLog.type) -}}
{{- end -}}
{{- if not (has $v.projections.type (list "sled" "mongodb")) -}}
{{- fail (printf "projections.type must be sled or mongodb, not %q" $v.projections.type) -}}
{{- end -}}
{{- if and (gt $replicas 1) (ne $v.eventLog.type "kafka") -}}
{{- fail (printf "replicas: %d needs eventLog.type=kafka: with the embedded sled log each pod keeps a log of its own, so a job submitted to one node would not exist on the others (docs/cluster.md). Use replicas: 1, or Kafka (and MongoDB for the projections)" $replicas) -}}
{{- end -}}
{{- if and (gt $replicas 1) (not $v.persistence.enabled) -}}
{{- fail "replicas > 1 needs persistence.enabled: a member that loses its Raft state on a restart cannot rejoin as itself (and pod 0 would start a new cluster)" -}}
{{- end -}}
{{- if and (gt $replicas 1) (not $v.auth.clusterSecret.name) -}}
{{- fail "replicas > 1 needs auth.clusterSecret.name: an existing Secret with the members' shared secret (head -c 32 /dev/urandom | base64); without it anyone reaching the Raft port could join, vote and append" -}}
{{- end -}}
{{- if and (eq $v.eventLog.type "kafka") (not $v.eventLog.kafka.brokers) -}}
{{- fail "eventLog.type kafka needs eventLog.kafka.brokers (host:port,...)" -}}
{{- end -}}
{{- range $k, $_ := $v.eventLog.kafka.properties -}}
{{- if regexMatch "password|secret|^ssl\\.key\\.pem$|^sasl\\.jaas\\.config$" $k -}}
{{- fail (printf "eventLog.kafka.properties.%s holds a secret: give it in eventLog.kafka.secretProperties (from a Secret)" $k) -}}
{{- end -}}
{{- end -}}
{{- range $v.eventLog.kafka.secretProperties -}}
{{- if not (and .property .secretName .key) -}}
{{- fail "each eventLog.kafka.secretProperties entry needs property, secretName and key" -}}
{{- end -}}
{{- end -}}
{{- if eq $v.projections.type "mongodb" -}}
{{- if not (regexMatch "^mongodb(\\+srv)?://" $v.projections.mongodb.uri) -}}
{{- fail "projections.type mongodb needs projections.mongodb.uri (mongodb://host:port/...)" -}}
{{- end -}}
{{- if regexMatch "^mongodb(\\+srv)?://[^/?@]*:[^/?@]*@" $v.projections.mongodb.uri -}}
{{- fail "projections.mongodb.uri holds a password: keep the user in the URI and put the password in an existing Secret named by projections.mongodb.passwordSecret" -}}
{{- end -}}
{{- end -}}
{{- if not (has $v.driverRoute (list "grpc" "kafka")) -}}
{{- fail (printf "driverRoute must be grpc or kafka, not %q" $v.driverRoute) -}}
{{- end -}}
{{- if and (eq $v.driverRoute "kafka") (ne $v.eventLog.type "kafka") -}}
{{- fail "driverRoute kafka needs eventLog.type kafka: the routes live on the event log's brokers" -}}
{{- end -}}
{{- if and (eq $v.driverRoute "kafka") (or $v.eventLog.kafka.properties $v.eventLog.kafka.secretProperties) -}}
{{- fail "driverRoute kafka does not carry Kafka client properties to session drivers; with eventLog.kafka.properties or secretProperties use driverRoute grpc" -}}
{{- end -}}
{{- range $modes -}}
{{- if not (has . (list "none" "basic" "ldap" "oidc")) -}}
{{- fail (printf "auth.mode must be none, or basic, ldap and oidc in any combination (basic,oidc), not %q" $v.auth.mode) -}}
{{- end -}}
{{- end -}}
{{- if and (has "none" $modes) (gt (len $modes) 1) -}}
{{- fail "auth.mode none cannot be combined with other modes" -}}
{{- end -}}
{{- if and (has "none" $modes) (not $v.auth.insecureNoAuth) -}}
{{- fail "auth.mode none lets every caller act as an admin: set auth.mode (basic with auth.usersSecret, ldap, oidc), or auth.insecureNoAuth: true for a trial" -}}
{{- end -}}
{{- if and (has "basic" $modes) (not $v.auth.usersSecret.name) -}}
{{- fail "auth.mode basic needs auth.usersSecret.name: an existing Secret holding the users file (kindling users add NAME --users-file users)" -}}
{{- end -}}
{{- if and (has "ldap" $modes) (not (index $v.auth.ldap "url")) -}}
{{- fail "auth.mode ldap needs auth.ldap.url" -}}
{{- end -}}
{{- if and (has "oidc" $modes) (not (index $v.auth.oidc "issuer")) -}}
{{- fail "auth.mode oidc needs auth.oidc.issuer (and audience, jwks-url)" -}}
{{- end -}}
{{- if and $v.auth.trustedProxy.userHeader (not $v.auth.trustedProxy.addresses) -}}
{{- fail "auth.trustedProxy.userHeader needs auth.trustedProxy.addresses" -}}
{{- end -}}
{{- if and $v.auth.trustedProxy.addresses (not $v.auth.trustedProxy.userHeader) -}}
{{- fail "auth.trustedProxy.addresses needs auth.trustedProxy.userHeader" -}}
{{- end -}}
{{- range $k, $_ := $v.config -}}
{{- if has $k (list "listen" "driver-listen" "raft-listen" "data-dir" "credentials-dir" "node-id" "join" "raft-advertise" "http-advertise" "driver-advertise" "event-log" "projections" "kafka-brokers" "kafka-topic" "kafka-replication" "kafka-transactions" "kafka-properties" "kafka-secret-properties" "mongo-uri" "mongo-database" "mongo-password-file" "driver-route" "spark-conf" "auth" "http") -}}
{{- fail (printf "config.%s is set by the chart: use its own value (ports, eventLog, projections, auth, http, sparkConf, ...)" $k) -}}
{{- end -}}
{{- end -}}
{{- range $k, $_ := $v.http -}}
{{- if has $k (list "tls-cert" "tls-key" "tls-ca") -}}
{{- fail (printf "http.%s is set by the chart from tls.secretName" $k) -}}
{{- end -}}
{{- end -}}
{{- if and $v.kubernetesBackend.enabled (not $v.kubernetesBackend.namespaces) -}}
{{- fail "kubernetesBackend.enabled needs kubernetesBackend.namespaces: the namespaces drivers run in" -}}
{{- end -}}
{{- if $v.serviceMonitor.enabled -}}
{{- if and $v.serviceMonitor.bearerTokenSecret.name $v.serviceMonitor.basicAuthSecret.name -}}
{{- fail "serviceMonitor: set bearerTokenSecret or basicAuthSecret, not both" -}}
{{- end -}}
{{- if and (include "kindling.authOn" .) (not (or $v.serviceMonitor.bearerTokenSecret.name $v.serviceMonitor.basicAuthSecret.name)) -}}
{{- fail "serviceMonitor with auth on needs credentials for /metrics: serviceMonitor.bearerTokenSecret (an API token of a viewer) or serviceMonitor.basicAuthSecret" -}}
{{- end -}}
{{- end -}}
{{- end -}}
