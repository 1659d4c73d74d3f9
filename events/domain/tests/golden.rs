//! Golden files of the stored envelope format: every `Event` variant, encoded today, must keep
//! decoding to the same value (and encoding to the same bytes) after any later change. The
//! files live in `tests/golden/v1/`; a missing one is written only with `KINDLING_BLESS=1`.
//! Also: corrupted bytes must come back as `DomainError::Decode`, never as a panic.

use kindling_events::codec::{self, decode, encode};
use kindling_events::event::FORMAT_VERSION;
use kindling_events::spec::DurationSpec;
use kindling_events::{
    Aggregate, Attempt, BatchSpec, Capacity, ClusterConfig, ClusterKind, Credentials, DomainError,
    Envelope, Event, JobId, JobKind, JobSpec, LogPosition, NodeId, Origin, Outcome, SessionKind,
    SessionSpec, SparkResources, StatementId, StatementOutput, Term,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const BLESS_ENV: &str = "KINDLING_BLESS";

/// The file name prefix of each variant. Exhaustive on purpose: a new `Event` variant does not
/// compile until it is named here, and `every_variant_has_a_golden_file` then fails until a
/// golden case for it exists.
fn variant_file_prefix(event: &Event) -> &'static str {
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
    }
}

struct Case {
    /// Distinguishes several cases of one variant (`""` when there is one).
    suffix: &'static str,
    envelope: Envelope,
}

