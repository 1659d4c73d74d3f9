#!/usr/bin/env python3
"""A stand-in for the `kindling` binary, for testing the chaos harness itself (not Kindling).

It speaks just enough of the HA node's contract for a chaos run: the `serve` flags, the ready
line, `/api/v1/cluster`, `/api/v1/health`, Livy's `POST/GET/DELETE /batches`, the native
kill (`POST /api/v1/jobs/{id}/kill`), job listing, documents and events, and the log
(`/api/v1/events`). Its nodes share a
JSON-lines event log and a leader lease in files (they run on one machine; partitions do not
affect them), the lease holder launches
batches through `$SPARK_HOME/bin/spark-submit` like the local backend, and a new leader
adopts the drivers of the old one by their exit-code files.

A driver's name is unique, as a Kubernetes pod name is: the wrapper that runs it first claims
the name (an exclusive create of `launched` in its directory) and a second launch of the same
name starts nothing. So a new leader that finds a job scheduled but not launched launches it
again, whether the old leader died before launching or is only paused and will still try.

A file `stub-bug` in the run directory holding `double-launch` makes a new leader launch again every job it finds running: the
harness must report it (invariant 2).
"""
import fcntl, json, os, signal, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

FLAGS = ["--node-id", "--listen", "--driver-listen", "--raft-listen", "--raft-advertise",
         "--join", "--data-dir", "--drivers-dir", "--spark-home", "--max-drivers",
         "--event-log", "--kafka-brokers", "--kafka-topic", "--projections", "--mongo-uri",
         "--mongo-database", "--driver-heartbeat-timeout-secs", "--recovery-grace-secs"]

if len(sys.argv) > 2 and sys.argv[1] == "serve" and sys.argv[2] == "--help":
    print("Usage: kindling serve [OPTIONS]")
    for f in FLAGS:
        print(f"      {f} <VALUE>")
    sys.exit(0)

args = {}
rest = sys.argv[2:]
for i in range(0, len(rest) - 1, 2):
    args[rest[i]] = rest[i + 1]
me = int(args["--node-id"])
drivers = args["--drivers-dir"]
shared = os.path.dirname(drivers.rstrip("/"))
LOG, LEASE, LOCK = (os.path.join(shared, n) for n in ("stub-log.jsonl", "stub-lease.json", "stub.lock"))
spark_submit = os.path.join(args["--spark-home"], "bin/spark-submit")
try:
    bug = open(os.path.join(shared, "stub-bug")).read().strip()
except FileNotFoundError:
    bug = ""


class Locked:
    def __enter__(self):
        self.f = open(LOCK, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *a):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def read_log():
    try:
        with open(LOG) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def read_lease():
    try:
        with open(LEASE) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {"leader": None, "term": 0, "expires": 0}


