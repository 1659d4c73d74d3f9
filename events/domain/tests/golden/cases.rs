//! The golden cases: one envelope per `Event` variant (several for some), each stored once
//! per envelope format. A format's file holds the case as that format wrote it: format 1
//! without an actor; format 2 with the actor of a client's request.

use kindling_events::event::FORMAT_VERSION;
use kindling_events::spec::DurationSpec;
use kindling_events::{
    Aggregate, Attempt, BatchSpec, Capacity, ClusterConfig, ClusterKind, Credentials, Envelope,
    Event, IssuedToken, JobId, JobKind, JobSpec, LogPosition, NodeId, Origin, Outcome, SessionKind,
    SessionSpec, SparkResources, StatementId, StatementOutput, Term,
};
use std::collections::BTreeMap;

/// The file name prefix of each variant. Exhaustive on purpose: a new `Event` variant does not
/// compile until it is named here, and `every_variant_has_a_golden_file` then fails until a
/// golden case for it exists.
pub fn variant_file_prefix(event: &Event) -> &'static str {
    match event {
        Event::JobSubmitted { .. } => "job_submitted",
        Event::JobScheduled { .. } => "job_scheduled",
        Event::DriverLaunched { .. } => "driver_launched",
        Event::AppIdentified { .. } => "app_identified",
        Event::SessionReady { .. } => "session_ready",
        Event::SessionRecovering { .. } => "session_recovering",
        Event::KillRequested { .. } => "kill_requested",
        Event::JobDeleted => "job_deleted",
        Event::JobFinished { .. } => "job_finished",
        Event::StatementSubmitted { .. } => "statement_submitted",
        Event::StatementStarted { .. } => "statement_started",
        Event::StatementCompleted { .. } => "statement_completed",
        Event::StatementCancelRequested { .. } => "statement_cancel_requested",
        Event::StatementCancelled { .. } => "statement_cancelled",
        Event::SchedulerMarker { .. } => "scheduler_marker",
        Event::SessionActivity => "session_activity",
        Event::ClusterRegistered { .. } => "cluster_registered",
        Event::ClusterUpdated { .. } => "cluster_updated",
        Event::ClusterRemoved { .. } => "cluster_removed",
        Event::JobQueued { .. } => "job_queued",
        Event::TokenIssued { .. } => "token_issued",
        Event::TokenRevoked { .. } => "token_revoked",
        Event::AttemptFailed { .. } => "attempt_failed",
        Event::ClusterQueuesSet { .. } => "cluster_queues_set",
    }
}

pub struct Case {
    /// Distinguishes several cases of one variant (`""` when there is one).
    suffix: &'static str,
    /// The envelope as the current format writes it.
    pub envelope: Envelope,
}

impl Case {
    /// The envelope as `format` stored it.
    pub fn in_format(&self, format: u16) -> Envelope {
        let mut e = self.envelope.clone();
        e.format = format;
        if format < 2 {
            e.actor = None;
        }
        e
    }

    pub fn file_name(&self) -> String {
        format!(
            "{}{}.bin",
            variant_file_prefix(&self.envelope.event),
            self.suffix
        )
    }
}

const JOB: Aggregate = Aggregate::Job(JobId(42));
/// 2024-11-21T10:00:00Z: informational only, but it has to round-trip like any field.
const T0: i64 = 1_732_183_200_000;

fn envelope(
    position: u64,
    aggregate: Aggregate,
    version: u64,
    origin: Origin,
    event: Event,
) -> Envelope {
    // Clients' requests name who made them: a user on jobs, an operator on the registry.
    let actor = (origin.source() == "api").then(|| match aggregate {
        Aggregate::Registry => "ops".to_string(),
        _ => "ann".to_string(),
    });
    Envelope {
        format: FORMAT_VERSION,
        position: LogPosition(position),
        aggregate,
        version,
        origin,
        node: NodeId(position % 3 + 1),
        actor,
        at_ms: T0 + position as i64 * 1_250,
        event,
    }
}

