//! TLS for the REST API and the driver gateway: the node's certificate and key, read from PEM files and read
//! again when they change (checked at most once a second, on a handshake), so a renewed
//! certificate takes effect without a restart. A change that does not parse (a key written
//! before its certificate, say) keeps the pair in use and logs why, never the files'
//! content.

use parking_lot::Mutex;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often a handshake may look at the files.
const RECHECK: Duration = Duration::from_secs(1);

/// The certificate and key files, and the pair read from them last.
#[derive(Debug)]
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    pair: Arc<CertifiedKey>,
    stamp: Option<(SystemTime, SystemTime, u64)>,
    checked: Instant,
}

impl CertFiles {
    /// Reads `cert` (the chain, leaf first) and `key`; fails naming the file that is wrong.
    pub fn open(cert: &Path, key: &Path) -> Result<CertFiles, String> {
        let pair = read_pair(cert, key)?;
        Ok(CertFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            state: Mutex::new(Loaded {
                pair,
                stamp: stamp(cert, key),
                checked: Instant::now(),
            }),
        })
    }

    /// The chain file's text, for a client that should trust this node.
    pub fn chain_pem(&self) -> Vec<u8> {
        std::fs::read(&self.cert).unwrap_or_default()
    }

    /// The server configuration that serves the current pair (HTTP/1.1 and HTTP/2).
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        self.config_for(&[b"h2", b"http/1.1"])
    }

    /// The driver gateway's: gRPC, HTTP/2 only (gRPC clients insist on ALPN `h2`).
    pub fn grpc_server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        self.config_for(&[b"h2"])
    }

    fn config_for(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut cfg = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock();
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let now = stamp(&self.cert, &self.key);
            if now != state.stamp {
                match read_pair(&self.cert, &self.key) {
                    Ok(pair) => {
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                        state.pair = pair;
                        state.stamp = now;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS certificate not reloaded; serving the previous one")
                    }
                }
            }
        }
        state.pair.clone()
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamp(cert: &Path, key: &Path) -> Option<(SystemTime, SystemTime, u64)> {
    let c = std::fs::metadata(cert).ok()?;
    let k = std::fs::metadata(key).ok()?;
    Some((c.modified().ok()?, k.modified().ok()?, c.len() + k.len()))
}

fn read_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("--tls-cert {}: {}", cert.display(), pem_error(&e)))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no PEM certificate in it",
            cert.display()
        ));
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {}", key.display(), pem_error(&e)))?;
    let signer = ring::sign::any_supported_type(&der)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let pair = CertifiedKey::new(chain, signer);
    pair.keys_match()
        .map_err(|e| format!("--tls-key {} does not match --tls-cert: {e}", key.display()))?;
    Ok(Arc::new(pair))
}

/// A PEM file's error without its content: some errors quote the line they stopped at, and a
/// key file's lines are the key.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error::*;
    match e {
        Io(io) => io.to_string(),
        NoItemsFound => "no PEM section of the expected kind in it".into(),
        _ => "not valid PEM (its content is not shown)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_key_file_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "").unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nS3CRETKEYMATERIAL\n-----END OTHER-----\n",
        )
        .unwrap();
        let e = CertFiles::open(&cert, &key).unwrap_err();
        assert!(
            e.starts_with("--tls-cert"),
            "an empty chain is named first: {e}"
        );
        std::fs::copy(&key, &cert).unwrap();
        let e = CertFiles::open(&cert, &key).unwrap_err();
        assert!(!e.contains("S3CRET"), "{e}");
    }
}
