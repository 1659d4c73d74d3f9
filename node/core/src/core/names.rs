//! Job names, as Livy keeps them: a new session (or batch) may not take the name of one that
//! is still active. Any member creates jobs, so a name's check and the new job's append are
//! decided by the leader, one named job at a time: after its read barrier the projections
//! hold every job created before, and its fenced writer keeps a deposed leader's late
//! creation from counting. Unnamed jobs never wait for this.

use super::Core;
use crate::error::{Error, Result};
use kindling_events::spec::JobSpec;
use kindling_events::Job;

impl Core {
    /// Accepts a new job that has a name, on the leader, unless an active job of its kind
    /// has that name.
    pub(super) async fn submit_named(&self, spec: JobSpec, actor: Option<String>) -> Result<Job> {
        if self.leading_term().is_none() {
            return Err(self.leader.not_leader());
        }
        let name = spec.name.clone().unwrap_or_default();
        let _one_at_a_time = self.names.lock().await;
        self.read_barrier().await?;
        for holder in self.reads.named(&name, spec.is_session()).await? {
            // The leader's aggregate, where it has one, is never behind the projections.
            let holder = match self.model.get(holder.id) {
                Some(current) => current.lock().await.clone(),
                None => holder,
            };
            if !holder.state.is_terminal() && !holder.deleted {
                return Err(Error::DuplicateName {
                    kind: spec.kind_name(),
                    name,
                    holder: holder.id,
                });
            }
        }
        self.create(spec, actor, true).await
    }
}
