//! Session drivers' secrets: each derives from the node key and the driver's name, so a
//! re-issued launch recreates the same one; only its SHA-256 digest goes into the log
//! (`JobScheduled`), against which the gateway checks a registering driver.

use sha2::{Digest, Sha256};

/// The secret of the driver called `driver_name`, under the cluster's key.
pub fn secret(key: &[u8], driver_name: &str) -> String {
    let mut h = Sha256::new();
    h.update(key);
    h.update(driver_name.as_bytes());
    hex::encode(h.finalize())
}

/// SHA-256 of a driver secret, as stored in `JobScheduled`.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
