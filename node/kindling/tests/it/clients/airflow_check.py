"""Airflow's Livy hook, unchanged, against a Kindling node: a batch submitted, followed to its
end and its log read, authenticated by the connection's login and password (`basic`) or by an
API token in the connection's extra headers (`token`), as an Airflow deployment configures a
Livy connection. Prints one JSON line: the batch id, its final state and its log.

Usage: airflow_check.py URL APP MODE; credentials in KINDLING_USER and KINDLING_PASSWORD, or
KINDLING_TOKEN, never on the command line.
"""

import json
import os
import sys
import time
from urllib.parse import urlsplit

url, app, mode = sys.argv[1], sys.argv[2], sys.argv[3]
where = urlsplit(url)
conn = {"conn_type": "livy", "host": where.hostname, "port": where.port, "schema": where.scheme}
if mode == "basic":
    conn["login"] = os.environ["KINDLING_USER"]
    conn["password"] = os.environ["KINDLING_PASSWORD"]
else:
    conn["extra"] = {"Authorization": "Bearer " + os.environ["KINDLING_TOKEN"]}
os.environ["AIRFLOW_CONN_LIVY_KINDLING"] = json.dumps(conn)

from airflow.providers.apache.livy.hooks.livy import BatchState, LivyHook  # noqa: E402

hook = LivyHook(livy_conn_id="livy_kindling")
batch = hook.post_batch(file=app, args=["exit=0"], name=f"airflow-{mode}")
terminal = {BatchState.SUCCESS, BatchState.DEAD, BatchState.KILLED, BatchState.ERROR}
deadline = time.monotonic() + 60
state = hook.get_batch_state(batch)
# Polling is how the hook's users (LivyOperator) follow a batch.
while state not in terminal:
    if time.monotonic() > deadline:
        sys.exit(f"batch {batch} still {state} after 60 s")
    time.sleep(0.2)
    state = hook.get_batch_state(batch)
logs = hook.get_batch_logs(batch, 0, 100)
print(json.dumps({"id": batch, "state": state.value, "log": logs["log"]}))
