//! Verifying access tokens against public keys that are fetched, cached and refreshed on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::token::{Claims, ISSUER, PublicKey};
use crate::{AuthError, Principal};

/// Where a verifier gets public keys: Tenancy reads its own table; other services call GetSigningKeys.
///
/// `fetch` returns every key currently valid; the verifier replaces its cache with the answer, so
/// a key dropped by Tenancy stops verifying at the next fetch. Implementations should bound their
/// own latency (a timeout on the RPC): callers presenting a token with a new `kid` wait for it.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// All currently valid public keys.
    async fn fetch(&self) -> Result<Vec<PublicKey>, AuthError>;
}

/// A fixed set of keys (tests, and services given keys by config).
#[derive(Debug, Clone, Default)]
pub struct StaticKeys(pub Vec<PublicKey>);

#[async_trait::async_trait]
impl KeySource for StaticKeys {
    async fn fetch(&self) -> Result<Vec<PublicKey>, AuthError> {
        Ok(self.0.clone())
    }
}

/// Default for [`Verifier::with_min_refetch_interval`].
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Default for [`Verifier::with_leeway`], in seconds: absorbs clock skew between Tenancy and the
/// verifying pod without meaningfully extending a 15-minute token.
pub const DEFAULT_LEEWAY_SECS: u64 = 5;

/// Verifies access tokens against cached keys; refetches from the source when it meets an unknown
/// kid (at most once per `min_refetch_interval`, default 5 s, so garbage kids cannot hammer Tenancy).
///
/// The cache starts empty and is filled by the first verification (or by [`Verifier::refresh`]
/// at start-up). Cloning is cheap and clones share the cache.
///
/// Optionally ([`Verifier::with_token_cache`]) it also remembers tokens it has verified, so a
/// token presented again costs a map lookup instead of an Ed25519 signature check.
#[derive(Clone)]
pub struct Verifier {
    shared: Arc<Shared>,
    min_refetch_interval: Duration,
    validation: Arc<Validation>,
    tokens: Option<Arc<TokenCache>>,
    sessions: Option<Arc<crate::sessions::SessionCheck>>,
}

