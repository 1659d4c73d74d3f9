# The Spark image for Kindling's session drivers on Kubernetes: Spark's own image plus the
# session runner (node/runner/kindling_runner.py) and its wire contract, where the Kubernetes
# backend expects them by default (local:///opt/kindling/kindling_runner.py, with
# kindling/driver/v1/driver.proto beside it), and the runner's Python packages at the pins
# ops/dev/lib.sh uses. Batches need no change to Spark's image.
#
# Build from the repository root (no image can be built or pulled on the project's dev
# machines; this file is checked by hand):
#   docker build -f ops/docker/spark-session.Dockerfile -t kindling/spark-session:4.0.0 .
ARG SPARK_IMAGE=apache/spark:4.0.0-python3
FROM ${SPARK_IMAGE}
USER root
RUN pip install --no-cache-dir grpcio==1.85.1 grpcio-tools==1.85.1 confluent-kafka==2.16.1
COPY node/runner/kindling_runner.py /opt/kindling/kindling_runner.py
COPY proto/kindling/driver/v1/driver.proto /opt/kindling/kindling/driver/v1/driver.proto
# Back to the image's unprivileged user (uid 185 in the apache/spark images).
USER 185