def append(job, kind, data, origin="api", term=None):
    """Appends under the lock; a scheduler event only while this node holds the lease of
    `term` (the stub's fencing). Returns the event or None."""
    with Locked():
        if origin == "scheduler":
            l = read_lease()
            if l["leader"] != me or l["term"] != term or l["expires"] < time.time():
                return None
        log = read_log()
        versions = [e for e in log if e["job"] == job]
        e = {"position": len(log), "version": len(versions) + 1, "at": int(time.time() * 1000),
             "origin": origin, "term": term, "node": me, "type": kind, "data": data, "job": job}
        with open(LOG, "a") as f:
            f.write(json.dumps(e) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return e


def jobs():
    out = {}
    for e in read_log():
        j, t = e["job"], e["type"]
        if t == "JobSubmitted":
            out[j] = {"id": j, "type": "batch", "state": "not_started", "name": e["data"].get("name"),
                      "file": e["data"]["file"], "args": e["data"]["args"], "attempt": 0,
                      "killRequested": False, "deleted": False, "exitCode": None, "position": 0}
        job = out.get(j)
        if job is None:
            continue
        job["position"] = e["position"]
        if t == "JobScheduled" and job["state"] == "not_started":
            job["state"], job["attempt"] = "starting", 1
        elif t == "DriverLaunched" and job["state"] == "starting":
            job["state"] = "running"
        elif t == "KillRequested":
            job["killRequested"] = True
        elif t == "JobDeleted":
            job["deleted"] = True
        elif t == "JobFinished" and job["state"] not in ("success", "dead", "killed"):
            job["state"], job["exitCode"] = e["data"]["state"], e["data"]["exit_code"]
    return out


class Api(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body):
        b = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def job_id(self, parts, i):
        try:
            return int(parts[i])
        except (IndexError, ValueError):
            return None

    def do_GET(self):
        u = urlparse(self.path)
        p = u.path.strip("/").split("/")
        q = parse_qs(u.query)
        if u.path == "/api/v1/cluster":
            l = read_lease()
            leader = l["leader"] if l["expires"] >= time.time() else None
            return self.reply(200, {"node_id": me, "term": l["term"], "leader_id": leader, "members": []})
        if u.path == "/api/v1/health":
            n = len(read_log())
            return self.reply(200, {"status": "ok", "node": me, "logEnd": n, "projected": n})
        if u.path == "/api/v1/events":
            frm, lim = int(q.get("from", ["0"])[0]), int(q.get("limit", ["100"])[0])
            log = read_log()
            page = [dict(e, aggregate="job") for e in log[frm:frm + lim]]
            nxt = page[-1]["position"] + 1 if page else max(frm, len(log))
            return self.reply(200, {"events": page, "next": nxt, "logEnd": len(log)})
        js = jobs()
        if u.path == "/api/v1/jobs":
            off, lim = int(q.get("offset", ["0"])[0]), int(q.get("limit", ["100"])[0])
            items = [js[k] for k in sorted(js)]
            return self.reply(200, {"total": len(items), "offset": off, "jobs": items[off:off + lim]})
        if p[:3] == ["api", "v1", "jobs"] or p[0] == "batches":
            i = 3 if p[0] == "api" else 1
            j = js.get(self.job_id(p, i))
            if j is None or (p[0] == "batches" and j["deleted"]):
                return self.reply(404, {"msg": "no such job"})
            if p[-1] == "events":
                ev = [dict((k, v) for k, v in e.items() if k != "job") for e in read_log() if e["job"] == j["id"]]
                return self.reply(200, {"events": ev})
            return self.reply(200, j)
        self.reply(404, {"msg": "no such endpoint"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        p = urlparse(self.path).path.strip("/").split("/")
        if p[:3] == ["api", "v1", "jobs"] and p[-1] == "kill":
            j = jobs().get(self.job_id(p, 3))
            if j is None:
                return self.reply(404, {"msg": "no such job"})
            append(j["id"], "KillRequested", {"reason": "client"})
            return self.reply(200, jobs()[j["id"]])
        if self.path == "/batches":
            with Locked():  # the id is taken by the append, under the lock
                log = read_log()
                next_id = 1 + sum(1 for e in log if e["type"] == "JobSubmitted")
                e = {"position": len(log), "version": 1, "at": int(time.time() * 1000),
                     "origin": "api", "term": None, "node": me, "type": "JobSubmitted",
                     "data": {"file": body["file"], "args": body.get("args", []), "name": body.get("name")},
                     "job": next_id}
                with open(LOG, "a") as f:
                    f.write(json.dumps(e) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            return self.reply(201, {"id": next_id, "state": "not_started"})
        self.reply(400, {"msg": "the stub runs batches only"})

    def do_DELETE(self):
        p = urlparse(self.path).path.strip("/").split("/")
        j = jobs().get(self.job_id(p, 1)) if p[0] == "batches" else None
        if j is None:
            return self.reply(404, {"msg": "no such job"})
        append(j["id"], "KillRequested", {"reason": "client"})
        append(j["id"], "JobDeleted", {})
        return self.reply(200, {"msg": "deleted"})


def lease_loop():
    while True:
        with Locked():
            l = read_lease()
            now = time.time()
            if l["leader"] == me or l["expires"] < now:
                if l["leader"] != me or l["expires"] < now:
                    l = {"leader": me, "term": l["term"] + 1, "expires": now + 1.0}
                else:
                    l["expires"] = now + 1.0
                with open(LEASE + ".tmp", "w") as f:
                    json.dump(l, f)
                os.replace(LEASE + ".tmp", LEASE)
        time.sleep(0.15)


def exit_file(name):
    return os.path.join(drivers, name, "exit-code")


def launched(name):
    return os.path.join(drivers, name, "launched")


def launch(j, term, force=False):
    """Starts the driver unless one of this name was started (`force`, for the double-launch
    bug, skips the claim). Returns at once: the wrapper claims the name, records its pid (the
    group to kill) and, once the program ends, its exit code."""
    name = f"kindling-{j['id']}-1"
    os.makedirs(os.path.join(drivers, name), exist_ok=True)
    env = dict(os.environ, KINDLING_DRIVER=f"stub:{name}", KINDLING_JOB_ID=str(j["id"]),
               KINDLING_ATTEMPT="1", KINDLING_EXIT_FILE=exit_file(name),
               KINDLING_LAUNCHED=launched(name), KINDLING_PID_FILE=os.path.join(drivers, name, "pid"),
               KINDLING_FORCE="1" if force else "")
    wrapper = ('if [ -z "$KINDLING_FORCE" ]; then (set -C; : > "$KINDLING_LAUNCHED") 2>/dev/null || exit 0; fi; '
               'echo $$ > "$KINDLING_PID_FILE"; '
               '"$@"; code=$?; echo "$code" > "$KINDLING_EXIT_FILE"; exit "$code"')
    subprocess.Popen(["/bin/sh", "-c", wrapper, "driver", spark_submit, "--master", "local[1]",
                      j["file"]] + j["args"], env=env, start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def claim_unlaunched(name):
    """Claims the name of a driver that was never started, so that no later launch starts it."""
    os.makedirs(os.path.join(drivers, name), exist_ok=True)
    try:
        os.close(os.open(launched(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def scheduler_loop():
    term = None
    while True:
        time.sleep(0.1)
        l = read_lease()
        if l["leader"] != me or l["expires"] < time.time():
            term = None
            continue
        new_term = term != l["term"]
        term = l["term"]
        for j in jobs().values():
            name = f"kindling-{j['id']}-1"
            if j["state"] == "not_started":
                if j["killRequested"]:
                    append(j["id"], "JobFinished", {"state": "killed", "exit_code": None}, "scheduler", term)
                elif append(j["id"], "JobScheduled", {"attempt": 1}, "scheduler", term):
                    launch(j, term)
                    append(j["id"], "DriverLaunched", {"attempt": 1}, "scheduler", term)
            elif j["state"] in ("starting", "running"):
                if new_term and bug == "double-launch":
                    launch(j, term, force=True)
                if not os.path.exists(launched(name)):
                    # Scheduled, not launched: the leader that scheduled it stopped first (it
                    # may only be paused). Launch it here; whichever launch is second starts
                    # nothing. A job killed meanwhile is never started.
                    if j["killRequested"]:
                        if claim_unlaunched(name):
                            append(j["id"], "JobFinished", {"state": "killed", "exit_code": None},
                                   "scheduler", term)
                        continue
                    launch(j, term)
                    if j["state"] == "starting":
                        append(j["id"], "DriverLaunched", {"attempt": 1}, "scheduler", term)
                    continue
                try:
                    code = int(open(exit_file(name)).read().strip())
                except (FileNotFoundError, ValueError):
                    if j["killRequested"]:
                        # SIGTERM ends the wrapper before it records a code: a group that is
                        # gone has ended, killed.
                        try:
                            os.killpg(int(open(os.path.join(drivers, name, "pid")).read()), signal.SIGTERM)
                        except ProcessLookupError:
                            append(j["id"], "JobFinished", {"state": "killed", "exit_code": None},
                                   "scheduler", term)
                        except (OSError, ValueError):
                            pass
                    continue
                state = "killed" if j["killRequested"] else ("success" if code == 0 else "dead")
                append(j["id"], "JobFinished", {"state": state, "exit_code": code}, "scheduler", term)


host, port = args["--listen"].rsplit(":", 1)
server = ThreadingHTTPServer((host, int(port)), Api)
threading.Thread(target=lease_loop, daemon=True).start()
threading.Thread(target=scheduler_loop, daemon=True).start()
print(json.dumps({"event": "ready", "http": args["--listen"], "driver": args["--driver-listen"],
                  "raft": args["--raft-listen"], "node": me}), flush=True)
server.serve_forever()
