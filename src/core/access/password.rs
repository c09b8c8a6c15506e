//! Password hashes in RabbitMQ's `rabbit_password_hashing_sha256` form, so that a definitions
//! file exported from RabbitMQ imports here with its users' passwords intact, and ours into it:
//! base64(salt ‖ SHA-256(salt ‖ password)) with a 4-octet random salt.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The algorithm name definitions files carry next to each hash.
pub const HASHING_ALGORITHM: &str = "rabbit_password_hashing_sha256";

const SALT_LEN: usize = 4;

/// A fresh salted hash of `password`.
pub fn hash(password: &str) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    STANDARD.encode(salted(&salt, password))
}

/// Whether `password` is the one `hash` was made from. A hash that is not valid base64 or too
/// short (a user whose password was cleared, say) matches nothing.
pub fn verify(hash: &str, password: &str) -> bool {
    let Ok(decoded) = STANDARD.decode(hash) else {
        return false;
    };
    if decoded.len() <= SALT_LEN {
        return false;
    }
    let (salt, _) = decoded.split_at(SALT_LEN);
    constant_time_eq(&salted(salt, password), &decoded)
}

/// Whether `hash` has the shape of one of ours (for definitions imports).
pub fn is_valid(hash: &str) -> bool {
    STANDARD
        .decode(hash)
        .is_ok_and(|decoded| decoded.len() == SALT_LEN + 32)
}

fn salted(salt: &[u8], password: &str) -> Vec<u8> {
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(password.as_bytes())
        .finalize();
    let mut out = Vec::with_capacity(salt.len() + digest.len());
    out.extend_from_slice(salt);
    out.extend_from_slice(&digest);
    out
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hashed = hash("s3cret");
        assert!(is_valid(&hashed));
        assert!(verify(&hashed, "s3cret"));
        assert!(!verify(&hashed, "s3cret "));
        assert_ne!(hash("s3cret"), hashed, "every hash has its own salt");
    }

    /// A hash RabbitMQ wrote (`rabbitmqctl hash_password guest`-style input, computed here by
    /// the documented construction with a fixed salt) verifies.
    #[test]
    fn the_construction_is_rabbitmqs() {
        let salt = [0x90, 0x8d, 0xc6, 0x0a];
        let mut expected = salt.to_vec();
        expected.extend_from_slice(&Sha256::digest([&salt[..], b"guest"].concat()));
        let stored = STANDARD.encode(&expected);
        assert!(verify(&stored, "guest"));
        assert!(!verify("", "guest"));
        assert!(!verify("not base64!", "guest"));
    }
}
