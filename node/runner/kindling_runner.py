"""Kindling interactive-session driver runner.

This program is the Python main of an interactive session's Spark driver: the node starts it
with `spark-submit`. It owns, for the lifetime of the driver:

* the SparkSession and one persistent pyspark namespace (Livy's pyspark shell semantics);
* the driver link, one of two routes (KINDLING_ROUTE):
  - `grpc` (the default): one bidirectional gRPC stream (kindling.driver.v1.DriverLink/Connect)
    to a core node, with Register / heartbeats / reconnection across the node endpoints;
  - `kafka`: the session's own topic pair; the runner produces Register / heartbeats /
    results (DriverMessage) to the replies topic and consumes NodeMessages from the requests
    topic from its own committed position. No node is dialled, so a failover needs no
    reconnect: a new leader sends Registered again, on which unacknowledged results are
    resent;
* statement execution: statements run one at a time, in arrival order, on the main thread
  (so that cancellation can also break blocking calls such as `time.sleep`), each id at most
  once; every result is kept until the node acknowledges it and is resent after a reconnect;
* cancellation (Spark job group + an asynchronous exception in the executing thread),
  code completion and shutdown.

Environment (set by the node): KINDLING_ENDPOINTS, KINDLING_JOB_ID, KINDLING_ATTEMPT,
KINDLING_SECRET, KINDLING_SESSION_KIND, KINDLING_RECONNECT_TIMEOUT_S (120),
KINDLING_APP_NAME, KINDLING_SQL_MAX_ROWS (1000), KINDLING_MAX_RESULT_BYTES (3000000 on
gRPC, 900000 on Kafka, under the brokers' default 1 MB record limit); in Kafka mode
KINDLING_ROUTE=kafka, KINDLING_KAFKA_BROKERS and KINDLING_ROUTE_TOPICS=<requests>,<replies>
(or KINDLING_ROUTE_PREFIX, naming them <prefix>.job.<id>.requests and .replies).
The wire contract is loaded at run time from `kindling/driver/v1/driver.proto` next to this
file (or in the working directory). Exit status: 0 after Shutdown, 2 on a bad launch
(environment or .proto), 3 when no node could be reached within the reconnect timeout,
4 when the node rejected this driver (REJECTING_CODES). In Kafka mode,
3 also when no node answered Register, or a reply could not be written, within the reconnect
timeout.
"""

import ast
import base64
import collections
import ctypes
import datetime
import decimal
import io
import json
import linecache
import math
import os
import queue
import re
import rlcompleter
import signal
import sys
import threading
import time
import traceback

import grpc

PROTO = "kindling/driver/v1/driver.proto"
RUNNER_FILE = __file__
EXIT_BAD_LAUNCH, EXIT_UNREACHABLE, EXIT_REJECTED = 2, 3, 4
# What the node answers when it will never take this driver (the node's ErrorCode table):
# an unknown session or a bad secret, a state that no longer wants this attempt, a request it
# cannot read.
REJECTING_CODES = (
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
)
# A node that accepts the TCP connection but never answers Register is treated as down.
REGISTER_TIMEOUT_S = 15.0
# How long Shutdown/give-up waits for a statement that ignores cancellation before exiting.
FORCE_EXIT_AFTER_S = 30.0
SQL_KEYWORDS = sorted(set("""
    ADD ALL ALTER ANALYZE AND ANTI ARRAY AS ASC BETWEEN BY CACHE CASE CAST COLUMN COLUMNS
    COMMENT CREATE CROSS CUBE CURRENT_DATE CURRENT_TIMESTAMP DATABASE DATABASES DESC DESCRIBE
    DISTINCT DROP ELSE END EXCEPT EXISTS EXPLAIN EXTERNAL FALSE FILTER FIRST FOLLOWING FOR
    FROM FULL FUNCTION FUNCTIONS GROUP GROUPING HAVING IF IN INNER INSERT INTERSECT INTERVAL
    INTO IS JOIN LAST LATERAL LEFT LIKE LIMIT LOCATION MAP MERGE NOT NULL NULLS OF ON OPTIONS
    OR ORDER OUTER OVER OVERWRITE PARTITION PARTITIONED PIVOT PRECEDING RANGE REFRESH REPLACE
    RIGHT RLIKE ROLLUP ROW ROWS SCHEMA SELECT SEMI SET SHOW STRUCT TABLE TABLES TABLESAMPLE
    TBLPROPERTIES TEMPORARY THEN TRUE TRUNCATE UNBOUNDED UNCACHE UNION UPDATE USE USING
    VALUES VIEW WHEN WHERE WINDOW WITH
""".split()))


def log(msg):
    # sys.__stderr__: user code may rebind sys.stderr; these lines belong in the session log.
    print("kindling-runner: " + msg, file=sys.__stderr__, flush=True)


class StatementCancelled(BaseException):
    """Raised inside the executing thread on cancel; BaseException so `except Exception`
    in user code does not swallow it."""


