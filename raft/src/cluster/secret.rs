//! The cluster secret: what members prove to each other on every Raft RPC and every request
//! one forwards to another. Each call carries a token `t.n.mac`: the sender's clock in
//! seconds, a random nonce, and an HMAC-SHA256, under a key derived from the secret file, of
//! the call's purpose, both and its payload. The receiver checks the mac in constant time,
//! takes the clock within [`WINDOW`] of its own, and refuses a nonce it has seen, so a
//! recorded call cannot be replayed. A process without the file can neither join, vote,
//! append nor forward. The secret is never logged and errors never quote the file.
//!
//! The file may hold several secrets, one per line: the first signs, any verifies. It is read
//! again when it changes (looked at at most once a second), so a secret is rotated without a
//! restart: add the new one as a second line on every member, then move it first on every
//! member, then remove the old one.

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far a token's clock may be from the receiver's (the members' clocks must agree this
/// well), and how long its nonce is remembered.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The fewest bytes a secret file may hold.
pub const MIN_SECRET_LEN: usize = 32;
/// Nonces remembered at most: far above what members send in a window (about 20 calls a
/// second per peer). Past it, tokens are refused until old nonces expire.
const MAX_SEEN: usize = 200_000;
/// How often a call may look at the secret file for a change.
const RECHECK: Duration = Duration::from_secs(1);

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("no cluster token: the caller does not hold this cluster's secret")]
    Missing,
    #[error("malformed cluster token")]
    Malformed,
    #[error("the cluster token does not match: the caller holds another secret, or the call was altered")]
    Mismatch,
    #[error("the cluster token's clock is {0} s away from this member's (more than the {w} s allowed)", w = WINDOW.as_secs())]
    Skewed(u64),
    #[error("the cluster token was used before: a replay")]
    Replayed,
}

/// A cluster's shared secrets, with the nonces it has accepted lately.
pub struct ClusterSecret {
    keys: Mutex<Keys>,
    /// The file the keys come from, looked at again every `recheck`.
    file: Option<(PathBuf, Duration)>,
    seen: Mutex<Seen>,
}

