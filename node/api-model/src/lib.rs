//! The JSON shapes of the REST API, apart from the handlers that serve them: Livy's request
//! and response bodies field for field, the native API's documents, and the cluster
//! registry's. Requests become domain specs here, with messages that name the field at
//! fault ([`Invalid`]). Used by the API, and by the scheduler simulation, which records what
//! a client would read.

pub mod cluster;
pub mod cluster_schema;
pub mod invalid;
pub mod json;
pub mod model;
pub mod queues;
pub mod schemas;

pub use invalid::Invalid;
