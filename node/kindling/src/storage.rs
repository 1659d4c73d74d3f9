//! The node's storage, opened as its configuration says: the event log (sled, or a Kafka
//! topic, waited for while the broker is away) and the projections (sled or MongoDB).

use crate::config::{self, Config};
use anyhow::Context;
use kindling_store::{EventLog, ProjectionStore, SledEventLog, SledProjections};
use std::sync::Arc;
use std::time::Duration;

pub async fn open_log(cfg: &Config) -> anyhow::Result<Arc<dyn EventLog>> {
    Ok(match &cfg.log {
        config::LogConfig::Sled => Arc::new(
            SledEventLog::open(&cfg.data_dir.join("log")).context("cannot open the event log")?,
        ),
        config::LogConfig::Kafka {
            brokers,
            topic,
            replication,
            tail_wait,
            security,
            ..
        } => {
            let mut k = kindling_store_kafka::KafkaConfig::new(brokers.clone(), topic.clone());
            k.properties = security.read()?;
            k.replication_factor = *replication;
            k.tail_fetch_wait = *tail_wait;
            k.client_id = format!("kindling-node-{}", cfg.node_id);
            // A node started while its broker is down, restarting or too slow to answer in
            // time waits for it rather than exiting: with no log it can serve nothing, and
            // once the broker answers it goes on as any node would. SIGTERM still stops it.
            let what = format!("open the event log topic {topic} on {brokers}");
            Arc::new(
                until_ok(&what, || {
                    kindling_store_kafka::KafkaEventLog::open(k.clone())
                })
                .await,
            )
        }
    })
}

/// The first pause after a failed start-up step on the broker; each next pause doubles, up to
/// `BROKER_BACKOFF_MAX`.
const BROKER_BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BROKER_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Runs a start-up step on the broker until it succeeds, warning after each failure: a node
/// whose broker is down or slow waits for it rather than exiting.
async fn until_ok<T, E, F, Fut>(what: &str, mut step: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = BROKER_BACKOFF_FIRST;
    let mut attempt = 1u32;
    loop {
        match step().await {
            Ok(v) => return v,
            Err(e) => tracing::warn!(
                error = %e,
                attempt,
                retry_in_ms = backoff.as_millis() as u64,
                "cannot {what} yet; retrying"
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BROKER_BACKOFF_MAX);
        attempt += 1;
    }
}

pub async fn open_projections(cfg: &Config) -> anyhow::Result<Arc<dyn ProjectionStore>> {
    Ok(match &cfg.projections {
        config::ProjectionConfig::Sled => Arc::new(
            SledProjections::open(&cfg.data_dir.join("projections"))
                .context("cannot open the projections")?,
        ),
        config::ProjectionConfig::Mongo {
            uri,
            database,
            password_file,
        } => Arc::new(
            kindling_store_mongo::MongoProjections::open(&kindling_store_mongo::MongoConfig {
                uri: uri.clone(),
                database: database.clone(),
                password: match password_file {
                    Some(path) => Some(config::store_security::read_secret(
                        path,
                        "MongoDB password",
                    )?),
                    None => None,
                },
            })
            .await
            .with_context(|| {
                format!("cannot open the projections in MongoDB database {database}")
            })?,
        ),
    })
}
