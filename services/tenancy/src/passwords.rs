//! Password hashing (argon2id) with a bounded footprint.
//!
//! One argon2id computation with the default parameters works in 19 MiB. Run unbounded on the
//! blocking pool, a burst of logins hashed on hundreds of threads at once, each thread's
//! allocator arena kept its memory, and a storm of 200 logins left Tenancy at 3.2 GB. Here:
//!
//! - at most `concurrency` computations run at once (a semaphore sized to the cores); a call
//!   that cannot start within `wait` is refused with [`TenancyError::Busy`] (UNAVAILABLE with a
//!   retry hint) instead of queueing without end;
//! - within a burst, the work areas are reused from a small pool (never more than permits), so
//!   a storm costs no allocation per login; when the last waiting call of a burst is done, the
//!   pool is emptied and the memory goes back to the system.
//! - "Goes back" needs care with glibc: it serves an allocation below its (self-raising) mmap
//!   threshold from a thread's arena, and an arena does not shrink by 19 MiB. It always maps an
//!   allocation of 32 MiB or more (the threshold's ceiling) on its own and unmaps it on free, so
//!   a work area is reserved with a capacity just over 32 MiB and only its first 19 MiB are
//!   written: resident memory is what is used, and it is returned whole. (Measured by
//!   `benches/login_storm.rs`: 3.2 GB after a storm before, about 25 MB now.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::error::TenancyError;

type Result<T> = std::result::Result<T, TenancyError>;

/// The hasher; cheap to clone (shared permits and memory).
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Calls waiting for or running a computation; the pool is emptied when it falls to zero.
    demand: Arc<AtomicUsize>,
    wait: Duration,
}

/// Blocks (1 KiB each) reserved at the least for one computation: just over glibc's 32 MiB
/// ceiling of the mmap threshold, so the allocation is always mapped on its own.
const RESERVED_BLOCKS: usize = 32 * 1024 + 1;

impl Passwords {
    /// At most `concurrency` hashes at once (at least one); callers wait up to `wait` for a turn.
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::default(),
            demand: Arc::default(),
            wait,
        }
    }

    /// Sized to the machine: one computation per core.
    pub fn for_this_machine(wait: Duration) -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from), wait)
    }

    /// Hashes a password with argon2id (default parameters) and a random salt, as a PHC string.
    pub async fn hash(&self, password: String) -> Result<String> {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(internal)?;
        let params = Params::default();
        let computed = self
            .compute(params.clone(), Version::V0x13, salt.clone(), password, Params::DEFAULT_OUTPUT_LEN)
            .await?
            .map_err(internal)?;
        let hash = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(internal)?,
            salt: Some(salt.as_salt()),
            hash: Some(computed),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` matches the PHC string `hash` (a malformed one never matches).
    pub async fn verify(&self, password: String, hash: String) -> Result<bool> {
        let Ok(parsed) = PasswordHash::new(&hash) else { return Ok(false) };
        let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else { return Ok(false) };
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return Ok(false);
        }
        let version = parsed.version.map_or(Ok(Version::V0x13), Version::try_from);
        let (Ok(params), Ok(version), Ok(salt)) =
            (Params::try_from(&parsed), version, SaltString::from_b64(salt.as_str()))
        else {
            return Ok(false);
        };
        let computed = self.compute(params, version, salt, password, expected.len()).await?;
        // `Output` compares in constant time.
        Ok(computed.is_ok_and(|computed| computed == expected))
    }

    /// Runs one argon2id computation on the blocking pool once a permit is free.
    /// The outer error is "busy"; the inner one a failure of the computation itself.
    async fn compute(
        &self,
        params: Params,
        version: Version,
        salt: SaltString,
        password: String,
        output_len: usize,
    ) -> Result<std::result::Result<Output, argon2::password_hash::Error>> {
        let demand = Demand::new(self.demand.clone());
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| TenancyError::Busy)?
            .map_err(|_| TenancyError::Busy)?;
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let blocks = params.block_count();
            // argon2 writes every block before it reads it: reused memory needs no clearing.
            let mut memory = take(&pool, blocks).unwrap_or_else(|| {
                let mut fresh = Vec::with_capacity(blocks.max(RESERVED_BLOCKS));
                fresh.resize(blocks, Block::default());
                fresh
            });
            let argon = Argon2::new(Algorithm::Argon2id, version, params);
            let mut salt_bytes = [0u8; 64];
            let result = salt.as_salt().decode_b64(&mut salt_bytes).and_then(|salt| {
                Output::init_with(output_len, |out| {
                    argon
                        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory)
                        .map_err(Into::into)
                })
            });
            if let Ok(mut pool) = pool.lock() {
                if demand.finish() {
                    pool.clear(); // the burst is over: everything back to the system
                } else {
                    pool.push(memory);
                }
            }
            result
        })
        .await
        .map_err(internal)
    }
}

/// A pooled work area of `blocks` blocks, if one is free.
fn take(pool: &Mutex<Vec<Vec<Block>>>, blocks: usize) -> Option<Vec<Block>> {
    let mut pool = pool.lock().ok()?;
    let at = pool.iter().position(|m| m.len() == blocks)?;
    Some(pool.swap_remove(at))
}

/// One call's share of the demand, from before it waits for a permit until its computation is
/// done (or it gives up).
struct Demand {
    count: Arc<AtomicUsize>,
    finished: bool,
}

impl Demand {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self { count, finished: false }
    }

    /// Ends this call's share; true when nobody else is waiting or running.
    fn finish(mut self) -> bool {
        self.finished = true;
        self.count.fetch_sub(1, Ordering::AcqRel) == 1
    }
}

impl Drop for Demand {
    fn drop(&mut self) {
        if !self.finished {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn internal(error: impl std::fmt::Display) -> TenancyError {
    TenancyError::Internal(error.to_string().into())
}

#[cfg(test)]
mod tests {
    use argon2::PasswordHasher as _;

    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_match_the_reference_implementation() {
        let passwords = Passwords::new(2, Duration::from_secs(30));
        let hash = passwords.hash("correct horse 42".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(passwords.verify("correct horse 42".into(), hash.clone()).await.unwrap());
        assert!(!passwords.verify("correct horse 43".into(), hash.clone()).await.unwrap());
        assert!(!passwords.verify("x".into(), "not a hash".into()).await.unwrap());
        // A hash made by the argon2 crate itself (what older rows hold) verifies too.
        let salt = SaltString::encode_b64(&[9u8; 16]).unwrap();
        let reference = Argon2::default().hash_password(b"old password 1", &salt).unwrap().to_string();
        assert!(passwords.verify("old password 1".into(), reference).await.unwrap());
        // Other parameters (another memory size) verify too.
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 1, 1, None).unwrap());
        let other = small.hash_password(b"small params 1", &salt).unwrap().to_string();
        assert!(passwords.verify("small params 1".into(), other).await.unwrap());
        // Idle again: the pool is empty, its memory returned.
        assert_eq!(passwords.demand.load(Ordering::Acquire), 0);
        assert!(passwords.memory.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_full_house_refuses_rather_than_queueing_forever() {
        let passwords = Passwords::new(1, Duration::from_millis(1));
        let held = passwords.permits.clone().acquire_owned().await.unwrap();
        assert!(matches!(passwords.hash("correct horse 42".into()).await, Err(TenancyError::Busy)));
        drop(held);
        assert!(passwords.hash("correct horse 42".into()).await.is_ok());
    }
}
