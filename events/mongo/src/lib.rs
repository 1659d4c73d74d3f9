//! The `ProjectionStore` port on MongoDB: the projections an HA cluster's nodes share. Every
//! node folds the log into the same database; reads on any node see what any node projected.
//!
//! - `store`: [`MongoProjections`] and its [`MongoConfig`]: connecting and queries.
//! - `setup`: the indexes, and a rebuild when the stored layout is an older one.
//! - `apply`: one batch of events, loaded, folded and written back in a crash-safe order.
//! - `fold`: which documents a batch of events changes, as a pure function.
//! - `writes`: conditional upserts in bulk, which make racing projectors and crashes safe
//!   without transactions.
//! - `documents`: the layout of the four collections and the conversions to and from BSON.
//!
//! It passes the same conformance suite as the sled adapter (`tests/`, against a real
//! wire-protocol server started by the test; `ops/dev/install-mongo` installs it).
//!
//! Tested on nx-27017, a SQLite-backed MongoDB wire server, and written for MongoDB itself.
//! What nx-27017 does differently, and how the adapter stays clear of it:
//! - an upsert through `replace_one` ignores the filter's `_id`: writes are `update`s with
//!   `$set`, and `$setOnInsert` names the `_id` explicitly;
//! - `_id` sorts as text even when it holds numbers (1, 10, 2): job documents repeat their id
//!   in a numeric field, `id`, which lists sort by and the indexes end with;
//! - index names and directions are not kept: indexes are created by keys and never looked
//!   up by name (and a compound index that includes `_id` fails on a non-empty collection,
//!   one more reason not to sort on `_id`);
//! - small integers come back as `Int32` whatever was written: reads accept both;
//! - `w: "majority"` has no meaning on its single node (accepted, ignored); `j: true` makes
//!   SQLite sync each write;
//! - change streams fail with the Rust driver: this adapter does not use them (readers poll).

mod apply;
mod documents;
mod fold;
mod setup;
mod store;
mod writes;

pub use store::{MongoConfig, MongoProjections};