fn scheduler(term: u64) -> Origin {
    Origin::Scheduler { term: Term(term) }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn conf(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn batch_spec() -> JobSpec {
    JobSpec {
        kind: JobKind::Batch(BatchSpec {
            file: "s3a://analytics/jobs/daily_rollup.py".into(),
            class_name: None,
            args: strings(&[
                "--date",
                "2024-11-20",
                "--output",
                "s3a://analytics/rollups/",
            ]),
        }),
        name: Some("daily-rollup".into()),
        owner: Some("ann".into()),
        proxy_user: Some("etl".into()),
        resources: SparkResources {
            driver_memory: Some("2g".into()),
            driver_cores: Some(1),
            executor_memory: Some("4g".into()),
            executor_cores: Some(2),
            num_executors: Some(8),
            queue: Some("batch".into()),
            jars: strings(&["s3a://analytics/lib/delta-core_2.12-2.4.0.jar"]),
            py_files: strings(&["s3a://analytics/lib/rollup_utils.zip"]),
            files: strings(&["s3a://analytics/conf/log4j2.properties"]),
            archives: strings(&["s3a://analytics/envs/py311.tar.gz#environment"]),
            conf: conf(&[
                ("spark.dynamicAllocation.enabled", "false"),
                ("spark.sql.shuffle.partitions", "400"),
            ]),
        },
    }
}

/// A jar batch with nothing optional set: `None`s and empty collections must round-trip too.
fn minimal_jar_batch_spec() -> JobSpec {
    JobSpec {
        kind: JobKind::Batch(BatchSpec {
            file: "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.1.jar".into(),
            class_name: Some("org.apache.spark.examples.SparkPi".into()),
            args: strings(&["1000"]),
        }),
        name: None,
        owner: None,
        proxy_user: None,
        resources: SparkResources::default(),
    }
}

fn session_spec() -> JobSpec {
    JobSpec {
        kind: JobKind::Session(SessionSpec {
            kind: SessionKind::Pyspark,
            heartbeat_timeout_secs: 60,
            ttl: Some(DurationSpec {
                text: "2h".into(),
                millis: 7_200_000,
            }),
            idle_timeout: Some(DurationSpec {
                text: "15m".into(),
                millis: 900_000,
            }),
        }),
        name: Some("notebook-ann".into()),
        owner: Some("ann".into()),
        proxy_user: None,
        resources: SparkResources {
            driver_memory: Some("1g".into()),
            executor_memory: Some("2g".into()),
            num_executors: Some(2),
            conf: conf(&[
                ("spark.kubernetes.namespace", "spark-jobs"),
                ("spark.sql.session.timeZone", "UTC"),
            ]),
            ..SparkResources::default()
        },
    }
}

fn finished(position: u64, outcome: Outcome, exit_code: Option<i32>) -> Envelope {
    envelope(
        position,
        JOB,
        position,
        scheduler(3),
        Event::JobFinished {
            attempt: Attempt(1),
            outcome,
            exit_code,
        },
    )
}

/// Every golden case. Positions and versions follow one plausible history of job 42, so the
/// values look like what a real log holds.
pub fn cases() -> Vec<Case> {
    let case = |suffix, envelope| Case { suffix, envelope };
    vec![
        case(
            "_batch",
            envelope(1, JOB, 1, Origin::Api, Event::JobSubmitted { spec: batch_spec() }),
        ),
        case(
            "_batch_minimal",
            envelope(
                2,
                Aggregate::Job(JobId(43)),
                1,
                Origin::Api,
                Event::JobSubmitted {
                    spec: minimal_jar_batch_spec(),
                },
            ),
        ),
        case(
            "_session",
            envelope(
                3,
                Aggregate::Job(JobId(44)),
                1,
                Origin::Api,
                Event::JobSubmitted {
                    spec: session_spec(),
                },
            ),
        ),
        case(
            "",
            envelope(
                4,
                JOB,
                2,
                scheduler(3),
                Event::JobScheduled {
                    attempt: Attempt(1),
                    driver_name: "kindling-42-1".into(),
                    secret_digest:
                        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                },
            ),
        ),
        case(
            "",
            envelope(
                5,
                JOB,
                3,
                scheduler(3),
                Event::DriverLaunched {
                    attempt: Attempt(1),
                    driver_id: "spark-jobs/kindling-42-1-driver".into(),
                },
            ),
        ),
        case(
            "",
            envelope(
                6,
                JOB,
                4,
                Origin::Driver,
                Event::AppIdentified {
                    attempt: Attempt(1),
                    app_id: "spark-4f1c2a9e8b7d4c3f9a1e2b3c4d5e6f70".into(),
                    spark_ui_url: Some("http://kindling-42-1-driver-svc.spark-jobs:4040".into()),
                },
            ),
        ),
        case(
            "",
            envelope(
                7,
                JOB,
                5,
                Origin::Driver,
                Event::SessionReady {
                    attempt: Attempt(1),
                },
            ),
        ),
        case(
            "",
            envelope(
                8,
                JOB,
                6,
                scheduler(4),
                Event::SessionRecovering {
                    attempt: Attempt(1),
                    reason: "no heartbeat from the driver for 60s".into(),
                },
            ),
        ),
        case(
            "",
            envelope(
                9,
                JOB,
                7,
                Origin::Api,
                Event::StatementSubmitted {
                    statement: StatementId(0),
                    kind: SessionKind::Pyspark,
                    code: "df = spark.read.parquet('s3a://analytics/events/')\nprint(df.count(), 'lignes ✓')".into(),
                },
            ),
        ),
        case(
            "",
            envelope(
                10,
                JOB,
                8,
                Origin::Driver,
                Event::StatementStarted {
                    statement: StatementId(0),
                },
            ),
        ),
        case(
            "_ok",
            envelope(
                11,
                JOB,
                9,
                Origin::Driver,
                Event::StatementCompleted {
                    statement: StatementId(0),
                    output: StatementOutput::Ok {
                        execution_count: 0,
                        data_json: r#"{"text/plain":"1048576 lignes ✓"}"#.into(),
                    },
                },
            ),
        ),
        case(
            "_error",
            envelope(
                12,
                JOB,
                10,
                Origin::Driver,
                Event::StatementCompleted {
                    statement: StatementId(1),
                    output: StatementOutput::Error {
                        execution_count: 1,
                        ename: "NameError".into(),
                        evalue: "name 'dff' is not defined".into(),
                        traceback: strings(&[
                            "Traceback (most recent call last):\n",
                            "  File \"<stdin>\", line 1, in <module>\n",
                            "NameError: name 'dff' is not defined\n",
                        ]),
                    },
                },
            ),
        ),
        case(
            "",
            envelope(
                13,
                JOB,
                11,
                Origin::Api,
                Event::StatementCancelRequested {
                    statement: StatementId(2),
                },
            ),
        ),
        case(
            "",
            envelope(
                14,
                JOB,
                12,
                Origin::Driver,
                Event::StatementCancelled {
                    statement: StatementId(2),
                },
            ),
        ),
        case("", envelope(15, JOB, 13, Origin::Api, Event::SessionActivity)),
        case(
            "",
            envelope(
                16,
                Aggregate::Cluster,
                1,
                scheduler(5),
                Event::SchedulerMarker {
                    nonce: 0x5eed_cafe_f00d_beef,
                },
            ),
        ),
        case(
            "",
            envelope(
                17,
                JOB,
                14,
                Origin::Api,
                Event::KillRequested {
                    reason: "killed by ann".into(),
                },
            ),
        ),
        case("_succeeded", finished(18, Outcome::Succeeded, Some(0))),
        case(
            "_failed",
            finished(
                19,
                Outcome::Failed {
                    reason: "driver exited with code 1: java.lang.OutOfMemoryError".into(),
                },
                Some(1),
            ),
        ),
        case(
            "_killed",
            finished(
                20,
                Outcome::Killed {
                    reason: "killed by ann".into(),
                },
                Some(-9),
            ),
        ),
        case(
            "_error",
            finished(
                21,
                Outcome::Error {
                    reason: "the driver never registered within 300s".into(),
                },
                None,
            ),
        ),
        case("", envelope(22, JOB, 15, Origin::Api, Event::JobDeleted)),
        case(
            "_kubernetes",
            envelope(
                23,
                Aggregate::Registry,
                1,
                Origin::Api,
                Event::ClusterRegistered {
                    name: "k8s-east".into(),
                    config: kubernetes_cluster(),
                },
            ),
        ),
        case(
            "_standalone",
            envelope(
                24,
                Aggregate::Registry,
                2,
                Origin::Api,
                Event::ClusterRegistered {
                    name: "lab".into(),
                    config: standalone_cluster(),
                },
            ),
        ),
        case(
            "",
            envelope(
                25,
                Aggregate::Registry,
                3,
                Origin::Api,
                Event::ClusterUpdated {
                    name: "yarn-prod".into(),
                    config: yarn_cluster(),
                },
            ),
        ),
        case(
            "",
            envelope(
                26,
                Aggregate::Registry,
                4,
                Origin::Api,
                Event::ClusterRemoved { name: "lab".into() },
            ),
        ),
        case(
            "",
            envelope(
                27,
                Aggregate::Job(JobId(45)),
                2,
                scheduler(5),
                Event::JobQueued {
                    reason: "waiting for room on cluster 'k8s-east': its limit of 4 concurrent \
                             drivers is reached"
                        .into(),
                },
            ),
        ),
        // Commands the leader decided carry its term (fenced like scheduler events).
        case(
            "_leader_decided",
            envelope(
                28,
                Aggregate::Job(JobId(44)),
                2,
                Origin::ApiDecided { term: Term(6) },
                Event::KillRequested {
                    reason: "killed by bob".into(),
                },
            ),
        ),
        case(
            "_leader_decided",
            envelope(
                29,
                Aggregate::Job(JobId(44)),
                3,
                Origin::DriverDecided { term: Term(6) },
                Event::StatementStarted {
                    statement: StatementId(3),
                },
            ),
        ),
        case(
            "_leader_decided",
            envelope(
                30,
                Aggregate::Registry,
                5,
                Origin::ApiDecided { term: Term(7) },
                Event::ClusterRemoved {
                    name: "yarn-prod".into(),
                },
            ),
        ),
        // Format 2 on: API tokens.
        case(
            "",
            envelope(
                31,
                Aggregate::Tokens,
                1,
                Origin::ApiDecided { term: Term(7) },
                Event::TokenIssued {
                    token: IssuedToken {
                        id: "3f9a0c1d2e4b5a67".into(),
                        user: "ann".into(),
                        name: "airflow-prod".into(),
                        role: "user".into(),
                        secret_sha256: "9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab"
                            .into(),
                        expires_at_ms: T0 + 30 * 86_400_000,
                    },
                },
            ),
        ),
        case(
            "",
            envelope(
                32,
                Aggregate::Tokens,
                2,
                Origin::ApiDecided { term: Term(7) },
                Event::TokenRevoked {
                    id: "3f9a0c1d2e4b5a67".into(),
                },
            ),
        ),
        case(
            "",
            envelope(
                33,
                JOB,
                9,
                Origin::Scheduler { term: Term(7) },
                Event::AttemptFailed {
                    attempt: Attempt(2),
                    outcome: Outcome::Failed {
                        reason: "the driver exited with code 137: OOMKilled".into(),
                    },
                    exit_code: Some(137),
                    backoff_ms: 20_000,
                },
            ),
        ),
        case(
            "",
            envelope(
                34,
                Aggregate::Registry,
                5,
                Origin::ApiDecided { term: Term(7) },
                Event::ClusterQueuesSet {
                    name: "k8s-east".into(),
                    queues: kindling_events::Queues {
                        queues: [
                            (
                                "etl".to_string(),
                                kindling_events::QueueConfig {
                                    weight: 3,
                                    limits: Capacity {
                                        max_drivers: Some(6),
                                        max_driver_cores: None,
                                        max_driver_memory_mb: Some(32_768),
                                    },
                                },
                            ),
                            ("adhoc".to_string(), kindling_events::QueueConfig::default()),
                        ]
                        .into(),
                        max_drivers_per_user: Some(2),
                    },
                },
            ),
        ),
    ]
}

fn kubernetes_cluster() -> ClusterConfig {
    ClusterConfig {
        kind: ClusterKind::Kubernetes,
        connection: conf(&[
            ("apiServer", "https://10.20.0.1:6443"),
            ("namespace", "spark-jobs"),
            ("image", "apache/spark:4.0.0-python3"),
            ("serviceAccount", "spark"),
            ("caFile", "/etc/kindling/k8s-east/ca.crt"),
        ]),
        credentials: Credentials::TokenFile {
            path: "/etc/kindling/k8s-east/token".into(),
        },
        spark_conf: conf(&[("spark.executor.instances", "2")]),
        capacity: Capacity {
            max_drivers: Some(4),
            max_driver_cores: Some(8),
            max_driver_memory_mb: Some(16_384),
        },
    }
}

/// No credentials, no limits: `None`s and the first variants must round-trip too.
fn standalone_cluster() -> ClusterConfig {
    ClusterConfig {
        kind: ClusterKind::Standalone,
        connection: conf(&[
            ("restUrl", "http://spark-master:6066"),
            ("webUiUrl", "http://spark-master:8080"),
        ]),
        credentials: Credentials::None,
        spark_conf: BTreeMap::new(),
        capacity: Capacity::default(),
    }
}

fn yarn_cluster() -> ClusterConfig {
    ClusterConfig {
        kind: ClusterKind::Yarn,
        connection: conf(&[("hadoopConfDir", "/etc/hadoop/conf"), ("queue", "etl")]),
        credentials: Credentials::Keytab {
            principal: "kindling/edge01@EXAMPLE.COM".into(),
            keytab: "/etc/security/keytabs/kindling.keytab".into(),
        },
        spark_conf: conf(&[("spark.yarn.maxAppAttempts", "1")]),
        capacity: Capacity {
            max_drivers: Some(20),
            max_driver_cores: None,
            max_driver_memory_mb: None,
        },
    }
}
