//! Golden files of the stored envelope formats: every `Event` variant, as each format stored
//! it, must keep decoding to the same value after any later change, and the current format
//! must keep encoding to the same bytes. Format `N`'s files live in `tests/golden/vN/`; a
//! missing one is written only with `KINDLING_BLESS=1`, and only for the current format
//! (an old format's files are never written again). Also: corrupted bytes must come back as
//! `DomainError::Decode`, never as a panic ([`corrupt`]).

#[path = "golden/cases.rs"]
mod cases;
#[path = "golden/corrupt.rs"]
mod corrupt;

use cases::{cases, Case};
use kindling_events::codec::{self, decode, encode};
use kindling_events::event::FORMAT_VERSION;
use kindling_events::{Aggregate, Envelope, Event, Origin, StatementOutput};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const BLESS_ENV: &str = "KINDLING_BLESS";

/// Every format a log may hold: each has its golden files.
const FORMATS: [u16; 2] = [1, FORMAT_VERSION];

fn golden_dir(format: u16) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/v{format}"))
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

/// Checks one case's file of one format; what is wrong goes to `problems`.
fn check(case: &Case, format: u16, problems: &mut Vec<String>) {
    let path = golden_dir(format).join(case.file_name());
    let current = format == FORMAT_VERSION;
    let encoded = encode(&case.envelope);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && current && blessing() => {
            std::fs::create_dir_all(golden_dir(format)).expect("create the golden directory");
            std::fs::write(&path, &encoded).expect("write a golden file");
            eprintln!("blessed {}", path.display());
            return;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && current => {
            problems.push(format!(
                "{} is missing. If this is a new case (a new event variant or a new golden \
                 case), create it with `{BLESS_ENV}=1 cargo test -p kindling-events --test \
                 golden`, check it in, and never edit it afterwards.",
                path.display()
            ));
            return;
        }
        // A case added after its format was replaced has no file of that format.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    assert_eq!(
        &bytes[..4],
        &[b'K', b'E', format as u8, 0],
        "{} starts with the header of format {format}",
        path.display()
    );
    let expected = case.in_format(format);
    match decode(&bytes) {
        Ok(decoded) if decoded == expected => {}
        Ok(decoded) => problems.push(format!(
            "{}: decodes to\n{decoded:#?}\nbut the stored format promises\n{expected:#?}",
            path.display()
        )),
        Err(e) => problems.push(format!(
            "{}: no longer decodes ({e}). Old logs would not replay: keep a decoder for \
             format {format} in codec.rs instead of changing this file.",
            path.display()
        )),
    }
    if current && encoded != bytes {
        problems.push(format!(
            "{}: today's encoding differs from the stored bytes\n stored: {}\n   now: {}\n\
             Changing the encoding needs a new FORMAT_VERSION (and new golden files under a \
             new directory), never an edit of these.",
            path.display(),
            hex(&bytes),
            hex(&encoded)
        ));
    }
}

#[test]
fn golden_files_decode_to_the_expected_envelopes() {
    let mut problems = Vec::new();
    for format in FORMATS {
        for case in cases() {
            check(&case, format, &mut problems);
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

/// How many files each replaced format froze with: they are never deleted, and never added
/// to (no case is ever written in an old format again).
const FROZEN: [(u16, usize); 1] = [(1, 30)];

#[test]
fn the_files_of_replaced_formats_are_all_there() {
    for (format, count) in FROZEN {
        let files = std::fs::read_dir(golden_dir(format)).map_or(0, |d| d.count());
        assert_eq!(
            files, count,
            "tests/golden/v{format} holds {count} files, never more or fewer"
        );
    }
}

#[test]
fn every_golden_file_belongs_to_a_case() {
    let expected: BTreeSet<String> = cases().iter().map(Case::file_name).collect();
    for format in FORMATS {
        let Ok(entries) = std::fs::read_dir(golden_dir(format)) else {
            continue; // nothing blessed yet: the decode test reports the missing files
        };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                expected.contains(&name),
                "{name} is in tests/golden/v{format} but no case checks it; golden files are \
                 never deleted, so restore its case in tests/golden/cases.rs"
            );
        }
    }
}

#[test]
fn the_current_format_records_who_asked_and_the_old_one_decodes_without() {
    let submitted = &cases()[0];
    assert_eq!(submitted.envelope.origin, Origin::Api);
    assert_eq!(submitted.envelope.actor.as_deref(), Some("ann"));
    let old = std::fs::read(golden_dir(1).join(submitted.file_name())).unwrap();
    let decoded = decode(&old).unwrap();
    assert_eq!((decoded.format, decoded.actor), (1, None));
    assert_eq!(decoded.event, submitted.envelope.event);
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
    assert!(has(&|e| e.aggregate == Aggregate::Tokens));
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