struct Shared {
    source: Arc<dyn KeySource>,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    /// Bumped whenever a fetch changes the key set: verified tokens remembered under an older
    /// generation are verified again, so a retired key stops vouching for its tokens at once.
    generation: AtomicU64,
    /// Held across a fetch, so a burst of tokens with one new kid causes one fetch: the others
    /// wait, then find the key in the cache.
    fetch: tokio::sync::Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    last: Option<Instant>,
    /// The key set of the last successful fetch (sorted), to tell whether a fetch changed it.
    published: Vec<(String, String)>,
    /// Whether the last fetch failed: within the interval after a failure, unknown kids are
    /// answered UNAVAILABLE (the truth) rather than UNAUTHENTICATED, so clients retry instead of
    /// throwing their token away.
    failed: bool,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> =
            self.shared.keys.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect();
        f.debug_struct("Verifier")
            .field("kids", &kids)
            .field("min_refetch_interval", &self.min_refetch_interval)
            .field("leeway", &self.validation.leeway)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with an empty cache over `source`.
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Verifier {
            shared: Arc::new(Shared {
                source,
                keys: RwLock::new(HashMap::new()),
                generation: AtomicU64::new(0),
                fetch: tokio::sync::Mutex::new(FetchState::default()),
            }),
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            validation: Arc::new(validation(DEFAULT_LEEWAY_SECS)),
            tokens: None,
            sessions: None,
        }
    }

    /// Also refuses tokens whose session version is no longer current, as `source` tells
    /// (remembered per subject for `ttl`): revocation within seconds. See [`crate::SessionSource`].
    pub fn with_sessions(mut self, source: Arc<dyn crate::SessionSource>, ttl: Duration) -> Self {
        self.sessions = Some(Arc::new(crate::sessions::SessionCheck::new(source, ttl)));
        self
    }

    /// Remembers up to `capacity` verified tokens (0: none, the default), shared by clones.
    ///
    /// A remembered token skips the signature check, and only that: its `exp` is checked on every
    /// use (with this verifier's leeway), and it is verified afresh once the key set changes, so
    /// the answer is always the one a full verification would give. Only tokens that passed are
    /// remembered (garbage cannot fill the cache); when full, expired entries are dropped, and if
    /// none were, the cache starts over. Meant for the edge, which sees every call of every
    /// session: a 15-minute token is then checked once per replica instead of once per call.
    pub fn with_token_cache(mut self, capacity: usize) -> Self {
        self.tokens = (capacity > 0).then(|| {
            Arc::new(TokenCache { capacity, entries: RwLock::new(HashMap::with_capacity(capacity.min(1024))) })
        });
        self
    }

    /// Sets the shortest time between two fetches triggered by unknown kids (default 5 s).
    pub fn with_min_refetch_interval(mut self, d: Duration) -> Self {
        self.min_refetch_interval = d;
        self
    }

    /// Sets the clock-skew allowance on `exp`, in seconds (default [`DEFAULT_LEEWAY_SECS`] = 5).
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.validation = Arc::new(validation(secs));
        self
    }

    /// How many verified tokens are remembered (0 without [`Verifier::with_token_cache`]).
    pub fn remembered_tokens(&self) -> usize {
        self.tokens.as_ref().map_or(0, |t| t.entries.read().unwrap_or_else(PoisonError::into_inner).len())
    }

    /// Fetches the keys now and replaces the cache, regardless of the refetch interval (for
    /// start-up, or a periodic refresh that drops retired keys sooner).
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let mut state = self.shared.fetch.lock().await;
        self.fetch_into_cache(&mut state).await
    }

    /// Verifies `token` and returns its principal.
    ///
    /// Checks, in order: the header's alg is EdDSA (anything else, `none` and HMAC included, is
    /// refused before any key is looked at), the kid is known (refetching once if not), the
    /// signature, `exp` (with the leeway), `iss == "sentra"`, and the claims' shape.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let principal = self.verify_token(token).await?;
        if let Some(sessions) = &self.sessions {
            sessions.check(token, &principal).await?;
        }
        Ok(principal)
    }

    /// Signature (or the token cache), expiry and claims.
    async fn verify_token(&self, token: &str) -> Result<Principal, AuthError> {
        let Some(tokens) = &self.tokens else {
            return self.verify_signed(token).await;
        };
        // Read before verifying: a key change racing with this verification leaves the entry
        // under the older generation, so it is checked again on its next use.
        let generation = self.shared.generation.load(Ordering::Acquire);
        // The oldest `exp` still accepted: now minus this verifier's leeway.
        let horizon = unix_now().saturating_sub(i64::try_from(self.validation.leeway).unwrap_or(i64::MAX));
        if let Some(principal) = tokens.get(token, generation, horizon) {
            return Ok(principal);
        }
        let principal = self.verify_signed(token).await?;
        tokens.insert(token, &principal, generation, horizon);
        Ok(principal)
    }

    /// The full check: header, key, signature, claims.
    async fn verify_signed(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::InvalidToken);
        }
        let kid = header.kid.ok_or(AuthError::InvalidToken)?;
        let key = self.key(&kid).await?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::InvalidToken,
        })?;
        data.claims.into_principal()
    }

    fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.shared.keys.read().unwrap_or_else(PoisonError::into_inner).get(kid).cloned()
    }

    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, AuthError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut state = self.shared.fetch.lock().await;
        // Someone else may have fetched while we waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        match state.last {
            Some(last) if last.elapsed() < self.min_refetch_interval => {
                return Err(if state.failed {
                    AuthError::KeySource("key source failed recently".to_owned())
                } else {
                    AuthError::UnknownKey
                });
            }
            _ => {}
        }
        self.fetch_into_cache(&mut state).await?;
        self.cached(kid).ok_or(AuthError::UnknownKey)
    }

    async fn fetch_into_cache(&self, state: &mut FetchState) -> Result<(), AuthError> {
        state.last = Some(Instant::now());
        let fetched = self.shared.source.fetch().await;
        state.failed = fetched.is_err();
        let fetched = fetched?;
        let mut published: Vec<(String, String)> = fetched.iter().map(|k| (k.kid.clone(), k.x.clone())).collect();
        published.sort_unstable();
        let keys: HashMap<_, _> = fetched
            .into_iter()
            .filter_map(|public| match decoding_key(&public) {
                Some(key) => Some((public.kid, Arc::new(key))),
                None => {
                    tracing::warn!(kid = %public.kid, "ignoring a malformed Ed25519 public key from the key source");
                    None
                }
            })
            .collect();
        tracing::debug!(count = keys.len(), "token verification keys refreshed");
        *self.shared.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
        // After the keys are in place: whoever sees the new generation verifies with the new keys.
        if published != state.published {
            state.published = published;
            self.shared.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }
}

/// Tokens that passed [`Verifier::verify_signed`], with what is needed to re-check them cheaply.
struct TokenCache {
    capacity: usize,
    entries: RwLock<HashMap<Box<str>, Remembered>>,
}

struct Remembered {
    principal: Principal,
    /// `exp`, seconds since the Unix epoch.
    expires: i64,
    /// The key generation the signature was checked under.
    generation: u64,
}

impl TokenCache {
    /// The principal of `token` if it was verified under `generation` and its `exp` is not before
    /// `horizon` (now minus the leeway).
    fn get(&self, token: &str, generation: u64, horizon: i64) -> Option<Principal> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let hit = entries.get(token)?;
        (hit.generation == generation && hit.expires >= horizon).then(|| hit.principal.clone())
    }

    fn insert(&self, token: &str, principal: &Principal, generation: u64, horizon: i64) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(token) {
            entries.retain(|_, entry| entry.expires >= horizon);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        let remembered =
            Remembered { principal: principal.clone(), expires: principal.expires_at.timestamp(), generation };
        entries.insert(token.into(), remembered);
    }
}

/// Seconds since the Unix epoch, as `jsonwebtoken` counts them for `exp`.
fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A decoding key for `public`, or `None` if `x` is not a valid Ed25519 point. Checked here, once,
/// because jsonwebtoken would otherwise fail (or, for short input, panic) on every verification.
fn decoding_key(public: &PublicKey) -> Option<DecodingKey> {
    public.verifying_key()?;
    DecodingKey::from_ed_components(&public.x).ok()
}

fn validation(leeway: u64) -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.leeway = leeway;
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "iss", "sub"]);
    v
}