impl Case {
    fn file_name(&self) -> String {
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
    Envelope {
        format: FORMAT_VERSION,
        position: LogPosition(position),
        aggregate,
        version,
        origin,
        node: NodeId(position % 3 + 1),
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
fn cases() -> Vec<Case> {
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

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1")
}

fn blessing() -> bool {
    std::env::var(BLESS_ENV).is_ok_and(|v| v == "1")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bincode ordinal of a variant: its index in the enum declaration. Taken from the
/// encoding itself, so it cannot drift from the real enum.
fn ordinal(event: &Event) -> u8 {
    let bytes = codec::encode_value(event);
    assert!(bytes[0] < 251, "more than 250 variants: read the varint");
    bytes[0]
}

#[test]
fn golden_files_decode_to_the_expected_envelopes() {
    let dir = golden_dir();
    let mut problems = Vec::new();
    for case in cases() {
        let path = dir.join(case.file_name());
        let encoded = encode(&case.envelope);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && blessing() => {
                std::fs::create_dir_all(&dir).expect("create the golden directory");
                std::fs::write(&path, &encoded).expect("write a golden file");
                eprintln!("blessed {}", path.display());
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!(
                    "{} is missing. If this is a new case (a new event variant or a new \
                     golden case), create it with `{BLESS_ENV}=1 cargo test -p kindling-events \
                     --test golden`, check it in, and never edit it afterwards.",
                    path.display()
                ));
                continue;
            }
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        };
        match decode(&bytes) {
            Ok(decoded) if decoded == case.envelope => {}
            Ok(decoded) => problems.push(format!(
                "{}: decodes to\n{decoded:#?}\nbut the stored format promises\n{:#?}",
                case.file_name(),
                case.envelope
            )),
            Err(e) => problems.push(format!(
                "{}: no longer decodes ({e}). Old logs would not replay: keep a decoder for \
                 format {} in codec.rs instead of changing this file.",
                case.file_name(),
                FORMAT_VERSION
            )),
        }
        if encoded != bytes {
            problems.push(format!(
                "{}: today's encoding differs from the stored bytes\n stored: {}\n   now: {}\n\
                 Changing the encoding needs a new FORMAT_VERSION (and new golden files under \
                 a new directory), never an edit of v1.",
                case.file_name(),
                hex(&bytes),
                hex(&encoded)
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

#[test]
fn golden_files_start_with_the_v1_header() {
    for case in cases() {
        let path = golden_dir().join(case.file_name());
        let Ok(bytes) = std::fs::read(&path) else {
            continue; // reported by `golden_files_decode_to_the_expected_envelopes`
        };
        assert_eq!(&bytes[..4], b"KE\x01\x00", "{}", path.display());
    }
}

#[test]
fn every_golden_file_belongs_to_a_case() {
    let expected: BTreeSet<String> = cases().iter().map(Case::file_name).collect();
    let Ok(entries) = std::fs::read_dir(golden_dir()) else {
        return; // nothing blessed yet: the decode test reports the missing files
    };
    for entry in entries {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            expected.contains(&name),
            "{name} is in tests/golden/v1 but no case checks it; golden files are never \
             deleted, so restore its case in tests/golden.rs"
        );
    }
}

#[test]
fn case_file_names_are_unique() {
    let names: Vec<String> = cases().iter().map(Case::file_name).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(
        names.len(),
        unique.len(),
        "duplicate golden file names: {names:?}"
    );
}

#[test]
fn every_variant_has_a_golden_file() {
    let cases = cases();
    let covered: BTreeSet<u8> = cases.iter().map(|c| ordinal(&c.envelope.event)).collect();
    let count = covered.len() as u8;
    assert_eq!(
        covered,
        (0..count).collect(),
        "the golden cases skip an Event variant"
    );
    // A variant declared after the last covered one would decode from its ordinal followed by
    // zeroed fields; no variant there means every variant has a golden case.
    let mut bytes = vec![0u8; 256];
    bytes[0] = count;
    assert!(
        codec::decode_value::<Event>(&bytes).is_err(),
        "Event has a variant with ordinal {count} and no golden case: add one to cases() and \
         bless it"
    );
}

#[test]
fn golden_cases_cover_every_origin_outcome_output_and_aggregate() {
    let cases = cases();
    let envelopes: Vec<&Envelope> = cases.iter().map(|c| &c.envelope).collect();
    let has = |f: &dyn Fn(&Envelope) -> bool| envelopes.iter().any(|e| f(e));
    assert!(has(&|e| e.origin == Origin::Api));
    assert!(has(&|e| matches!(e.origin, Origin::Scheduler { .. })));
    assert!(has(&|e| e.origin == Origin::Driver));
    assert!(has(&|e| matches!(e.origin, Origin::ApiDecided { .. })));
    assert!(has(&|e| matches!(e.origin, Origin::DriverDecided { .. })));
    assert!(has(&|e| e.aggregate == Aggregate::Cluster));
    assert!(has(&|e| e.aggregate == Aggregate::Registry));
    for outcome in ["Succeeded", "Failed", "Killed", "Error"] {
        assert!(
            has(
                &|e| matches!(&e.event, Event::JobFinished { outcome: o, .. }
                if format!("{o:?}").starts_with(outcome))
            ),
            "no golden JobFinished with outcome {outcome}"
        );
    }
    assert!(has(&|e| matches!(
        &e.event,
        Event::StatementCompleted {
            output: StatementOutput::Ok { .. },
            ..
        }
    )));
    assert!(has(&|e| matches!(
        &e.event,
        Event::StatementCompleted {
            output: StatementOutput::Error { .. },
            ..
        }
    )));
    assert!(has(
        &|e| matches!(&e.event, Event::JobSubmitted { spec } if !spec.is_session())
    ));
    assert!(has(&|e| matches!(&e.event, Event::JobSubmitted { spec }
        if spec.session().is_some_and(|s| s.ttl.is_some() && s.idle_timeout.is_some())
            && !spec.resources.conf.is_empty())));
}

// ---- corrupted input ------------------------------------------------------------------------

fn decode_error(bytes: &[u8]) -> String {
    match decode(bytes) {
        Err(DomainError::Decode(message)) => message,
        Err(other) => panic!("expected a decode error, got {other:?}"),
        Ok(env) => panic!("corrupt bytes decoded to {env:?}"),
    }
}

fn sample() -> Vec<u8> {
    encode(&cases()[0].envelope)
}

#[test]
fn bad_magic_is_a_decode_error() {
    let mut bytes = sample();
    bytes[..2].copy_from_slice(b"XE");
    let message = decode_error(&bytes);
    assert!(message.contains("KE header"), "{message}");
}

#[test]
fn input_shorter_than_the_header_is_a_decode_error() {
    for bytes in [&b""[..], b"K", b"KE", b"KE\x01"] {
        let message = decode_error(bytes);
        assert!(message.contains("KE header"), "{bytes:?}: {message}");
    }
}

#[test]
fn unknown_format_version_is_a_decode_error_naming_it() {
    let mut bytes = sample();
    bytes[2..4].copy_from_slice(&99u16.to_le_bytes());
    let message = decode_error(&bytes);
    assert!(message.contains("unknown envelope format 99"), "{message}");
    assert!(
        message.contains(&format!("reads up to {FORMAT_VERSION}")),
        "{message}"
    );
}

#[test]
fn every_truncation_of_every_case_is_a_decode_error() {
    for case in cases() {
        let bytes = encode(&case.envelope);
        for len in 0..bytes.len() {
            let message = decode_error(&bytes[..len]);
            assert!(!message.is_empty(), "{} cut at {len}", case.file_name());
        }
    }
}

#[test]
fn truncated_body_says_which_format_failed() {
    let bytes = sample();
    let message = decode_error(&bytes[..bytes.len() - 3]);
    assert!(message.starts_with("format 1:"), "{message}");
}

#[test]
fn trailing_bytes_are_a_decode_error_counting_them() {
    let mut bytes = sample();
    bytes.extend_from_slice(&[0, 0, 7]);
    let message = decode_error(&bytes);
    assert!(message.contains("3 trailing bytes"), "{message}");
}

/// The bytes of `envelope` with the length prefix of the string `needle` replaced by `len`,
/// as a varint (marker 253, then a u64): what a flipped bit in a length looks like.
fn with_string_length(envelope: &Envelope, needle: &str, len: u64) -> Vec<u8> {
    let bytes = encode(envelope);
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .expect("the string is in the encoding");
    assert_eq!(
        bytes[at - 1] as usize,
        needle.len(),
        "a one-byte length prefix"
    );
    let mut out = bytes[..at - 1].to_vec();
    out.push(253);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes[at..]);
    out
}

#[test]
fn absurd_length_prefixes_are_a_decode_error_not_an_allocation() {
    let envelope = &cases()[0].envelope;
    // u64::MAX overflows a Vec's capacity; 2^40 is a terabyte the process cannot get.
    for len in [u64::MAX, 1 << 40, 1 << 33] {
        let bytes = with_string_length(envelope, "daily-rollup", len);
        let message = decode_error(&bytes);
        assert!(message.starts_with("format 1:"), "length {len}: {message}");
    }
}

#[test]
fn single_byte_corruptions_never_panic() {
    for case in cases() {
        let bytes = encode(&case.envelope);
        for i in 0..bytes.len() {
            for value in [0x00, 0x01, 0x7f, 0xfb, 0xfc, 0xfd, 0xff] {
                let mut corrupt = bytes.clone();
                corrupt[i] = value;
                // Ok is possible (a changed number is still a number); a panic is not.
                let _ = decode(&corrupt);
            }
        }
    }
}
