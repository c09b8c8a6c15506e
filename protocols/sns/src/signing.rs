//! Message signing: the `Signature`, `SignatureVersion` and `SigningCertURL` fields that SNS
//! puts on every message it POSTs to an HTTP endpoint and every envelope it puts in a queue.
//!
//! Subscribers check a message by fetching the certificate at `SigningCertURL`, taking its
//! public key, and verifying `Signature` over the message's canonical string (see
//! [`Signed::canonical`]). The broker keeps one RSA-2048 key and a self-signed certificate for
//! it; both are journalled through [`Signer::to_bytes`] so that signatures made before a
//! restart still verify against the certificate served after it.
//!
//! An RSA-2048 signature costs milliseconds of CPU (SHA1withRSA, the default, comes from the
//! RustCrypto `rsa` crate), and a message published to a topic is delivered to each of its
//! subscriptions with the same signed fields: only the unsigned `UnsubscribeURL` and
//! `SigningCertURL` differ. So [`Signer::sign`] remembers the signatures of the most recent
//! canonical strings and signs each one once, however many subscriptions deliver it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// Subject of the self-signed certificate; subscribers only take its public key.
const CERTIFICATE_COMMON_NAME: &str = "mqbridge SNS signing";
/// How long the certificate is valid. Long, because the key is kept across restarts and
/// nothing renews the certificate.
const CERTIFICATE_VALIDITY_DAYS: i64 = 20 * 365;
/// First byte of [`Signer::to_bytes`], so that a later layout can be told apart from this one.
const FORMAT_VERSION: u8 = 1;
/// Signatures remembered: far more than the messages the delivery tasks have in hand at once
/// (16 per subscription), at about 400 bytes each.
const SIGNATURES_REMEMBERED: usize = 1024;

/// Why a signer could not be made or restored.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key generation failed: {0}")]
    Generate(String),
    #[error("stored signing key is unreadable: {0}")]
    Corrupt(String),
}

/// The topic attribute `SignatureVersion`: which hash the RSA signature is made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignatureVersion {
    /// SHA1withRSA, the default for a topic without the attribute.
    #[default]
    V1,
    /// SHA256withRSA.
    V2,
}

impl SignatureVersion {
    /// Reads the attribute value ("1" or "2"); anything else is not a version SNS knows.
    pub fn parse(value: &str) -> Option<SignatureVersion> {
        match value {
            "1" => Some(SignatureVersion::V1),
            "2" => Some(SignatureVersion::V2),
            _ => None,
        }
    }

    /// The value for the message's `SignatureVersion` field and the topic attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "1",
            SignatureVersion::V2 => "2",
        }
    }
}

/// The fields that are signed, per message type. Values are the plain strings, as they are
/// after JSON decoding (a newline in `message` is a newline here, not `\n`).
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    /// A published message; its `Type` is `Notification`.
    Notification {
        message: &'a str,
        message_id: &'a str,
        /// Signed only when present; the JSON must then carry `Subject` too, and omit it
        /// when this is `None`.
        subject: Option<&'a str>,
        timestamp: &'a str,
        topic_arn: &'a str,
    },
    /// `SubscriptionConfirmation` and `UnsubscribeConfirmation`, which share a shape; `kind`
    /// is the `Type` value.
    Confirmation {
        kind: &'a str,
        message: &'a str,
        message_id: &'a str,
        subscribe_url: &'a str,
        timestamp: &'a str,
        token: &'a str,
        topic_arn: &'a str,
    },
}

impl Signed<'_> {
    /// The string that is signed: for each signed field, in byte order of field name, the
    /// name, a newline, the value and a newline. This is the layout verifiers rebuild from
    /// the JSON, so any change here breaks every subscriber's check.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        let mut field = |name: &str, value: &str| {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        };
        match *self {
            Signed::Notification {
                message,
                message_id,
                subject,
                timestamp,
                topic_arn,
            } => {
                field("Message", message);
                field("MessageId", message_id);
                if let Some(subject) = subject {
                    field("Subject", subject);
                }
                field("Timestamp", timestamp);
                field("TopicArn", topic_arn);
                field("Type", "Notification");
            }
            Signed::Confirmation {
                kind,
                message,
                message_id,
                subscribe_url,
                timestamp,
                token,
                topic_arn,
            } => {
                field("Message", message);
                field("MessageId", message_id);
                field("SubscribeURL", subscribe_url);
                field("Timestamp", timestamp);
                field("Token", token);
                field("TopicArn", topic_arn);
                field("Type", kind);
            }
        }
        out
    }
}

