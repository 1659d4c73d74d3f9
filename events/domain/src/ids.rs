//! Typed identifiers. Livy clients need integer ids, so jobs and statements are integers.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident($inner:ty)) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
    };
}

id_type!(
    /// A batch or session id, unique in the cluster (Livy's `id`).
    JobId(u64)
);
id_type!(
    /// A statement id, unique within its session and counted from 0 (Livy's statement `id`).
    StatementId(u64)
);
id_type!(
    /// The n-th launch of a job's driver, from 1. A driver's name derives from (job, attempt).
    Attempt(u32)
);
id_type!(
    /// A Raft term. Scheduler events carry the term of the leader that wrote them.
    Term(u64)
);
id_type!(
    /// A core node's id.
    NodeId(u64)
);
id_type!(
    /// A position in the event log: events are ordered by it, never by wall clock.
    LogPosition(u64)
);

impl LogPosition {
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl Attempt {
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}
