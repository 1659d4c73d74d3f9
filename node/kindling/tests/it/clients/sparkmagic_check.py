"""Drives a Kindling node with sparkmagic's own Livy client classes, unchanged, the way its
Jupyter kernels do: start a PySpark session (sparkmagic waits for idle and probes `spark`),
run statements, read an error, delete the session. Prints one JSON object; exits non-zero
on any failure. Usage: sparkmagic_check.py URL; with KINDLING_USER and KINDLING_PASSWORD in
the environment (never the command line) it authenticates as sparkmagic's Basic_Access does;
with KINDLING_TOKEN, through a custom authenticator (sparkmagic's `authenticators` setting)
that sends it as a Bearer token, as a site with an identity provider configures sparkmagic."""

import json
import os
import sys
from types import SimpleNamespace

from hdijupyterutils.ipythondisplay import IpythonDisplay
from sparkmagic.livyclientlib.command import Command
from sparkmagic.livyclientlib.endpoint import Endpoint
from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient
from sparkmagic.livyclientlib.livysession import LivySession

url = sys.argv[1]
if "KINDLING_TOKEN" in os.environ:
    from sparkmagic.auth.customauth import Authenticator

    class Bearer(Authenticator):
        """A Bearer token (an OIDC JWT, a Kindling API token) on every request."""

        def __init__(self, parsed_attributes, token):
            super().__init__(parsed_attributes)
            self.token = token

        def __call__(self, request):
            request.headers["Authorization"] = f"Bearer {self.token}"
            return request

    endpoint = Endpoint(url, Bearer(SimpleNamespace(url=url), os.environ["KINDLING_TOKEN"]))
elif "KINDLING_USER" in os.environ:
    from sparkmagic.auth.basic import Basic

    # What `%spark add -a USER -p PASSWORD -t Basic_Access` parses into.
    attributes = SimpleNamespace(
        url=url, user=os.environ["KINDLING_USER"], password=os.environ["KINDLING_PASSWORD"]
    )
    endpoint = Endpoint(url, Basic(attributes))
else:
    endpoint = Endpoint(url, None)  # sparkmagic's "None" authentication
client = LivyReliableHttpClient.from_endpoint(endpoint)
session = LivySession(client, {"kind": "pyspark"}, IpythonDisplay())
session.start()
result = {"id": session.id, "state_after_start": session.status}
ok, text, mime = Command("sc.parallelize(range(10)).sum()").execute(session)
result["sum"] = {"ok": ok, "text": text, "mime": mime}
ok, text, mime = Command("undefined_name + 1").execute(session)
result["error"] = {"ok": ok, "text": text}
ok, text, mime = Command("spark.sql('select 6 * 7 as answer').collect()[0].answer").execute(session)
result["sql"] = {"ok": ok, "text": text}
listed = client.get_sessions()
result["listed"] = [s["id"] for s in listed["sessions"]]
session.delete()
result["state_after_delete"] = session.status
print(json.dumps(result))