/// The broker's signing key and the certificate served at `SigningCertURL`.
pub struct Signer {
    /// Makes the SHA256withRSA signatures.
    key: KeyPair,
    /// The same key for SHA1withRSA: aws-lc-rs, like ring, refuses to make SHA-1 signatures.
    sha1_key: SigningKey<Sha1>,
    /// The key as PKCS#8 DER, kept for [`Signer::to_bytes`].
    pkcs8: Vec<u8>,
    certificate_pem: String,
    /// The most recent signatures, by version and SHA-256 of the canonical string.
    recent: Mutex<Recent>,
}

/// A signature slot per canonical string; the oldest go first.
#[derive(Default)]
struct Recent {
    slots: HashMap<RecentKey, Arc<OnceLock<String>>>,
    order: VecDeque<RecentKey>,
}

type RecentKey = (SignatureVersion, [u8; 32]);

impl Recent {
    /// The slot of `key`, new and empty if it is not remembered.
    fn slot(&mut self, key: RecentKey) -> Arc<OnceLock<String>> {
        if let Some(slot) = self.slots.get(&key) {
            return Arc::clone(slot);
        }
        if self.order.len() >= SIGNATURES_REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.slots.remove(&oldest);
        }
        self.order.push_back(key);
        Arc::clone(self.slots.entry(key).or_default())
    }
}

impl fmt::Debug for Signer {
    // Leaves the private key out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// A new RSA-2048 key and a self-signed certificate for it.
    pub fn generate() -> Result<Signer, SigningError> {
        let key = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|e| SigningError::Generate(e.to_string()))?;
        let pkcs8 = key
            .as_der()
            .map_err(|e| SigningError::Generate(e.to_string()))?;
        let certificate_pem = self_signed_certificate(pkcs8.as_ref())?;
        Signer::from_parts(pkcs8.as_ref(), certificate_pem).map_err(|e| match e {
            SigningError::Corrupt(text) => SigningError::Generate(text),
            other => other,
        })
    }

    /// The signer for the broker's journal, so that the key and the certificate survive
    /// restarts. It holds the private key unencrypted. Layout: format version (1 byte),
    /// PKCS#8 DER length (u32 big-endian), the PKCS#8 DER of the key, then the certificate
    /// PEM to the end.
    pub fn to_bytes(&self) -> Vec<u8> {
        let pkcs8 = &self.pkcs8;
        // An RSA-2048 key's PKCS#8 is about 1.2 KB, so the length always fits.
        let length = u32::try_from(pkcs8.len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(5 + pkcs8.len() + self.certificate_pem.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(pkcs8);
        out.extend_from_slice(self.certificate_pem.as_bytes());
        out
    }

    /// Restores a signer from [`Signer::to_bytes`]; anything malformed is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Signer, SigningError> {
        let corrupt = |what: &str| SigningError::Corrupt(what.to_owned());
        let (&version, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
        if version != FORMAT_VERSION {
            return Err(SigningError::Corrupt(format!(
                "unknown format version {version}"
            )));
        }
        let (length, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("truncated"))?;
        let length = usize::try_from(u32::from_be_bytes(*length))
            .map_err(|_| corrupt("key length out of range"))?;
        if rest.len() < length {
            return Err(corrupt("truncated key"));
        }
        let (pkcs8, pem) = rest.split_at(length);
        let pem = std::str::from_utf8(pem).map_err(|_| corrupt("certificate is not UTF-8"))?;
        Signer::from_parts(pkcs8, pem.to_owned())
    }

    /// The PEM served at `SigningCertURL`.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Base64 PKCS#1 v1.5 signature over `message`'s canonical string: SHA1withRSA for
    /// version 1, SHA256withRSA for version 2. PKCS#1 v1.5 signatures are deterministic, so a
    /// remembered one is the very signature signing again would make.
    ///
    /// # Panics
    ///
    /// Only if the platform's random source fails (both signers use it for blinding); the
    /// key was checked when the signer was made, and any message can be hashed.
    pub fn sign(&self, version: SignatureVersion, message: &Signed<'_>) -> String {
        let canonical = message.canonical();
        let key = (version, Sha256::digest(canonical.as_bytes()).into());
        let slot = self
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slot(key);
        // The lock is not held while signing; a task delivering the same message to another
        // subscription meanwhile waits for this signature instead of making its own.
        slot.get_or_init(|| self.sign_uncached(version, &canonical))
            .clone()
    }

    fn sign_uncached(&self, version: SignatureVersion, canonical: &str) -> String {
        let signature = match version {
            SignatureVersion::V1 => self.sha1_key.sign(canonical.as_bytes()).to_vec(),
            SignatureVersion::V2 => {
                let mut signature = vec![0; self.key.public_modulus_len()];
                self.key
                    .sign(
                        &RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        canonical.as_bytes(),
                        &mut signature,
                    )
                    .expect("RSA signing with a validated key");
                signature
            }
        };
        BASE64.encode(signature)
    }

    /// Builds a signer from a PKCS#8 key and its certificate, checking that the certificate
    /// is for this key: a mismatch would make every signature fail verification.
    fn from_parts(pkcs8: &[u8], certificate_pem: String) -> Result<Signer, SigningError> {
        let corrupt =
            |what: &str, e: &dyn fmt::Display| SigningError::Corrupt(format!("{what}: {e}"));
        let key = KeyPair::from_pkcs8(pkcs8).map_err(|e| corrupt("key", &e))?;
        let rsa_key = rsa::PrivateKey::from_pkcs8_der(pkcs8).map_err(|e| corrupt("key", &e))?;
        let certified = certificate_public_key(&certificate_pem)?;
        if certified != key.public_key().as_ref() {
            return Err(SigningError::Corrupt(
                "certificate is for another key".to_owned(),
            ));
        }
        Ok(Signer {
            key,
            sha1_key: SigningKey::new(rsa_key),
            pkcs8: pkcs8.to_vec(),
            certificate_pem,
            recent: Mutex::default(),
        })
    }
}

/// A self-signed certificate for the PKCS#8 RSA key, as PEM.
fn self_signed_certificate(pkcs8: &[u8]) -> Result<String, SigningError> {
    let failed = |e: rcgen::Error| SigningError::Generate(format!("certificate: {e}"));
    let key = rcgen::KeyPair::try_from(pkcs8).map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, CERTIFICATE_COMMON_NAME);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    // A day of slack before now, so that a subscriber whose clock runs behind still sees
    // the certificate as valid.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CERTIFICATE_VALIDITY_DAYS);
    Ok(params.self_signed(&key).map_err(failed)?.pem())
}

