//! How the cluster's values become bytes, in the two places they do: records in sled (log
//! entries, vote, state machine, snapshot) and payloads of the Raft gRPC messages. Both use
//! bincode 2 over serde, because openraft's types come with serde impls and nothing else.
//!
//! Records start with a format byte so a future layout can be told from this one (golden bytes
//! of format 1 are kept under `tests/golden/`); wire payloads carry their codec in the protobuf
//! message. Decoding is bounded and refuses trailing bytes: a peer or a disk that hands us
//! garbage gets an error, never a huge allocation or a silently half-read value.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The wire codec of `RaftRequest`/`RaftReply` payloads: bincode 2, standard configuration.
pub const WIRE_CODEC: u32 = 1;
/// The layout of every record this crate writes to sled.
pub(crate) const RECORD_FORMAT: u8 = 1;

/// A decoded value is never larger than this; snapshot chunks and append batches are far below.
pub(crate) const LIMIT: usize = 64 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<LIMIT>()
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("cannot decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("{0} bytes left over after decoding")]
    Trailing(usize),
    #[error("unknown wire codec {0} (this build speaks {WIRE_CODEC})")]
    UnknownCodec(u32),
    #[error("unknown record format {0} (this build reads {RECORD_FORMAT})")]
    UnknownFormat(u8),
    #[error("empty record")]
    Empty,
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (v, read) = bincode::serde::decode_from_slice(bytes, config())?;
    if read != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - read));
    }
    Ok(v)
}

pub fn to_wire<T: Serialize>(v: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(v, config())?)
}

pub fn from_wire<T: DeserializeOwned>(codec: u32, bytes: &[u8]) -> Result<T, CodecError> {
    if codec != WIRE_CODEC {
        return Err(CodecError::UnknownCodec(codec));
    }
    decode(bytes)
}

pub(crate) fn to_record<T: Serialize>(v: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![RECORD_FORMAT];
    bincode::serde::encode_into_std_write(v, &mut out, config())?;
    Ok(out)
}

pub(crate) fn from_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&RECORD_FORMAT, rest)) => decode(rest),
        Some((&other, _)) => Err(CodecError::UnknownFormat(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::types::{ClusterIdentity, Command, Entry, MemberAddrs};
    use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership};
    use std::collections::{BTreeMap, BTreeSet};

    fn golden_entries() -> Vec<Entry> {
        let log_id = |term, index| LogId::new(CommittedLeaderId::new(term, 1), index);
        let members = BTreeMap::from([
            (
                1,
                MemberAddrs::new("10.0.0.1:7001", "10.0.0.1:8998").with_driver("10.0.0.1:8999"),
            ),
            (
                2,
                MemberAddrs::new("10.0.0.2:7001", "10.0.0.2:8998").with_driver("10.0.0.2:8999"),
            ),
        ]);
        vec![
            Entry {
                log_id: log_id(1, 1),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(1, 2),
                payload: EntryPayload::Membership(Membership::new(
                    vec![BTreeSet::from([1, 2])],
                    members,
                )),
            },
            Entry {
                log_id: log_id(2, 3),
                payload: EntryPayload::Normal(Command::LeaseIdBlock { node: 2, size: 100 }),
            },
            Entry {
                log_id: log_id(2, 4),
                payload: EntryPayload::Normal(Command::EnsureFloor(5000)),
            },
            Entry {
                log_id: log_id(2, 5),
                payload: EntryPayload::Normal(Command::ProposeIdentity(ClusterIdentity {
                    cluster_id: "0123456789abcdef".into(),
                    key: vec![7; 32],
                    term_base: 0,
                })),
            },
        ]
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Log entries written by format 1 must still decode: an upgrade of openraft or of
    /// `Command` that changes their bytes fails here before it fails on a member's disk.
    #[test]
    fn format_1_log_entries_still_decode() {
        let golden = include_str!("../../tests/golden/v1/log_entries.hex");
        let lines: Vec<&str> = golden.lines().filter(|l| !l.is_empty()).collect();
        let expected = golden_entries();
        assert_eq!(lines.len(), expected.len());
        for (line, want) in lines.iter().zip(&expected) {
            let bytes: Vec<u8> = (0..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
                .collect();
            let got: Entry = from_record(&bytes).unwrap();
            assert_eq!(&got, want);
            assert_eq!(hex(&to_record(want).unwrap()), *line, "encoding changed");
        }
    }

    #[test]
    fn refuses_unknown_formats_codecs_and_trailing_bytes() {
        let mut rec = to_record(&Command::EnsureFloor(7)).unwrap();
        assert_eq!(
            from_record::<Command>(&rec).unwrap(),
            Command::EnsureFloor(7)
        );
        rec.push(0);
        assert!(matches!(
            from_record::<Command>(&rec),
            Err(CodecError::Trailing(1))
        ));
        rec[0] = 9;
        assert!(matches!(
            from_record::<Command>(&rec),
            Err(CodecError::UnknownFormat(9))
        ));
        assert!(matches!(
            from_record::<Command>(&[]),
            Err(CodecError::Empty)
        ));
        let wire = to_wire(&Command::EnsureFloor(7)).unwrap();
        assert!(matches!(
            from_wire::<Command>(2, &wire),
            Err(CodecError::UnknownCodec(2))
        ));
    }

    /// Prints the golden lines; run by hand when a new format is introduced.
    #[test]
    #[ignore]
    fn print_golden_log_entries() {
        for e in golden_entries() {
            println!("{}", hex(&to_record(&e).unwrap()));
        }
    }
}
