//! The record format of the log topic.
//!
//! - key: the job id in decimal, `cluster` for cluster events, `registry` for the cluster
//!   registry's, `tokens` for the API tokens', so tools (and compaction experiments) see per-job streams; the log itself
//!   never reads keys.
//! - value: `codec::encode` of the envelope, the same versioned bytes the sled log stores.
//! - position: the record's offset. The offset is known only once the broker has written the
//!   record, after the value was encoded, so the value carries [`UNASSIGNED`] in `position`
//!   and every decode replaces it with the offset the record was read at. The stored field
//!   is never trusted; the offset is the position.

use kindling_events::{codec, Aggregate, Envelope, LogPosition};
use kindling_store::{Result, StoreError};

/// The position written into a record's value; overwritten by the offset on every read.
pub(crate) const UNASSIGNED: LogPosition = LogPosition(0);

pub(crate) fn key(aggregate: Aggregate) -> String {
    match aggregate {
        Aggregate::Job(id) => id.0.to_string(),
        Aggregate::Cluster => "cluster".into(),
        Aggregate::Registry => "registry".into(),
        Aggregate::Tokens => "tokens".into(),
    }
}

/// The log position of a record at `offset`; a negative offset (librdkafka's "no offset")
/// means the broker did not tell where the record is.
pub(crate) fn position(offset: i64) -> Result<LogPosition> {
    u64::try_from(offset)
        .map(LogPosition)
        .map_err(|_| StoreError::Backend(format!("the broker reported no offset ({offset})")))
}

/// The envelope stored at `offset`, with its position restored from the offset.
pub(crate) fn decode(offset: i64, value: Option<&[u8]>) -> Result<Envelope> {
    let at = || format!("offset {offset}");
    let position = position(offset)?;
    let bytes = value.ok_or_else(|| StoreError::Corrupt {
        at: at(),
        reason: "record has no value".into(),
    })?;
    let mut envelope = codec::decode(bytes).map_err(|e| StoreError::Corrupt {
        at: at(),
        reason: e.to_string(),
    })?;
    envelope.position = position;
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_events::{Event, JobId, NewEvent, NodeId, Origin};

    fn event(aggregate: Aggregate) -> NewEvent {
        NewEvent {
            aggregate,
            version: 4,
            origin: Origin::Api,
            node: NodeId(2),
            actor: None,
            at_ms: 1_700_000_000_000,
            event: Event::SessionActivity,
        }
    }

    #[test]
    fn keys_name_the_job_or_the_cluster() {
        assert_eq!(key(Aggregate::Job(JobId(42))), "42");
        assert_eq!(key(Aggregate::Cluster), "cluster");
    }

    #[test]
    fn the_offset_is_the_position() {
        let stored = codec::encode(&Envelope::new(UNASSIGNED, event(Aggregate::Job(JobId(7)))));
        let read = decode(1234, Some(&stored)).unwrap();
        assert_eq!(
            read,
            Envelope::new(LogPosition(1234), event(Aggregate::Job(JobId(7))))
        );
    }

    #[test]
    fn broken_records_are_errors_not_panics() {
        assert!(matches!(
            decode(3, None),
            Err(StoreError::Corrupt { at, .. }) if at == "offset 3"
        ));
        assert!(matches!(
            decode(3, Some(b"KE\x01")),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode(-1001, Some(b"")),
            Err(StoreError::Backend(_))
        ));
    }
}