def _async_raise(thread_id, exc_type):
    """Schedule `exc_type` in another thread, or clear a pending one (exc_type=None)."""
    arg = ctypes.py_object(exc_type) if exc_type is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), arg)


# ---------------------------------------------------------------------------- configuration

class Config:
    def __init__(self, env):
        self.route = env.get("KINDLING_ROUTE") or "grpc"
        if self.route not in ("grpc", "kafka"):
            raise ValueError(f"KINDLING_ROUTE must be grpc or kafka, not {self.route!r}")
        self.endpoints = [e.strip().removeprefix("http://")
                          for e in env.get("KINDLING_ENDPOINTS", "").split(",") if e.strip()]
        if self.route == "grpc" and not self.endpoints:
            raise ValueError("KINDLING_ENDPOINTS is empty")
        self.job_id = int(env["KINDLING_JOB_ID"])
        self.brokers = self.requests_topic = self.replies_topic = None
        if self.route == "kafka":
            self.brokers = env["KINDLING_KAFKA_BROKERS"]
            topics = [t.strip() for t in env.get("KINDLING_ROUTE_TOPICS", "").split(",") if t.strip()]
            if not topics and env.get("KINDLING_ROUTE_PREFIX"):
                prefix = f"{env['KINDLING_ROUTE_PREFIX']}.job.{self.job_id}"
                topics = [prefix + ".requests", prefix + ".replies"]
            if len(topics) != 2:
                raise ValueError("KINDLING_ROUTE_TOPICS must be <requests>,<replies> "
                                 "(or set KINDLING_ROUTE_PREFIX)")
            self.requests_topic, self.replies_topic = topics
        self.attempt = int(env.get("KINDLING_ATTEMPT", "0"))
        # The gateways may serve TLS: verified against the CA the node hands over (base64 of
        # its PEM), or against the system's roots without one.
        self.gateway_tls = env.get("KINDLING_GATEWAY_TLS") == "1"
        ca = env.get("KINDLING_GATEWAY_CA_BASE64")
        self.gateway_ca = base64.b64decode(ca) if ca else None
        self.secret = env["KINDLING_SECRET"]
        self.kind = env.get("KINDLING_SESSION_KIND", "pyspark") or "pyspark"
        self.reconnect_timeout = float(env.get("KINDLING_RECONNECT_TIMEOUT_S", "120"))
        self.app_name = env.get("KINDLING_APP_NAME") or None
        self.sql_max_rows = int(env.get("KINDLING_SQL_MAX_ROWS", "1000"))
        # gRPC servers reject messages over 4 MiB by default, Kafka brokers records over 1 MB;
        # an oversized result would be rejected and resent forever.
        default_max = "3000000" if self.route == "grpc" else "900000"
        self.max_result_bytes = int(env.get("KINDLING_MAX_RESULT_BYTES", default_max))


def load_proto():
    here = os.path.dirname(os.path.abspath(RUNNER_FILE))
    # The node writes the .proto next to the runner; in cluster deploy mode it can instead
    # ship it with --files, which lands as a flat driver.proto in the working directory.
    for root, rel in ((here, PROTO), (os.getcwd(), PROTO), (here, "driver.proto"),
                      (os.getcwd(), "driver.proto")):
        if os.path.isfile(os.path.join(root, rel)):
            if root not in sys.path:
                sys.path.insert(0, root)
            return grpc.protos_and_services(rel)
    raise FileNotFoundError(f"{PROTO} not found next to {RUNNER_FILE} or in {os.getcwd()}")


# ------------------------------------------------------------------------- output shaping

