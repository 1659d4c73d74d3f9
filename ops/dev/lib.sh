# Shared settings of the dev scripts. Sourced, not run.
# The project's Python environments live outside the checkout so a fresh clone reuses them;
# their names carry the pins, so changing a pin builds a new one.
set -euo pipefail

KINDLING_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KINDLING_CACHE="${KINDLING_CACHE:-$HOME/.cache/kindling}"
PYSPARK_VERSION="4.3.0"
GRPC_VERSION="1.85.1"
# The runner's Kafka client in Kafka route mode; its wheels bundle librdkafka (works with tansu).
CONFLUENT_KAFKA_VERSION="2.16.1"
export KINDLING_VENV="${KINDLING_VENV:-$KINDLING_CACHE/venv}"
KINDLING_CLIENTS_VENV="${KINDLING_CLIENTS_VENV:-$KINDLING_CACHE/clients}"
KINDLING_SCHEMATHESIS_VENV="${KINDLING_SCHEMATHESIS_VENV:-$KINDLING_CACHE/schemathesis}"
KINDLING_AIRFLOW_VENV="${KINDLING_AIRFLOW_VENV:-$KINDLING_CACHE/airflow}"
KINDLING_BROWSER_VENV="${KINDLING_BROWSER_VENV:-$KINDLING_CACHE/browser}"

say() { printf '==> %s\n' "$*" >&2; }

need_java() {
  if ! command -v java >/dev/null 2>&1; then
    say "Java 17 is required (Spark runs on it): apt-get install -y openjdk-17-jre-headless"
    exit 1
  fi
}

python_bin() {
  for p in python3.11 python3; do
    if command -v "$p" >/dev/null 2>&1; then echo "$p"; return; fi
  done
  say "python3 is required"; exit 1
}
