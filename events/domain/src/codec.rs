//! The binary form of an envelope: a 4-byte header (`b"KE"` + format version, little endian)
//! followed by the bincode (standard configuration) encoding of the envelope. The header lets
//! a reader pick the decoder of an old format; golden files keep every format decodable.
//! Format 1 is format 2 without the actor.

use crate::error::{DomainError, Result};
use crate::event::{Envelope, Event, Origin, FORMAT_VERSION};
use crate::ids::{LogPosition, NodeId};
use crate::Aggregate;
use serde::de::DeserializeOwned;
use serde::Deserialize;

const MAGIC: [u8; 2] = *b"KE";

/// Decoding claims every length prefix against this limit before allocating, so corrupt bytes
/// fail the decode instead of asking for terabytes (an abort, not even a panic). It bounds
/// decoding only: the encoded bytes are those of `standard()`. Far above any real envelope.
const DECODE_LIMIT_BYTES: usize = 64 << 20;

fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT_BYTES>()
}

pub fn encode(envelope: &Envelope) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bincode::serde::encode_into_std_write(envelope, &mut out, bincode::config::standard())
        .expect("encoding into a Vec cannot fail");
    out
}

pub fn decode(bytes: &[u8]) -> Result<Envelope> {
    if bytes.len() < 4 || bytes[..2] != MAGIC {
        return Err(DomainError::Decode("missing KE header".into()));
    }
    let format = u16::from_le_bytes([bytes[2], bytes[3]]);
    match format {
        1 => decode_whole::<EnvelopeV1>(format, &bytes[4..]).map(Envelope::from),
        2 => decode_whole::<Envelope>(format, &bytes[4..]),
        other => Err(DomainError::Decode(format!(
            "unknown envelope format {other} (this build reads up to {FORMAT_VERSION})"
        ))),
    }
}

/// Decodes `body`, all of it, as one value of a format.
fn decode_whole<T: DeserializeOwned>(format: u16, body: &[u8]) -> Result<T> {
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(body, decode_config())
        .map_err(|e| DomainError::Decode(format!("format {format}: {e}")))?;
    if used != body.len() {
        return Err(DomainError::Decode(format!(
            "format {format}: {} trailing bytes",
            body.len() - used
        )));
    }
    Ok(value)
}

/// An envelope as format 1 stored it: no actor.
#[derive(Deserialize)]
struct EnvelopeV1 {
    format: u16,
    position: LogPosition,
    aggregate: Aggregate,
    version: u64,
    origin: Origin,
    node: NodeId,
    at_ms: i64,
    event: Event,
}

impl From<EnvelopeV1> for Envelope {
    fn from(e: EnvelopeV1) -> Self {
        Envelope {
            format: e.format,
            position: e.position,
            aggregate: e.aggregate,
            version: e.version,
            origin: e.origin,
            node: e.node,
            actor: None,
            at_ms: e.at_ms,
            event: e.event,
        }
    }
}

/// Encodes any serde value with the same bincode configuration (used for projection documents).
pub fn encode_value<T: serde::Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("encoding into a Vec cannot fail")
}

pub fn decode_value<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(bytes, decode_config())
        .map(|(v, _)| v)
        .map_err(|e| DomainError::Decode(e.to_string()))
}
