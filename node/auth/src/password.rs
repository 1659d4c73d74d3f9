//! Password hashes: argon2id in PHC string form (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`),
//! salted per password, slow by design. Verification is constant-time in the hash, and an
//! unknown user is checked against a hash of nothing so that it costs the same as a known one.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use std::sync::OnceLock;

/// The shortest password the users command takes.
pub const MIN_PASSWORD_LEN: usize = 8;

/// A new argon2id hash of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with its default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches `phc`; an unreadable hash matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Spends the time of one verification on a user that does not exist.
pub fn verify_nobody(password: &str) {
    static NOBODY: OnceLock<String> = OnceLock::new();
    let phc = NOBODY.get_or_init(|| hash_password("\u{0}no such user\u{0}"));
    let _ = verify(password, phc);
}

/// Whether `phc` is a hash this module can verify.
pub fn is_hash(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify_only_their_password() {
        let a = hash_password("correct horse");
        let b = hash_password("correct horse");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(is_hash(&a));
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsf", &a));
        assert!(!verify("correct horse", "not a hash"));
        assert!(!is_hash("$2b$12$abcdefghijklmnopqrstuv"));
    }
}
