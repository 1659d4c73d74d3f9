//! Corrupted input: whatever the bytes, decoding answers `DomainError::Decode` naming the
//! format whose body failed, and never panics or allocates what the bytes claim.

use super::cases::cases;
use super::golden_dir;
use kindling_events::codec::decode;
use kindling_events::codec::encode;
use kindling_events::event::FORMAT_VERSION;
use kindling_events::{DomainError, Envelope};

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
    assert!(message.starts_with("format 2:"), "{message}");
    let old = std::fs::read(golden_dir(1).join(cases()[0].file_name())).unwrap();
    let message = decode_error(&old[..old.len() - 3]);
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
        assert!(message.starts_with("format 2:"), "length {len}: {message}");
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
