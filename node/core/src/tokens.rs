//! API tokens, both sides: issuing and revoking them, decided on the leader like every
//! command on shared state (the projections caught up with the log first, one decision at
//! a time), and the live tokens a request's token is checked against on any node. A check
//! passes the read barrier first, so a token revoked anywhere is refused everywhere from the
//! moment the revocation was acknowledged; the tokens document is read again only when the
//! projections have moved since the last check.

use crate::core::Core;
use crate::error::{Error, Result};
use kindling_events::{Aggregate, LogPosition, Origin, TokenCommand, Tokens};
use parking_lot::Mutex;
use std::sync::Arc;

pub struct TokenBook {
    core: Arc<Core>,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// The tokens as of a projected position.
    cached: Mutex<(LogPosition, Arc<Tokens>)>,
}

impl TokenBook {
    pub fn new(core: Arc<Core>) -> Self {
        TokenBook {
            core,
            one_at_a_time: tokio::sync::Mutex::new(()),
            cached: Mutex::new((LogPosition(u64::MAX), Arc::default())),
        }
    }

    /// Decides `cmd`, asked for by `actor`, and appends what it decided; returns the tokens
    /// after it.
    pub async fn execute(&self, cmd: TokenCommand, actor: Option<String>) -> Result<Tokens> {
        if self.core.leading_term().is_none() {
            let leader = self.core.leadership().borrow().leader;
            return Err(Error::NotLeader(leader));
        }
        let _one = self.one_at_a_time.lock().await;
        self.core.catch_up().await;
        let mut tokens = self.core.reads().tokens().await?;
        let events = tokens.decide(cmd, self.core.clock.now_ms())?;
        let new = self.core.new_events(
            Aggregate::Tokens,
            tokens.version,
            Origin::Api,
            actor,
            events,
        );
        // Through the leader's writer, with its term: fenced like any of its commands.
        for env in self.core.leader_append(new).await? {
            tokens.apply(&env);
            tracing::info!(
                event = env.event.name(),
                position = env.position.0,
                "api tokens changed"
            );
        }
        Ok(tokens)
    }

    /// The live tokens, reflecting every change acknowledged anywhere before the call.
    pub async fn current(&self) -> Result<Arc<Tokens>> {
        self.core.read_barrier().await?;
        let at = *self.core.projected().borrow();
        {
            let cached = self.cached.lock();
            if cached.0 == at {
                return Ok(cached.1.clone());
            }
        }
        let fresh = Arc::new(self.core.reads().tokens().await?);
        *self.cached.lock() = (at, fresh.clone());
        Ok(fresh)
    }
}