def json_safe(v):
    """Convert Spark/Python values into what json.dumps accepts without loss of meaning."""
    from pyspark.sql import Row
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")  # not JSON numbers
    if isinstance(v, (decimal.Decimal, datetime.timedelta)):
        return str(v)
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, Row) and hasattr(v, "__fields__"):
        return {k: json_safe(x) for k, x in zip(v.__fields__, v)}
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [json_safe(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        try:
            return json_safe(v.item())
        except Exception:
            pass
    return str(v)


def _table_cell(v):
    """Livy's %table cell typing (exact types, like fake_shell.py)."""
    t = type(v)
    if v is None:
        return "NULL_TYPE", None
    if t in (list, tuple):
        return "ARRAY_TYPE", [_table_cell(x)[1] for x in v]
    if t is dict:
        return "MAP_TYPE", {str(k): _table_cell(x)[1] for k, x in v.items()}
    simple = {bool: "BOOLEAN_TYPE", int: "INT_TYPE", float: "DOUBLE_TYPE", str: "STRING_TYPE"}
    if t in simple:
        return simple[t], v
    dated = {datetime.datetime: "TIMESTAMP_TYPE", datetime.date: "DATE_TYPE",
             decimal.Decimal: "DECIMAL_TYPE"}
    return dated.get(t, "STRING_TYPE"), str(v)


def livy_table(value):
    if not isinstance(value, (list, tuple)):
        value = [value]
    headers, data = {}, []
    for row in value:
        if hasattr(row, "asDict"):
            row = row.asDict()
        if not isinstance(row, (list, tuple, dict)):
            row = [row]
        cells = sorted(row.items()) if isinstance(row, dict) else enumerate(row)
        cols = []
        for name, col in cells:
            col_type, col = _table_cell(col)
            header = headers.setdefault(name, {"name": str(name), "type": col_type})
            if col_type != "NULL_TYPE" and header["type"] != col_type:
                if header["type"] != "NULL_TYPE":
                    raise TypeError("table rows have different types")
                header["type"] = col_type
            cols.append(col)
        data.append(cols)
    return {"headers": [h for _, h in sorted(headers.items())], "data": data}


def user_traceback(exc, with_frames=True):
    """Format like Livy: drop the runner's own frames that lead into user code."""
    if not with_frames:
        return traceback.format_exception_only(type(exc), exc)
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == RUNNER_FILE:
        tb = tb.tb_next
    return traceback.format_exception(type(exc), exc, tb)


class _Stdout(io.StringIO):
    def write(self, s):
        return super().write(s.decode("utf-8", "replace") if isinstance(s, bytes) else s)


class Statement:
    def __init__(self, sid, kind, code):
        self.id, self.kind, self.code = sid, kind, code
        self.count, self.started = 0, 0.0
        self.cancelled = False
        self.in_user = False  # True while the main thread runs this statement's work
        self.done = False


# ---------------------------------------------------------------------------------- runner

class Runner:
    """Statement queue, execution, results and completion. `serve` runs on the main thread;
    everything else is called from the link thread."""

    def __init__(self, spark, cfg, pb):
        self.spark, self.sc, self.cfg, self.pb = spark, spark.sparkContext, cfg, pb
        self.ns = {"__name__": "__main__", "__builtins__": __builtins__,
                   "spark": spark, "sc": self.sc, "sqlContext": spark}
        # Livy's pyspark shell imports; best effort, several of these moved across Spark versions.
        for stmt in ("from pyspark.conf import SparkConf", "from pyspark.context import SparkContext",
                     "from pyspark.sql import SparkSession, SQLContext, Row",
                     "from pyspark.streaming import StreamingContext",
                     "import pyspark.cloudpickle as cloudpickle"):
            try:
                exec(stmt, self.ns)
            except Exception:
                pass
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.queue = collections.deque()
        self.seen = set()            # every statement id ever received (at-most-once)
        self.results = {}            # statement id -> StatementResult, until ResultAck
        self.current = None
        self.count = 0
        self.conn = None             # the registered link connection, if any
        self.exit_code = None
        self.main_tid = threading.main_thread().ident
        self.stdout = sys.stdout
        sys.stdin = io.StringIO()    # input() must fail instead of blocking the session
        # Signals wake the main thread out of blocking calls (time.sleep, socket reads) where a
        # pending asynchronous exception alone would wait until the call returns.
        signal.signal(signal.SIGUSR1, self._on_signal)

    # -- link-facing API (link thread) --

    def send(self, msg):
        with self.lock:
            if self.conn is not None:
                self.conn.put(msg)

    def attach(self, conn):
        with self.lock:
            self.conn = conn
            if self.current is not None:
                conn.put(self.pb.DriverMessage(
                    started=self.pb.StatementStarted(statement_id=self.current.id)))
            for res in self.results.values():
                conn.put(self.pb.DriverMessage(result=res))
            return len(self.results)

    def detach(self, conn):
        with self.lock:
            if self.conn is conn:
                self.conn = None

    def known_statements(self):
        with self.lock:
            ids = [st.id for st in self.queue] + list(self.results)
            if self.current is not None:
                ids.append(self.current.id)
            return sorted(set(ids))

    def submit(self, run):
        with self.lock:
            if run.statement_id in self.seen:
                res = self.results.get(run.statement_id)
                if res is not None and self.conn is not None:
                    self.conn.put(self.pb.DriverMessage(result=res))
                return
            self.seen.add(run.statement_id)
            if self.exit_code is None:
                self.queue.append(Statement(run.statement_id, run.kind or self.cfg.kind, run.code))
                self.cond.notify()

    def ack(self, sid):
        with self.lock:
            self.results.pop(sid, None)

    def cancel(self, sid):
        with self.lock:
            for st in self.queue:
                if st.id == sid:
                    self.queue.remove(st)
                    st.cancelled, st.count = True, self.count
                    self._store(st, self._cancelled_output(st))
                    log(f"statement {sid} cancelled before it started")
                    return
            st = self.current
            if st is None or st.id != sid or st.cancelled or not st.in_user:
                return  # unknown, (about to be) finished or already being cancelled
            st.cancelled = True
            _async_raise(self.main_tid, StatementCancelled)
        log(f"cancelling statement {sid}")
        try:
            self.sc.cancelJobGroup(self._group(st))
        except Exception as e:
            log(f"cancelJobGroup failed: {e}")
        threading.Thread(target=self._keep_interrupting, args=(st,), daemon=True).start()

    def _keep_interrupting(self, st):
        # The first asynchronous exception may be pending behind a blocking call, or swallowed
        # by user code; repeat it with a signal until the statement lets go.
        for delay in [1.0] + [2.0] * 30:
            time.sleep(delay)
            with self.lock:
                if self.current is not st or not st.in_user:
                    return
                _async_raise(self.main_tid, StatementCancelled)
            signal.pthread_kill(self.main_tid, signal.SIGUSR1)
        log(f"statement {st.id} does not respond to cancellation")

    def _on_signal(self, signum, frame):
        st = self.current
        if st is not None and st.cancelled and st.in_user:
            raise StatementCancelled()

    def request_exit(self, code):
        with self.lock:
            if self.exit_code is not None:
                return
            self.exit_code = code
            self.queue.clear()
            self.cond.notify_all()
            running = self.current
        if running is not None:
            self.cancel(running.id)
        timer = threading.Timer(FORCE_EXIT_AFTER_S, self._force_exit, (code,))
        timer.daemon = True
        timer.start()

    def _force_exit(self, code):
        log(f"statement did not stop in {FORCE_EXIT_AFTER_S:.0f}s; exiting anyway")
        stop_spark(self.spark)
        os._exit(code)

    # -- execution (main thread) --

    def serve(self):
        """Run statements until exit is requested; returns the exit status."""
        while True:
            try:
                while True:
                    st = self._next()
                    if st is None:
                        return self.exit_code
                    self._run(st)
            except StatementCancelled:
                # The cancellation landed in the runner's own code around the statement.
                st = self.current
                if st is not None and not st.done:
                    st.cancelled = True
                    self._leave(st)
                    self._finish(st, self._cancelled_output(st))

    def _next(self):
        with self.cond:
            while not self.queue and self.exit_code is None:
                self.cond.wait()
            if self.exit_code is not None:
                return None
            st = self.queue.popleft()
            st.count, self.count = self.count, self.count + 1
            st.in_user, st.started = True, time.monotonic()
            self.current = st
            return st

    def _group(self, st):
        return f"kindling-statement-{st.id}"

    def _run(self, st):
        self.send(self.pb.DriverMessage(started=self.pb.StatementStarted(statement_id=st.id)))
        out = _Stdout()
        sys.stdout = out
        try:
            # Pinned-thread mode: the group is a property of this thread's JVM peer thread.
            self.sc.setJobGroup(self._group(st), f"Kindling statement {st.id}", True)
            if st.kind == "pyspark":
                data = self._run_pyspark(st, out)
            elif st.kind == "sql":
                data = self._run_sql(st.code)
            else:
                raise ValueError(f"unsupported statement kind {st.kind!r}")
            output = self._ok(st, data)
        except BaseException as e:  # arbitrary user code: SystemExit, KeyboardInterrupt too
            output = self._error(st, e)
        self._leave(st)
        if st.cancelled:
            output = self._cancelled_output(st)
        self._finish(st, output)

    def _leave(self, st):
        with self.lock:
            st.in_user = False
            _async_raise(self.main_tid, None)  # drop a cancellation that arrived too late
        sys.stdout = self.stdout

    def _finish(self, st, output):
        with self.lock:
            self._store(st, output)
            self.current = None
        state = "cancelled" if st.cancelled else output["status"]
        log(f"statement {st.id} ({st.kind}) finished: {state} in {time.monotonic() - st.started:.2f}s")

    def _store(self, st, output):  # caller holds self.lock
        st.done = True
        res = self.pb.StatementResult(statement_id=st.id, cancelled=st.cancelled,
                                      output=self.pb.StatementOutput(**output))
        self.results[st.id] = res
        if self.conn is not None:
            self.conn.put(self.pb.DriverMessage(result=res))

    def _ok(self, st, data):
        text = json.dumps(json_safe(data), ensure_ascii=False, allow_nan=False)
        if len(text.encode()) > self.cfg.max_result_bytes:
            text = self._shrink(data)
        return {"status": "ok", "execution_count": st.count, "data_json": text}

    def _shrink(self, data):
        limit = self.cfg.max_result_bytes
        plain = data.get("text/plain")
        if isinstance(plain, str) and len(data) == 1:
            cut = plain.encode()[: limit // 2].decode("utf-8", "ignore")
            return json.dumps({"text/plain": cut + "\n...[output truncated]"}, ensure_ascii=False)
        table = data.get("application/json")
        if isinstance(table, dict) and isinstance(table.get("data"), list):
            rows = json_safe(table["data"])
            while rows:
                rows = rows[: len(rows) // 2]
                text = json.dumps({"application/json": {**json_safe(table), "data": rows}},
                                  ensure_ascii=False, allow_nan=False)
                if len(text.encode()) <= limit:
                    log(f"sql result truncated to {len(rows)} rows to fit {limit} bytes")
                    return text
        raise ValueError(f"statement output exceeds {limit} bytes")

    def _error(self, st, e):
        # A SyntaxError's location is in the exception itself; its frames are the parser's.
        frames = st.kind == "pyspark" and not isinstance(e, SyntaxError)
        # Clipped so that no error (say, a message embedding a huge value) outgrows a message.
        budget = self.cfg.max_result_bytes // 4
        tb = [line[:budget // 100] for line in user_traceback(e, frames)[-100:]]
        return {"status": "error", "execution_count": st.count, "ename": type(e).__name__,
                "evalue": str(e)[:budget], "traceback": tb}

    def _cancelled_output(self, st):
        return {"status": "error", "execution_count": st.count, "ename": "Cancelled",
                "evalue": f"statement {st.id} was cancelled", "traceback": []}

    def _run_pyspark(self, st, out):
        filename = f"<statement-{st.id}>"
        # Source lines in tracebacks, also for functions defined here and called later.
        linecache.cache[filename] = (len(st.code), None, st.code.splitlines(True), filename)
        result = None
        for chunk in self._chunks(st.code, filename):
            result = self._magic(chunk, filename) if isinstance(chunk, str) \
                else self._exec(chunk, filename, out)
        text = out.getvalue()
        text = text[:-1] if text.endswith("\n") else text
        data = dict(result or {})
        if text or not data:
            data["text/plain"] = text
        return data

    def _chunks(self, code, filename):
        """The code as one AST, or (Livy) as AST chunks split around `%magic` lines."""
        try:
            return [ast.parse(code, filename)]
        except SyntaxError:
            lines = code.rstrip().split("\n")
            if not any(line.startswith("%") for line in lines):
                raise
        chunks, normal = [], []
        for line in lines + ["%"]:  # a final pseudo-magic flushes the last normal chunk
            if not line.startswith("%"):
                normal.append(line)
                continue
            if any(n.strip() for n in normal):
                # Blank lines stand in for the other chunks: line numbers stay statement-wide.
                chunks.append(ast.parse("\n".join(normal), filename))
            chunks.append(line)
            normal = [""] * (len(normal) + 1)
        return chunks[:-1]

    def _exec(self, tree, filename, out):
        body, last = tree.body, None
        if body and isinstance(body[-1], ast.Expr):
            body, last = body[:-1], body[-1]
        if body:
            exec(compile(ast.Module(body, type_ignores=[]), filename, "exec"), self.ns)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), filename, "eval"), self.ns)
            if value is not None:  # like sys.displayhook
                self.ns["_"] = value
                out.write(repr(value) + "\n")
        return None

    def _magic(self, line, filename):
        name, _, expr = line[1:].partition(" ")
        if name not in ("json", "table"):
            raise UnknownMagic(f"unknown magic command '{name}'" if name
                               else "magic command not specified")
        if not expr.strip():
            raise UnknownMagic(f"%{name} needs an expression")
        value = eval(compile(expr.strip(), filename, "eval"), self.ns)
        if name == "json":
            return {"application/json": value}
        from pyspark.sql import DataFrame
        if isinstance(value, DataFrame):
            value = value.take(self.cfg.sql_max_rows)
        return {"application/vnd.livy.table.v1+json": livy_table(value)}

    def _run_sql(self, code):
        code = code.strip()
        if code.endswith(";"):
            code = code[:-1]
        df = self.spark.sql(code)
        rows = df.take(self.cfg.sql_max_rows)
        return {"application/json": {"schema": df.schema.jsonValue(),
                                     "data": [[json_safe(v) for v in row] for row in rows]}}

    # -- completion (link thread, concurrent with a running statement) --

    def complete(self, kind, code, cursor):
        kind = kind or self.cfg.kind
        cursor = max(0, min(cursor, len(code)))
        prefix = re.search(r"[\w.]*$", code[:cursor]).group(0)
        if not prefix:
            return []
        if kind == "sql":
            return self._complete_sql(prefix)
        # A snapshot: the main thread may be adding names while a statement runs.
        completer = rlcompleter.Completer(dict(self.ns))
        found, state = set(), 0
        while state < 1000:
            cand = completer.complete(prefix, state)
            if cand is None:
                break
            found.add(cand)
            state += 1
        return sorted(found)

    def _complete_sql(self, prefix):
        db, _, word = prefix.rpartition(".")
        found = set()
        if not db:
            found.update(k.lower() if prefix.islower() else k
                         for k in SQL_KEYWORDS if k.startswith(prefix.upper()))
        try:
            tables = self.spark.catalog.listTables(db) if db else self.spark.catalog.listTables()
        except Exception:
            tables = []
        for t in tables:
            if t.name.lower().startswith(word.lower()):
                found.add(f"{db}.{t.name}" if db else t.name)
        return sorted(found)


class UnknownMagic(Exception):
    pass


def stop_spark(spark, _once=threading.Lock()):
    if _once.acquire(blocking=False):
        try:
            spark.stop()
            log("spark stopped")
        except Exception as e:
            log(f"spark.stop failed: {e}")


# ------------------------------------------------------------------------------------ link

class _Terminal(Exception):
    def __init__(self, code):
        self.code = code


class Connection:
    """One Connect stream: an outgoing queue drained by grpc's request iterator."""
    _WAKE, _END = object(), object()

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.q = queue.Queue()
        self.heartbeat_s = None
        self.registered = False
        self.call = self.channel = None

    def put(self, msg):
        self.q.put(msg)

    def close(self):
        self.q.put(self._END)
        if self.call is not None:
            self.call.cancel()
        if self.channel is not None:
            self.channel.close()


def _wait_ready(channel, timeout):
    """Connect, failing fast on a refused connection (channel_ready_future would keep
    retrying until its timeout)."""
    outcome, done = [], threading.Event()
    final = (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE,
             grpc.ChannelConnectivity.SHUTDOWN)

    def watch(state):
        if state in final and not done.is_set():
            outcome.append(state)
            done.set()
    channel.subscribe(watch, try_to_connect=True)
    done.wait(timeout)
    channel.unsubscribe(watch)
    return outcome[:1] == [grpc.ChannelConnectivity.READY]


class Link:
    """Keeps one registered stream to some core node; runs on its own thread."""

    def __init__(self, cfg, pb, services, runner):
        self.cfg, self.pb, self.services, self.runner = cfg, pb, services, runner
        self.lock = threading.Lock()
        self.conn = None
        self.closing = self.quiet = False
        self.seq = 0
        self.hint = None  # the leader's endpoint, as a follower that refused us named it
        self.thread = threading.Thread(target=self._run, name="kindling-link", daemon=True)

    def start(self):
        self.thread.start()

    def close(self):
        with self.lock:
            self.closing = True
            conn = self.conn
        if conn is not None:
            conn.close()

    def _run(self):
        code = EXIT_UNREACHABLE
        try:
            self._loop()
            return
        except _Terminal as t:
            code = t.code
        except Exception as e:
            log(f"link failed: {type(e).__name__}: {e}")
        self.runner.request_exit(code)

    def _loop(self):
        lost_at, backoff, i, failures = time.monotonic(), 0.2, 0, 0
        n = len(self.cfg.endpoints)
        while True:
            hinted, self.hint = self.hint, None
            if hinted:
                endpoint = hinted
            else:
                endpoint = self.cfg.endpoints[i % n]
                i += 1
            # The session log is for users: report each endpoint once, then every 10th failure.
            self.quiet = failures >= n and failures % 10 != 0
            remaining = self.cfg.reconnect_timeout - (time.monotonic() - lost_at)
            registered = self._session(endpoint, max(remaining, 0.5))
            if self.closing or self.runner.exit_code is not None:
                return
            failures = 0 if registered else failures + 1
            if registered:
                lost_at, backoff = time.monotonic(), 0.2
            remaining = self.cfg.reconnect_timeout - (time.monotonic() - lost_at)
            if remaining <= 0:
                log(f"no core node reachable for {self.cfg.reconnect_timeout:.0f}s; giving up")
                raise _Terminal(EXIT_UNREACHABLE)
            if self.hint:
                continue  # a follower named the leader: go there at once
            time.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, 2.0)

    def _session(self, endpoint, connect_timeout):
        """One connection attempt and its stream; returns whether it had registered."""
        conn = Connection(endpoint)
        # Keepalive detects a node host that vanished without closing the TCP connection.
        options = [("grpc.keepalive_time_ms", 20000), ("grpc.keepalive_timeout_ms", 10000),
                   ("grpc.http2.max_pings_without_data", 0)]
        if self.cfg.gateway_tls:
            creds = grpc.ssl_channel_credentials(root_certificates=self.cfg.gateway_ca)
            conn.channel = grpc.secure_channel(endpoint, creds, options=options)
        else:
            conn.channel = grpc.insecure_channel(endpoint, options=options)
        with self.lock:
            if self.closing:
                return False
            self.conn = conn
        if not _wait_ready(conn.channel, min(connect_timeout, 5.0)):
            if not self.quiet:
                log(f"cannot connect to {endpoint}")
            conn.close()
            return False
        conn.put(self.pb.DriverMessage(register=self.pb.Register(
            job_id=self.cfg.job_id, attempt=self.cfg.attempt, secret=self.cfg.secret,
            app_id=self.runner.sc.applicationId or "", spark_ui_url=self.runner.sc.uiWebUrl or "",
            known_statements=self.runner.known_statements())))
        stub = self.services.DriverLinkStub(conn.channel)
        conn.call = stub.Connect(self._outgoing(conn))
        watchdog = threading.Timer(REGISTER_TIMEOUT_S,
                                   lambda: conn.registered or conn.call.cancel())
        watchdog.daemon = True
        watchdog.start()
        try:
            for msg in conn.call:
                self._dispatch(conn, msg)
            log(f"stream to {endpoint} closed by the node")
        except grpc.RpcError as e:
            if self.closing or self.runner.exit_code is not None:
                pass
            elif e.code() == grpc.StatusCode.UNAVAILABLE and "leader-endpoint=" in (e.details() or ""):
                hint = e.details().split("leader-endpoint=", 1)[1].split()[0].strip(";,")
                if hint != endpoint:
                    self.hint = hint
                if not self.quiet:
                    log(f"node {endpoint} does not lead; trying the leader at {hint}")
            elif e.code() in REJECTING_CODES:
                log(f"node {endpoint} rejected this driver: {e.code().name}: {e.details()}")
                raise _Terminal(EXIT_REJECTED)
            elif conn.registered:
                log(f"link to {endpoint} lost ({e.code().name}); reconnecting")
            elif not self.quiet:
                log(f"cannot connect to {endpoint}: {e.code().name}")
        finally:
            watchdog.cancel()
            self.runner.detach(conn)
            conn.close()
        return conn.registered

    def _outgoing(self, conn):
        next_beat = None
        while True:
            timeout = None
            if conn.heartbeat_s is not None:
                now = time.monotonic()
                next_beat = next_beat or now + conn.heartbeat_s
                if now >= next_beat:
                    next_beat = now + conn.heartbeat_s
                    self.seq += 1
                    yield self.pb.DriverMessage(heartbeat=self.pb.Heartbeat(seq=self.seq))
                    continue
                timeout = next_beat - now
            try:
                item = conn.q.get(timeout=timeout)
            except queue.Empty:
                continue
            if item is Connection._END:
                return
            if item is not Connection._WAKE:
                yield item

    def _dispatch(self, conn, msg):
        if msg.WhichOneof("body") == "registered":
            interval = msg.registered.heartbeat_interval_ms or 5000
            conn.heartbeat_s, conn.registered = interval / 1000.0, True
            resent = self.runner.attach(conn)
            conn.put(Connection._WAKE)
            log(f"registered with {conn.endpoint} (heartbeat {interval} ms"
                + (f", resent {resent} unacknowledged results)" if resent else ")"))
        else:
            handle_request(self.runner, self.pb, conn, msg)


def handle_request(runner, pb, conn, msg):
    """A node's request other than Registered, whichever route carried it; answers go to
    `conn`."""
    body = msg.WhichOneof("body")
    if body == "run":
        runner.submit(msg.run)
    elif body == "cancel":
        runner.cancel(msg.cancel.statement_id)
    elif body == "ack":
        runner.ack(msg.ack.statement_id)
    elif body == "complete":
        req = msg.complete
        try:
            candidates = runner.complete(req.kind, req.code, req.cursor)
        except Exception as e:
            log(f"completion failed: {type(e).__name__}: {e}")
            candidates = []
        conn.put(pb.DriverMessage(completion=pb.CompletionResult(
            request_id=req.request_id, candidates=candidates)))
    elif body == "shutdown":
        log(f"shutdown requested by the node: {msg.shutdown.reason or 'no reason given'}")
        runner.request_exit(0)


class KafkaLink:
    """The session's Kafka route; runs on its own thread. It is also the runner's connection
    (`put`) from the first Registered on: the route stays, whichever node leads."""

    POLL_S = 0.1

    def __init__(self, cfg, pb, runner):
        self.cfg, self.pb, self.runner = cfg, pb, runner
        self.closing = False
        self.seq = 0
        self.key = str(cfg.attempt).encode()
        self.heartbeat_s = None
        self.producer = None
        self.undelivered = None  # the first write that failed for good
        self.thread = threading.Thread(target=self._run, name="kindling-kafka-link", daemon=True)

    def start(self):
        from confluent_kafka import Producer
        # Durable before the node can see it, in order, without duplicates on retry. A record
        # that cannot be written within the reconnect timeout ends the driver (exit 3), as an
        # unreachable node does on gRPC.
        self.producer = Producer({
            "bootstrap.servers": self.cfg.brokers,
            "client.id": f"kindling-driver-{self.cfg.job_id}-{self.cfg.attempt}",
            "enable.idempotence": True, "acks": "all", "linger.ms": 0,
            "message.timeout.ms": int(self.cfg.reconnect_timeout * 1000)})
        self.thread.start()

    def close(self):
        self.closing = True
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(5.0)
        if self.producer is not None:
            self.producer.flush(5.0)

    def put(self, msg):
        """Writes one DriverMessage to the replies topic (thread-safe)."""
        value = msg.SerializeToString()
        while True:
            try:
                self.producer.produce(self.cfg.replies_topic, value=value, key=self.key,
                                      partition=0, on_delivery=self._delivered)
                return
            except BufferError:  # librdkafka's queue is full: let deliveries drain it
                self.producer.poll(0.1)

    def _delivered(self, err, _msg):
        # May run inside `put`, under the runner's lock: only note it; the link thread acts.
        if err is not None and self.undelivered is None:
            self.undelivered = err

    def _run(self):
        code = EXIT_UNREACHABLE
        try:
            self._loop()
            return
        except _Terminal as t:
            code = t.code
        except Exception as e:
            log(f"kafka link failed: {type(e).__name__}: {e}")
        self.runner.request_exit(code)

    def _loop(self):
        from confluent_kafka import Consumer, TopicPartition, OFFSET_STORED
        consumer = Consumer({
            "bootstrap.servers": self.cfg.brokers,
            "client.id": f"kindling-driver-{self.cfg.job_id}-{self.cfg.attempt}",
            # This driver's own position in the requests: assigned, never a group member.
            "group.id": f"{self.cfg.requests_topic}.attempt-{self.cfg.attempt}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 50, "allow.auto.create.topics": False})
        try:
            consumer.assign([TopicPartition(self.cfg.requests_topic, 0, OFFSET_STORED)])
            self.put(self.pb.DriverMessage(register=self.pb.Register(
                job_id=self.cfg.job_id, attempt=self.cfg.attempt, secret=self.cfg.secret,
                app_id=self.runner.sc.applicationId or "",
                spark_ui_url=self.runner.sc.uiWebUrl or "",
                known_statements=self.runner.known_statements())))
            started, next_beat = time.monotonic(), None
            while not self.closing:
                m = consumer.poll(self.POLL_S)
                self.producer.poll(0)
                if self.undelivered is not None:
                    log(f"cannot write to {self.cfg.replies_topic} within "
                        f"{self.cfg.reconnect_timeout:.0f}s ({self.undelivered}); giving up")
                    raise _Terminal(EXIT_UNREACHABLE)
                now = time.monotonic()
                if self.heartbeat_s is None:
                    if now - started > self.cfg.reconnect_timeout:
                        log(f"no node answered the registration within "
                            f"{self.cfg.reconnect_timeout:.0f}s; giving up")
                        raise _Terminal(EXIT_UNREACHABLE)
                elif next_beat is None or now >= next_beat:
                    next_beat = now + self.heartbeat_s
                    self.seq += 1
                    self.put(self.pb.DriverMessage(heartbeat=self.pb.Heartbeat(seq=self.seq)))
                if m is None:
                    continue
                if m.error():
                    log(f"reading {self.cfg.requests_topic}: {m.error()}")
                    continue
                if m.key() == self.key:  # other attempts' requests are not this driver's
                    msg = self.pb.NodeMessage()
                    msg.ParseFromString(m.value() or b"")
                    self._dispatch(msg)
                consumer.commit(message=m, asynchronous=True)
        finally:
            consumer.close()

    def _dispatch(self, msg):
        if msg.WhichOneof("body") == "registered":
            interval = msg.registered.heartbeat_interval_ms or 5000
            first = self.heartbeat_s is None
            self.heartbeat_s = interval / 1000.0
            resent = self.runner.attach(self)
            log(("registered through " if first else "a new leader took over ")
                + f"{self.cfg.replies_topic} (heartbeat {interval} ms"
                + (f", resent {resent} unacknowledged results)" if resent else ")"))
        else:
            handle_request(self.runner, self.pb, self, msg)


# ------------------------------------------------------------------------------------ main

def main():
    try:
        cfg = Config(os.environ)
        pb, services = load_proto()
        if cfg.route == "kafka":
            import confluent_kafka  # noqa: F401  (installed by ops/dev/install-spark)
    except Exception as e:  # bad environment, missing or broken .proto
        detail = f"missing {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        log(f"bad launch: {detail}")
        return EXIT_BAD_LAUNCH
    from pyspark.sql import SparkSession
    builder = SparkSession.builder
    if cfg.app_name:
        builder = builder.appName(cfg.app_name)
    spark = builder.getOrCreate()
    route = (f"endpoints {','.join(cfg.endpoints)}" if cfg.route == "grpc" else
             f"kafka route {cfg.requests_topic},{cfg.replies_topic} on {cfg.brokers}")
    log(f"spark application {spark.sparkContext.applicationId} ready; "
        f"job {cfg.job_id} attempt {cfg.attempt}, {route}")
    runner = Runner(spark, cfg, pb)
    link = Link(cfg, pb, services, runner) if cfg.route == "grpc" else KafkaLink(cfg, pb, runner)
    link.start()
    code = 1
    try:
        code = runner.serve()
    finally:
        stop_spark(spark)
        link.close()
        log(f"exiting with status {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
