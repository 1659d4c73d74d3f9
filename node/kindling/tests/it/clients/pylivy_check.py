"""Drives a Kindling node with pylivy (the `livy` package), unchanged: a session with
statements and a SQL download, and a batch waited to its end. Prints one JSON object; exits
non-zero on any failure. Usage: pylivy_check.py URL BATCH_FILE; with KINDLING_USER and
KINDLING_PASSWORD in the environment (never the command line) it passes them as requests'
Basic auth; with KINDLING_TOKEN, as a Bearer token through a requests auth of its own."""

import json
import os
import sys

from livy import LivyBatch, LivySession, SessionKind

url, batch_file = sys.argv[1], sys.argv[2]
auth = None
if "KINDLING_TOKEN" in os.environ:
    import requests

    class Bearer(requests.auth.AuthBase):
        def __call__(self, request):
            request.headers["Authorization"] = "Bearer " + os.environ["KINDLING_TOKEN"]
            return request

    auth = Bearer()
elif "KINDLING_USER" in os.environ:
    auth = (os.environ["KINDLING_USER"], os.environ["KINDLING_PASSWORD"])
result = {}
with LivySession.create(url, kind=SessionKind.PYSPARK, auth=auth) as session:
    result["state"] = session.state.value
    session.run("df = spark.range(4).selectExpr('id', 'id * id as square')")
    result["text"] = session.run("df.count()").text
    frame = session.read("df")
    result["read"] = frame.to_dict(orient="records")
with LivySession.create(url, kind=SessionKind.SQL, auth=auth) as sql:
    frame = sql.download_sql("select 'a' as k, 1 as v union all select 'b', 2")
    result["sql"] = frame.to_dict(orient="records")
batch = LivyBatch.create(url, file=batch_file, auth=auth)
batch.wait()
result["batch"] = {"id": batch.batch_id, "state": batch.state.value, "log_tail": batch.log()[-3:]}
print(json.dumps(result))