/// The DER `RSAPublicKey` inside a PEM certificate.
fn certificate_public_key(pem: &str) -> Result<Vec<u8>, SigningError> {
    let corrupt = |what: &str, e: &dyn fmt::Display| SigningError::Corrupt(format!("{what}: {e}"));
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| corrupt("certificate PEM", &e))?;
    let certificate = pem.parse_x509().map_err(|e| corrupt("certificate", &e))?;
    Ok(certificate.public_key().subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{
        RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
        UnparsedPublicKey, VerificationAlgorithm,
    };

    /// Key generation takes a noticeable moment, so the tests share one signer.
    fn signer() -> &'static Signer {
        static SIGNER: OnceLock<Signer> = OnceLock::new();
        SIGNER.get_or_init(|| Signer::generate().expect("generate"))
    }

    const NOTIFICATION: Signed<'static> = Signed::Notification {
        message: "Hello world!\nsecond line",
        message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        subject: Some("My First Message"),
        timestamp: "2012-05-02T00:54:06.655Z",
        topic_arn: "arn:aws:sns:us-east-1:000000000000:MyTopic",
    };

    const CONFIRMATION: Signed<'static> = Signed::Confirmation {
        kind: "SubscriptionConfirmation",
        message: "You have chosen to subscribe to the topic.",
        message_id: "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        subscribe_url: "http://localhost:4566/?Action=ConfirmSubscription&Token=abc",
        timestamp: "2012-04-26T20:45:04.751Z",
        token: "abc",
        topic_arn: "arn:aws:sns:us-east-1:000000000000:MyTopic",
    };

    /// Verifies the way a subscriber does: with the key from the certificate PEM only.
    fn verifies(
        pem: &str,
        version: SignatureVersion,
        message: &Signed<'_>,
        signature: &str,
    ) -> bool {
        let algorithm: &'static dyn VerificationAlgorithm = match version {
            SignatureVersion::V1 => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            SignatureVersion::V2 => &RSA_PKCS1_2048_8192_SHA256,
        };
        let public_key = certificate_public_key(pem).expect("certificate");
        let signature = BASE64.decode(signature).expect("base64");
        UnparsedPublicKey::new(algorithm, public_key)
            .verify(message.canonical().as_bytes(), &signature)
            .is_ok()
    }

    #[test]
    fn canonical_notification_lists_fields_in_name_order() {
        let expected = "Message\nHello world!\nsecond line\n\
                        MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
                        Subject\nMy First Message\n\
                        Timestamp\n2012-05-02T00:54:06.655Z\n\
                        TopicArn\narn:aws:sns:us-east-1:000000000000:MyTopic\n\
                        Type\nNotification\n";
        assert_eq!(NOTIFICATION.canonical(), expected);
    }

    #[test]
    fn canonical_notification_without_subject_leaves_it_out() {
        let Signed::Notification {
            message,
            message_id,
            timestamp,
            topic_arn,
            ..
        } = NOTIFICATION
        else {
            unreachable!()
        };
        let unsubjected = Signed::Notification {
            message,
            message_id,
            subject: None,
            timestamp,
            topic_arn,
        };
        let canonical = unsubjected.canonical();
        assert!(!canonical.contains("Subject"));
        assert!(canonical.starts_with("Message\nHello world!\nsecond line\nMessageId\n"));
        assert!(canonical.contains("\nTimestamp\n2012-05-02T00:54:06.655Z\nTopicArn\n"));
    }

    #[test]
    fn canonical_confirmation_signs_url_and_token() {
        let expected = "Message\nYou have chosen to subscribe to the topic.\n\
                        MessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n\
                        SubscribeURL\nhttp://localhost:4566/?Action=ConfirmSubscription&Token=abc\n\
                        Timestamp\n2012-04-26T20:45:04.751Z\n\
                        Token\nabc\n\
                        TopicArn\narn:aws:sns:us-east-1:000000000000:MyTopic\n\
                        Type\nSubscriptionConfirmation\n";
        assert_eq!(CONFIRMATION.canonical(), expected);
    }

    #[test]
    fn signatures_verify_with_the_certificate_key() {
        let signer = signer();
        for version in [SignatureVersion::V1, SignatureVersion::V2] {
            for message in [NOTIFICATION, CONFIRMATION] {
                let signature = signer.sign(version, &message);
                assert!(
                    verifies(signer.certificate_pem(), version, &message, &signature),
                    "{version:?} {message:?}"
                );
            }
        }
    }

    #[test]
    fn versions_use_different_hashes() {
        let signer = signer();
        let v1 = signer.sign(SignatureVersion::V1, &NOTIFICATION);
        assert!(!verifies(
            signer.certificate_pem(),
            SignatureVersion::V2,
            &NOTIFICATION,
            &v1
        ));
        let v2 = signer.sign(SignatureVersion::V2, &NOTIFICATION);
        assert!(!verifies(
            signer.certificate_pem(),
            SignatureVersion::V1,
            &NOTIFICATION,
            &v2
        ));
    }

    #[test]
    fn a_changed_field_fails_verification() {
        let signer = signer();
        let Signed::Notification {
            message_id,
            subject,
            timestamp,
            topic_arn,
            ..
        } = NOTIFICATION
        else {
            unreachable!()
        };
        let tampered = Signed::Notification {
            message: "Hello world?",
            message_id,
            subject,
            timestamp,
            topic_arn,
        };
        let no_subject = Signed::Notification {
            message: "Hello world!\nsecond line",
            message_id,
            subject: None,
            timestamp,
            topic_arn,
        };
        for version in [SignatureVersion::V1, SignatureVersion::V2] {
            let signature = signer.sign(version, &NOTIFICATION);
            assert!(!verifies(
                signer.certificate_pem(),
                version,
                &tampered,
                &signature
            ));
            assert!(!verifies(
                signer.certificate_pem(),
                version,
                &no_subject,
                &signature
            ));
        }
    }

    #[test]
    fn a_changed_confirmation_kind_fails_verification() {
        let signer = signer();
        let Signed::Confirmation {
            message,
            message_id,
            subscribe_url,
            timestamp,
            token,
            topic_arn,
            ..
        } = CONFIRMATION
        else {
            unreachable!()
        };
        let unsubscribe = Signed::Confirmation {
            kind: "UnsubscribeConfirmation",
            message,
            message_id,
            subscribe_url,
            timestamp,
            token,
            topic_arn,
        };
        let signature = signer.sign(SignatureVersion::V2, &CONFIRMATION);
        assert!(!verifies(
            signer.certificate_pem(),
            SignatureVersion::V2,
            &unsubscribe,
            &signature
        ));
        let signature = signer.sign(SignatureVersion::V1, &unsubscribe);
        assert!(verifies(
            signer.certificate_pem(),
            SignatureVersion::V1,
            &unsubscribe,
            &signature
        ));
    }

    #[test]
    fn round_trip_keeps_key_and_certificate() {
        let signer = signer();
        let restored = Signer::from_bytes(&signer.to_bytes()).expect("from_bytes");
        assert_eq!(restored.certificate_pem(), signer.certificate_pem());
        for version in [SignatureVersion::V1, SignatureVersion::V2] {
            let signature = restored.sign(version, &NOTIFICATION);
            // PKCS#1 v1.5 is deterministic: the same key gives the same signature.
            assert_eq!(signature, signer.sign(version, &NOTIFICATION));
            assert!(verifies(
                signer.certificate_pem(),
                version,
                &NOTIFICATION,
                &signature
            ));
        }
    }

    #[test]
    fn certificate_is_a_pem_certificate() {
        let pem = signer().certificate_pem();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        let certificate = parsed.parse_x509().expect("x509");
        let subject = certificate.subject().to_string();
        assert!(subject.contains(CERTIFICATE_COMMON_NAME), "{subject}");
        assert!(certificate.validity().is_valid());
    }

    #[test]
    fn from_bytes_rejects_garbage() {
        let good = signer().to_bytes();
        let mut wrong_version = good.clone();
        wrong_version[0] = 9;
        let mut bad_key = good.clone();
        bad_key[20] ^= 0xff;
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![FORMAT_VERSION],
            vec![FORMAT_VERSION, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            b"not a signer at all".to_vec(),
            wrong_version,
            bad_key,
            good[..good.len() - 40].to_vec(),
            good[..100].to_vec(),
        ];
        for case in cases {
            assert!(Signer::from_bytes(&case).is_err(), "{case:?}");
        }
    }

    #[test]
    fn from_bytes_rejects_a_certificate_for_another_key() {
        let other = Signer::generate().expect("generate");
        let mut mixed = signer().to_bytes();
        let pem_start = mixed.len() - signer().certificate_pem().len();
        mixed.truncate(pem_start);
        mixed.extend_from_slice(other.certificate_pem().as_bytes());
        let error = Signer::from_bytes(&mixed).expect_err("mismatch");
        assert!(error.to_string().contains("another key"), "{error}");
    }

    #[test]
    fn signature_version_parses_attribute_values() {
        assert_eq!(SignatureVersion::parse("1"), Some(SignatureVersion::V1));
        assert_eq!(SignatureVersion::parse("2"), Some(SignatureVersion::V2));
        assert_eq!(SignatureVersion::parse("3"), None);
        assert_eq!(SignatureVersion::parse(""), None);
        assert_eq!(SignatureVersion::V2.as_str(), "2");
        assert_eq!(SignatureVersion::default(), SignatureVersion::V1);
    }

    #[test]
    fn signatures_are_remembered_and_the_oldest_forgotten() {
        // A signer of its own: the shared one's memory is filled by the other tests.
        let signer = Signer::generate().expect("generate");
        let first = signer.sign(SignatureVersion::V2, &NOTIFICATION);
        assert_eq!(signer.sign(SignatureVersion::V2, &NOTIFICATION), first);
        let v1 = signer.sign(SignatureVersion::V1, &NOTIFICATION);
        assert_ne!(v1, first, "each version has its own slot");
        let recent = || signer.recent.lock().expect("lock");
        assert_eq!(recent().slots.len(), 2);
        for n in 0..SIGNATURES_REMEMBERED {
            let mut digest = [0; 32];
            digest[..8].copy_from_slice(&(n as u64).to_be_bytes());
            recent().slot((SignatureVersion::V1, digest));
        }
        assert_eq!(recent().slots.len(), SIGNATURES_REMEMBERED);
        assert_eq!(recent().order.len(), SIGNATURES_REMEMBERED);
        let key = (
            SignatureVersion::V2,
            Sha256::digest(NOTIFICATION.canonical().as_bytes()).into(),
        );
        assert!(!recent().slots.contains_key(&key), "the oldest went first");
        assert!(verifies(
            signer.certificate_pem(),
            SignatureVersion::V2,
            &NOTIFICATION,
            &signer.sign(SignatureVersion::V2, &NOTIFICATION)
        ));
    }
}