/// The keys of the secrets in use, the first signing, and the file's state they came from.
struct Keys {
    keys: Vec<[u8; 32]>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

#[derive(Default)]
struct Seen {
    nonces: HashSet<u128>,
    order: VecDeque<(u64, u128)>,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl ClusterSecret {
    /// Reads the secrets from `path`, and again whenever it changes: one, or several one
    /// per line, each at least [`MIN_SECRET_LEN`] bytes once surrounding whitespace is trimmed
    /// (e.g. `head -c 32 /dev/urandom | base64`).
    pub fn read(path: &Path) -> Result<ClusterSecret, String> {
        ClusterSecret::watch(path, RECHECK)
    }

    /// [`ClusterSecret::read`], looking at the file again at most every `recheck`.
    pub fn watch(path: &Path, recheck: Duration) -> Result<ClusterSecret, String> {
        let keys = read_keys(path)?;
        Ok(ClusterSecret {
            keys: Mutex::new(Keys {
                keys,
                stamp: stamp(path),
                checked: Instant::now(),
            }),
            file: Some((path.to_path_buf(), recheck)),
            seen: Mutex::new(Seen::default()),
        })
    }

    /// The secret of `bytes` (tests; [`ClusterSecret::read`] checks the length).
    pub fn from_bytes(bytes: &[u8]) -> ClusterSecret {
        ClusterSecret {
            keys: Mutex::new(Keys {
                keys: vec![key_of(bytes)],
                stamp: None,
                checked: Instant::now(),
            }),
            file: None,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// The keys in use, read again from the file if it changed since it was last looked at.
    /// A change that does not parse keeps the keys in use, and says why (never the content).
    fn keys(&self) -> Vec<[u8; 32]> {
        let mut k = self.keys.lock();
        if let Some((path, recheck)) = &self.file {
            if k.checked.elapsed() >= *recheck {
                k.checked = Instant::now();
                let now = stamp(path);
                if now != k.stamp {
                    match read_keys(path) {
                        Ok(keys) => {
                            tracing::info!(secrets = keys.len(), "cluster secret file read again");
                            k.keys = keys;
                            k.stamp = now;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cluster secret file not taken; the previous secrets stay")
                        }
                    }
                }
            }
        }
        k.keys.clone()
    }

    /// A token for a call of `purpose` (the RPC, or a forwarded request) carrying `payload`.
    pub fn sign(&self, purpose: &str, payload: &[u8]) -> String {
        let at = now_secs();
        let nonce: u128 = rand::random();
        let key = self.keys()[0];
        let mac = mac(&key, purpose, at, nonce, payload);
        format!("{at}.{nonce:032x}.{}", hex(&mac))
    }

    /// Checks a token for a call of `purpose` carrying `payload`, and remembers its nonce.
    pub fn verify(
        &self,
        purpose: &str,
        token: Option<&str>,
        payload: &[u8],
    ) -> Result<(), SecretError> {
        let token = token.ok_or(SecretError::Missing)?;
        let mut parts = token.splitn(3, '.');
        let (Some(at), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SecretError::Malformed);
        };
        let at: u64 = at.parse().map_err(|_| SecretError::Malformed)?;
        let nonce = u128::from_str_radix(nonce, 16).map_err(|_| SecretError::Malformed)?;
        let mac = unhex(mac).ok_or(SecretError::Malformed)?;
        let matches = |key: &[u8; 32]| hmac(key, purpose, at, nonce, payload).verify_slice(&mac);
        if !self.keys().iter().any(|k| matches(k).is_ok()) {
            return Err(SecretError::Mismatch);
        }
        let now = now_secs();
        let skew = now.abs_diff(at);
        if skew > WINDOW.as_secs() {
            return Err(SecretError::Skewed(skew));
        }
        self.seen.lock().admit(nonce, now)
    }
}

fn hmac(key: &[u8; 32], purpose: &str, at: u64, nonce: u128, payload: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(&(purpose.len() as u64).to_le_bytes());
    m.update(purpose.as_bytes());
    m.update(&at.to_le_bytes());
    m.update(&nonce.to_le_bytes());
    m.update(payload);
    m
}

fn mac(key: &[u8; 32], purpose: &str, at: u64, nonce: u128, payload: &[u8]) -> Vec<u8> {
    hmac(key, purpose, at, nonce, payload)
        .finalize()
        .into_bytes()
        .to_vec()
}

fn key_of(secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kindling cluster secret v1\0");
    h.update(secret);
    h.finalize().into()
}

/// The keys of the secrets in `path`: its text's non-empty lines when it holds several (the
/// first signs), else its whole content, trimmed; each at least [`MIN_SECRET_LEN`] bytes.
fn read_keys(path: &Path) -> Result<Vec<[u8; 32]>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the cluster secret {}: {e}", path.display()))?;
    let whole = bytes.trim_ascii();
    let lines: Vec<&[u8]> = match std::str::from_utf8(whole) {
        Ok(text) if text.lines().filter(|l| !l.trim().is_empty()).count() > 1 => text
            .lines()
            .map(|l| l.trim().as_bytes())
            .filter(|l| !l.is_empty())
            .collect(),
        _ => vec![whole],
    };
    for (i, secret) in lines.iter().enumerate() {
        if secret.len() < MIN_SECRET_LEN {
            let which = if lines.len() > 1 {
                format!("'s secret on line {}", i + 1)
            } else {
                String::new()
            };
            return Err(format!(
                "the cluster secret {}{which} holds {} bytes; it needs at least \
                 {MIN_SECRET_LEN} (e.g. head -c 32 /dev/urandom | base64 > {})",
                path.display(),
                secret.len(),
                path.display()
            ));
        }
    }
    Ok(lines.into_iter().map(key_of).collect())
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Seen {
    fn admit(&mut self, nonce: u128, now: u64) -> Result<(), SecretError> {
        while let Some(&(at, n)) = self.order.front() {
            if now.saturating_sub(at) <= 2 * WINDOW.as_secs() {
                break;
            }
            self.order.pop_front();
            self.nonces.remove(&n);
        }
        if self.nonces.contains(&nonce) {
            return Err(SecretError::Replayed);
        }
        if self.nonces.len() >= MAX_SEEN {
            return Err(SecretError::Replayed);
        }
        self.nonces.insert(nonce);
        self.order.push_back((now, nonce));
        Ok(())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_proves_the_secret_the_purpose_and_the_payload_once() {
        let a = ClusterSecret::from_bytes(b"0123456789abcdef0123456789abcdef");
        let b = ClusterSecret::from_bytes(b"another secret of thirty-two bytes");
        let token = a.sign("vote", b"payload");
        assert_eq!(a.verify("vote", Some(&token), b"payload"), Ok(()));
        assert_eq!(
            a.verify("vote", Some(&token), b"payload"),
            Err(SecretError::Replayed)
        );
        let token = a.sign("vote", b"payload");
        assert_eq!(
            b.verify("vote", Some(&token), b"payload"),
            Err(SecretError::Mismatch)
        );
        assert_eq!(
            a.verify("append", Some(&token), b"payload"),
            Err(SecretError::Mismatch)
        );
        assert_eq!(
            a.verify("vote", Some(&token), b"payl0ad"),
            Err(SecretError::Mismatch)
        );
        assert_eq!(
            a.verify("vote", None, b"payload"),
            Err(SecretError::Missing)
        );
        for bad in ["", "1.2", "x.y.z", "1.ff.abc"] {
            assert_eq!(
                a.verify("vote", Some(bad), b"p"),
                Err(SecretError::Malformed),
                "{bad}"
            );
        }
        // A token from outside the window, well signed, is refused.
        let old = now_secs() - 2 * WINDOW.as_secs();
        let nonce = 7u128;
        let stale = format!(
            "{old}.{nonce:032x}.{}",
            hex(&mac(&a.keys()[0], "vote", old, nonce, b"p"))
        );
        assert!(matches!(
            a.verify("vote", Some(&stale), b"p"),
            Err(SecretError::Skewed(s)) if s >= 2 * WINDOW.as_secs()
        ));
        assert!(!format!("{a:?}").contains("0123"));
    }

    #[test]
    fn a_short_or_missing_file_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "hunter2\n").unwrap();
        let e = ClusterSecret::read(&short).unwrap_err();
        assert!(e.contains("7 bytes") && !e.contains("hunter2"), "{e}");
        assert!(ClusterSecret::read(&dir.path().join("none")).is_err());
        let good = dir.path().join("good");
        std::fs::write(&good, "0123456789abcdef0123456789abcdef\n").unwrap();
        let from_file = ClusterSecret::read(&good).unwrap();
        let direct = ClusterSecret::from_bytes(b"0123456789abcdef0123456789abcdef");
        let token = direct.sign("x", b"");
        assert_eq!(from_file.verify("x", Some(&token), b""), Ok(()));
    }

    /// The rotation the module describes, step by step, between a member that has taken each
    /// step and one that has not yet: neither ever refuses the other.
    #[test]
    fn a_secret_is_rotated_in_three_steps_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (
            "the old secret, thirty-two bytes long",
            "the new secret, also thirty-two bytes",
        );
        let write = |file: &str, text: String| std::fs::write(dir.path().join(file), text).unwrap();
        write("a", format!("{old}\n"));
        write("b", format!("{old}\n"));
        let watch =
            |file: &str| ClusterSecret::watch(&dir.path().join(file), Duration::ZERO).unwrap();
        let (a, b) = (watch("a"), watch("b"));
        let talk = |from: &ClusterSecret, to: &ClusterSecret| {
            to.verify("vote", Some(&from.sign("vote", b"p")), b"p")
        };
        let steps = [
            format!("{old}\n{new}\n"), // 1: the new one also verifies
            format!("{new}\n{old}\n"), // 2: the new one signs
            format!("{new}\n"),        // 3: the old one is gone
        ];
        for step in steps {
            write("a", step.clone());
            assert_eq!(talk(&a, &b), Ok(()), "a has taken the step, b not yet");
            assert_eq!(talk(&b, &a), Ok(()), "b has not taken the step, a has");
            write("b", step);
            assert_eq!(talk(&a, &b), Ok(()));
            assert_eq!(talk(&b, &a), Ok(()));
        }
        let only_old = ClusterSecret::from_bytes(old.as_bytes());
        assert_eq!(
            talk(&only_old, &a),
            Err(SecretError::Mismatch),
            "the old one is refused"
        );
        // A change that does not parse leaves the secrets in use.
        write("a", format!("{new}\nhunter2\n"));
        assert_eq!(talk(&b, &a), Ok(()));
        let e = ClusterSecret::read(&dir.path().join("a")).unwrap_err();
        assert!(e.contains("line 2") && !e.contains("hunter2"), "{e}");
    }
}
