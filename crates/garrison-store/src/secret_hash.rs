//! Access-key secrets at rest: argon2id with a random salt, as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, argon2's defaults). Garrison's own secrets
//! are 256-bit random, but an operator may give the root key, and a leaked database should not
//! give a cheap way to test guesses.
//!
//! Each hash works through 19 MiB of memory. Taken from the allocator, that memory stayed with
//! the process after a sign-in until something else made the allocator purge: an idle server
//! held 19 MiB more after one sign-in (bench/api). Here it is mapped for the one hash and
//! unmapped right after, so it is back with the system (and its contents gone) when the call
//! returns.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

/// Working memory for one hash: anonymous pages of its own, or the heap if they can't be had.
enum Workspace {
    Mapped { ptr: *mut Block, len: usize },
    Heap(Vec<Block>),
}

impl Workspace {
    fn new(blocks: usize) -> Workspace {
        let bytes = blocks.saturating_mul(size_of::<Block>());
        if bytes > 0 {
            // SAFETY: a fresh private anonymous mapping, not aliased by anything else.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if ptr != libc::MAP_FAILED {
                return Workspace::Mapped { ptr: ptr.cast(), len: blocks };
            }
        }
        Workspace::Heap(vec![Block::default(); blocks])
    }

    fn blocks(&mut self) -> &mut [Block] {
        match self {
            // SAFETY: the mapping is page-aligned (Block needs 64), `len` blocks long, zeroed
            // by the kernel (a valid Block: plain integers), and borrowed mutably through self.
            Workspace::Mapped { ptr, len } => unsafe { std::slice::from_raw_parts_mut(*ptr, *len) },
            Workspace::Heap(v) => v,
        }
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if let Workspace::Mapped { ptr, len } = *self {
            // SAFETY: the mapping made in `new`, of this size, unmapped once.
            let rc = unsafe { libc::munmap(ptr.cast(), len * size_of::<Block>()) };
            #[cfg(test)]
            UNMAPPED.with(|u| u.set(Some((ptr as usize, rc))));
            let _ = rc;
        }
    }
}

#[cfg(test)]
thread_local! {
    /// The last workspace this thread unmapped, and munmap's answer.
    static UNMAPPED: std::cell::Cell<Option<(usize, i32)>> = const { std::cell::Cell::new(None) };
}

fn argon2(params: &Params, secret: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    let mut memory = Workspace::new(params.block_count());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()).hash_password_into_with_memory(
        secret,
        salt,
        out,
        memory.blocks(),
    )
}

/// The PHC string of `secret` under a new random salt.
pub(crate) fn hash(secret: &str) -> String {
    const ANY: &str = "argon2id with its default parameters hashes any secret under a generated salt";
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::DEFAULT;
    let mut raw = [0u8; 64];
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2(&params, secret.as_bytes(), salt.as_salt().decode_b64(&mut raw).expect(ANY), &mut out).expect(ANY);
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect(ANY),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect(ANY)),
    }
    .to_string()
}

/// Whether `secret` is the one `phc` was made from. Only argon2id strings are accepted (the
/// only kind `hash` makes); anything malformed is no match. Outputs compare in constant time.
pub(crate) fn verify(secret: &str, phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else { return false };
    let (Ok(Algorithm::Argon2id), Some(expected), Some(salt)) = (Algorithm::try_from(h.algorithm), h.hash, h.salt)
    else {
        return false;
    };
    if h.version.is_some_and(|v| v != u32::from(Version::V0x13)) {
        return false;
    }
    let Ok(params) = Params::try_from(&h) else { return false };
    let mut raw = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut raw) else { return false };
    let mut out = vec![0u8; expected.len()];
    argon2(&params, secret.as_bytes(), salt, &mut out).is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_are_argon2s_own_phc_strings_both_ways() {
        let mine = hash("a secret of thirty-two characters");
        assert!(mine.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{mine}");
        let parsed = PasswordHash::new(&mine).unwrap();
        assert!(Argon2::default().verify_password(b"a secret of thirty-two characters", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"a secret of thirty-two characterz", &parsed).is_err());

        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default().hash_password(b"another secret", &salt).unwrap().to_string();
        assert!(verify("another secret", &theirs));
        assert!(!verify("another secret ", &theirs));
        assert!(verify("a secret of thirty-two characters", &mine));
        // Two hashes of one secret differ (fresh salt) and both verify.
        assert_ne!(hash("same"), hash("same"));
    }

    #[test]
    fn malformed_or_foreign_strings_match_nothing() {
        let good = hash("s");
        let other_alg = good.replace("$argon2id$", "$argon2i$");
        let other_version = good.replace("$v=19$", "$v=16$");
        let cut = &good[..good.len() - 4];
        let bad_param = good.replace("t=2", "x=2");
        let mut flipped = good.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        for s in ["", "$argon2id$", "not a hash", &other_alg, &other_version, cut, &bad_param, &flipped] {
            assert!(!verify("s", s), "{s:?} matched");
        }
    }

    #[test]
    fn the_working_memory_is_mapped_zeroed_and_given_back() {
        let mut w = Workspace::new(Params::DEFAULT.block_count());
        let Workspace::Mapped { ptr, len } = w else { panic!("not mapped") };
        assert_eq!(len, 19456);
        assert!(w.blocks().iter().all(|b| b.as_ref().iter().all(|&x| x == 0)));
        w.blocks()[len - 1].as_mut()[127] = 7;
        drop(w);
        assert_eq!(UNMAPPED.with(|u| u.get()), Some((ptr as usize, 0)), "not unmapped after the hash");
        // A hash goes through a workspace of its own and gives it back.
        UNMAPPED.with(|u| u.set(None));
        assert!(!hash("x").is_empty());
        assert!(UNMAPPED.with(|u| u.get()).is_some_and(|(_, rc)| rc == 0));
    }
}
