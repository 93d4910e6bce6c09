//! Sealing: AES-256-GCM with a random nonce per value and the value's context (table, row)
//! as associated data, so a sealed value copied into another row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;

const PREFIX: &str = "v1:";

/// The operator's 32-byte key. Debug never prints it.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("seal key: expected 64 hex characters (32 bytes), found {0} characters")]
    KeyFormat(usize),
    #[error("a sealed value did not open: wrong key, or the value was altered or moved")]
    Open,
    #[error("a sealed value is malformed")]
    Malformed,
}

impl SealKey {
    /// Parses 64 hex characters (surrounding white space ignored).
    pub fn from_hex(s: &str) -> Result<SealKey, SealError> {
        let s = s.trim();
        let bytes = hex::decode(s).map_err(|_| SealError::KeyFormat(s.len()))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| SealError::KeyFormat(s.len()))?;
        Ok(SealKey(arr))
    }

    pub fn generate() -> SealKey {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        SealKey(k)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    pub fn new(key: &SealKey) -> Sealer {
        Sealer { cipher: Aes256Gcm::new_from_slice(&key.0).expect("32-byte key") }
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .expect("AES-GCM encryption does not fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(out))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let b64 = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64).map_err(|_| SealError::Malformed)?;
        if raw.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = raw.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() })
            .map_err(|_| SealError::Open)
    }

    pub fn open_string(&self, context: &str, sealed: &str) -> Result<String, SealError> {
        String::from_utf8(self.open(context, sealed)?).map_err(|_| SealError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_context_binding() {
        let s = Sealer::new(&SealKey::generate());
        let sealed = s.seal("credential:1", b"arn:aws:iam::123456789012:role/x");
        assert!(!sealed.contains("123456789012"));
        assert_eq!(s.open("credential:1", &sealed).unwrap(), b"arn:aws:iam::123456789012:role/x");
        assert_eq!(s.open("credential:2", &sealed), Err(SealError::Open));
        let other = Sealer::new(&SealKey::generate());
        assert_eq!(other.open("credential:1", &sealed), Err(SealError::Open));
    }

    #[test]
    fn key_parsing() {
        let k = SealKey::generate();
        assert_eq!(SealKey::from_hex(&format!(" {}\n", k.to_hex())).unwrap().0, k.0);
        assert_eq!(SealKey::from_hex("abcd").unwrap_err(), SealError::KeyFormat(4));
        assert!(!format!("{k:?}").contains(&k.to_hex()));
    }
}
