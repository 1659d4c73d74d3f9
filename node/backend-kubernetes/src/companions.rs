//! The objects a driver pod comes with on the API server, and their lifecycle: the Secret
//! created before the pod (its credentials), the headless service and the Secret's owner
//! reference once the pod exists (so the garbage collector takes both with it), and deleting
//! a driver with everything it owns.

use super::{api_code, pod, Inner};
use k8s_openapi::api::core::v1::Pod;
use kindling_backend::{BackendError, LaunchSpec, Result};
use kindling_events::{Attempt, JobId};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};

impl Inner {
    /// Creates the driver's Secret, if it has credentials. Idempotent.
    pub(crate) async fn create_secret(&self, l: &LaunchSpec) -> Result<()> {
        let Some(secret) = pod::driver_secret(&self.cfg, l) else {
            return Ok(());
        };
        match self.secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(()),
            Err(e) if api_code(&e) == Some(409) => Ok(()),
            Err(e) => Err(self.launch_error("creating the driver's secret", e)),
        }
    }

    /// Deletes the driver's pod (if it is this cluster's), its service and its secret.
    pub(crate) async fn delete_driver(&self, name: &str) -> Result<()> {
        let pod = self
            .pods
            .get_opt(name)
            .await
            .map_err(|e| self.io(&format!("cannot read pod {name}"), e))?;
        if let Some(pod) = pod {
            if !pod::is_ours(&pod, &self.cfg) {
                return Err(BackendError::Io(format!(
                    "cluster {}: pod {} is not a driver of this Kindling cluster; not deleting it",
                    self.name(),
                    self.driver_id(name)
                )));
            }
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: pod.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match self.pods.delete(name, &dp).await {
                Ok(_) => {}
                // Gone already, or replaced by another incarnation meanwhile.
                Err(e) if matches!(api_code(&e), Some(404 | 409)) => {}
                Err(e) => return Err(self.io(&format!("cannot delete pod {name}"), e)),
            }
        }
        // The garbage collector deletes these with the pod; deleting them here as well
        // means nothing lingers where it is slow or disabled.
        let dp = DeleteParams::default();
        for result in [
            self.services
                .delete(&pod::service_name(name), &dp)
                .await
                .map(|_| ()),
            self.secrets
                .delete(&pod::secret_name(name), &dp)
                .await
                .map(|_| ()),
        ] {
            match result {
                Ok(()) => {}
                Err(e) if api_code(&e) == Some(404) => {}
                Err(e) => return Err(self.io(&format!("cannot delete what belongs to {name}"), e)),
            }
        }
        Ok(())
    }

    /// Creates what a running driver needs besides its pod: the headless service, and the
    /// secret's owner reference (so it goes with the pod). Idempotent.
    pub(crate) async fn ensure_companions(
        &self,
        name: &str,
        job: JobId,
        attempt: Attempt,
        pod: &Pod,
    ) -> Result<()> {
        let service = pod::driver_service(&self.cfg, job, attempt, name, pod);
        match self.services.create(&PostParams::default(), &service).await {
            Ok(_) => {}
            Err(e) if api_code(&e) == Some(409) => {}
            Err(e) => return Err(self.io("cannot create the driver's service", e)),
        }
        let patch = Patch::Merge(pod::owner_patch(pod));
        match self
            .secrets
            .patch(&pod::secret_name(name), &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if api_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(self.io("cannot hand the driver's secret over to its pod", e)),
        }
    }
}
