//! The fake's memory: mailboxes with their history logs, OAuth codes and tokens, queued faults,
//! quota buckets and call counters. Everything sits behind one mutex that is never held across
//! an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Endpoint, Fault, SentMessage, mime};

/// One message in a mailbox.
pub(super) struct Message {
    pub id: String,
    pub thread_id: String,
    pub labels: Vec<String>,
    pub raw: Vec<u8>,
    pub internal_date_ms: i64,
    pub history_id: u64,
    pub snippet: String,
}

/// What a history record says happened.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Added,
    Deleted,
}

/// One history record; the fake writes one per change, each with its own id.
pub(super) struct HistoryRecord {
    pub id: u64,
    pub change: Change,
    pub message_id: String,
    pub thread_id: String,
    pub labels: Vec<String>,
}

/// Where a Message-ID header belongs: its Gmail thread and the References chain a reply to it
/// carries (its own References plus itself).
struct ThreadLink {
    thread_id: String,
    chain: Vec<String>,
}

/// A send-as alias (the primary address is implied).
pub(super) struct SendAs {
    pub email: String,
    pub display_name: String,
    pub verified: bool,
}

/// One user's mailbox.
pub(super) struct Mailbox {
    /// Messages by arrival sequence, so "newest first" is a reverse range scan and page tokens
    /// (a sequence number) stay valid while messages arrive or go.
    pub messages: BTreeMap<u64, Message>,
    pub seq_by_id: HashMap<String, u64>,
    pub thread_sizes: HashMap<String, usize>,
    threads_by_header: HashMap<String, ThreadLink>,
    pub history: Vec<HistoryRecord>,
    pub history_id: u64,
    /// The oldest `startHistoryId` still answered; older ones get 404.
    pub history_floor: u64,
    pub sent: Vec<SentMessage>,
    pub send_as: Vec<SendAs>,
    pub units_used: u64,
    bucket: Option<(f64, Instant)>,
    next_seq: u64,
}

impl Mailbox {
    fn new(history_id: u64) -> Self {
        Self {
            messages: BTreeMap::new(),
            seq_by_id: HashMap::new(),
            thread_sizes: HashMap::new(),
            threads_by_header: HashMap::new(),
            history: Vec::new(),
            history_id,
            history_floor: history_id,
            sent: Vec::new(),
            send_as: Vec::new(),
            units_used: 0,
            bucket: None,
            next_seq: 0,
        }
    }

    /// The References a reply to `parent` (a Message-ID, with or without brackets) carries.
    pub fn reply_chain(&self, parent: &str) -> Vec<String> {
        let parent = format!("<{}>", mime::strip_brackets(parent));
        self.threads_by_header.get(&parent).map(|l| l.chain.clone()).unwrap_or_else(|| vec![parent])
    }

    /// Stores a message and records `messageAdded`. The thread is `thread_hint` when that
    /// thread exists, else the thread of the nearest known In-Reply-To/References id, else a new
    /// thread whose id is the message id (as in Gmail). Returns the thread id and the parsed
    /// Message-ID header.
    pub fn insert(
        &mut self,
        id: String,
        raw: Vec<u8>,
        labels: Vec<String>,
        internal_date_ms: i64,
        snippet: String,
        thread_hint: Option<&str>,
    ) -> (String, Option<String>) {
        let headers = mime::headers(&raw);
        let own = mime::header(&headers, "Message-ID").and_then(|v| mime::message_ids(v).into_iter().next());
        let mut refs = mime::header(&headers, "References").map(mime::message_ids).unwrap_or_default();
        for parent in mime::header(&headers, "In-Reply-To").map(mime::message_ids).unwrap_or_default() {
            if !refs.contains(&parent) {
                refs.push(parent);
            }
        }
        let thread_id = thread_hint
            .filter(|t| self.thread_sizes.contains_key(*t))
            .map(str::to_owned)
            .or_else(|| refs.iter().rev().find_map(|r| self.threads_by_header.get(r)).map(|l| l.thread_id.clone()))
            .unwrap_or_else(|| id.clone());
        if let Some(own) = &own {
            let mut chain = refs;
            chain.push(own.clone());
            let skip = chain.len().saturating_sub(20);
            let chain = chain.split_off(skip);
            self.threads_by_header.insert(own.clone(), ThreadLink { thread_id: thread_id.clone(), chain });
        }
        *self.thread_sizes.entry(thread_id.clone()).or_default() += 1;
        let history_id = self.record(Change::Added, &id, &thread_id, &labels);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seq_by_id.insert(id.clone(), seq);
        let message = Message { id, thread_id: thread_id.clone(), labels, raw, internal_date_ms, history_id, snippet };
        self.messages.insert(seq, message);
        (thread_id, own)
    }

    /// Removes a message and records `messageDeleted`; false when there is no such message.
    pub fn delete(&mut self, id: &str) -> bool {
        let Some(message) = self.seq_by_id.remove(id).and_then(|seq| self.messages.remove(&seq)) else {
            return false;
        };
        if let Some(n) = self.thread_sizes.get_mut(&message.thread_id) {
            *n -= 1;
            if *n == 0 {
                self.thread_sizes.remove(&message.thread_id);
            }
        }
        self.record(Change::Deleted, &message.id, &message.thread_id, &message.labels);
        true
    }

    /// The message with this id.
    pub fn get(&self, id: &str) -> Option<&Message> {
        self.seq_by_id.get(id).and_then(|seq| self.messages.get(seq))
    }

    fn record(&mut self, change: Change, id: &str, thread_id: &str, labels: &[String]) -> u64 {
        self.history_id += 1;
        self.history.push(HistoryRecord {
            id: self.history_id,
            change,
            message_id: id.to_owned(),
            thread_id: thread_id.to_owned(),
            labels: labels.to_vec(),
        });
        self.history_id
    }
}

/// An authorization code waiting to be exchanged.
pub(super) struct AuthCode {
    pub user: String,
    pub redirect_uri: String,
    pub scope: String,
    /// `(code_challenge, code_challenge_method)` when the request used PKCE.
    pub challenge: Option<(String, String)>,
    pub offline: bool,
    pub used: bool,
}

/// A refresh token's grant.
pub(super) struct Grant {
    pub user: String,
    pub scope: String,
    pub revoked: bool,
}

/// An access token's grant.
pub(super) struct Access {
    pub user: String,
    pub scope: String,
    pub expires_at: Instant,
}

/// The whole fake.
pub(super) struct State {
    /// Users in the order they were added (the first is the default consenting user).
    pub users: Vec<String>,
    pub mailboxes: HashMap<String, Mailbox>,
    pub consent_as: Option<String>,
    pub codes: HashMap<String, AuthCode>,
    pub refresh_tokens: HashMap<String, Grant>,
    pub access_tokens: HashMap<String, Access>,
    pub token_lifetime: Duration,
    faults: Vec<(Endpoint, Fault, usize)>,
    pub latency: Duration,
    quota: Option<u32>,
    pub calls: HashMap<Endpoint, usize>,
    id_counter: u64,
    pub rng: StdRng,
}

impl State {
    pub fn new() -> Self {
        let mut rng = StdRng::from_entropy();
        // Gmail ids are the hex of a 64-bit number that grows with time.
        let id_counter = 0x18c0_0000_0000_0000 + rng.gen_range(0..0x00ff_ffff_ffff);
        Self {
            users: Vec::new(),
            mailboxes: HashMap::new(),
            consent_as: None,
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            token_lifetime: Duration::from_secs(3599),
            faults: Vec::new(),
            latency: Duration::ZERO,
            quota: None,
            calls: HashMap::new(),
            id_counter,
            rng,
        }
    }

    /// Adds a user (no-op when known), with history ids starting somewhere realistic.
    pub fn add_user(&mut self, email: &str) {
        if !self.mailboxes.contains_key(email) {
            let start = self.rng.gen_range(100_000..900_000);
            self.mailboxes.insert(email.to_owned(), Mailbox::new(start));
            self.users.push(email.to_owned());
        }
    }

    /// The mailbox of a user the test added.
    ///
    /// # Panics
    /// When the user was never added: a mistake in the test, not a request to answer.
    pub fn mailbox_mut(&mut self, email: &str) -> &mut Mailbox {
        self.mailboxes.get_mut(email).unwrap_or_else(|| panic!("FakeGmail: unknown user {email}; add_user first"))
    }

    /// A fresh 16-hex-digit message id.
    pub fn next_id(&mut self) -> String {
        self.id_counter += self.rng.gen_range(1..0x400);
        format!("{:016x}", self.id_counter)
    }

    /// `prefix` followed by `len` random alphanumerics (codes and tokens).
    pub fn random_token(&mut self, prefix: &str, len: usize) -> String {
        let tail: String = (&mut self.rng).sample_iter(&Alphanumeric).take(len).map(char::from).collect();
        format!("{prefix}{tail}")
    }

    /// Mints an access token for `user` with the configured lifetime.
    pub fn issue_access(&mut self, user: &str, scope: &str) -> String {
        let token = self.random_token("ya29.a0", 120);
        let access =
            Access { user: user.to_owned(), scope: scope.to_owned(), expires_at: Instant::now() + self.token_lifetime };
        self.access_tokens.insert(token.clone(), access);
        token
    }

    /// Mints a refresh token for `user`.
    pub fn issue_refresh(&mut self, user: &str, scope: &str) -> String {
        let token = self.random_token("1//0", 100);
        self.refresh_tokens
            .insert(token.clone(), Grant { user: user.to_owned(), scope: scope.to_owned(), revoked: false });
        token
    }

    pub fn push_fault(&mut self, endpoint: Endpoint, fault: Fault, times: usize) {
        if times > 0 {
            self.faults.push((endpoint, fault, times));
        }
    }

    /// Takes the first queued fault that applies to `endpoint` (its own or `Any`).
    pub fn take_fault(&mut self, endpoint: Endpoint) -> Option<Fault> {
        let index = self.faults.iter().position(|(e, _, _)| *e == endpoint || *e == Endpoint::Any)?;
        let entry = self.faults.get_mut(index)?;
        let fault = entry.1.clone();
        entry.2 -= 1;
        if entry.2 == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }

    /// Turns quota enforcement on (every bucket starts full).
    pub fn set_quota(&mut self, units_per_second: u32) {
        self.quota = Some(units_per_second.max(1));
        for mailbox in self.mailboxes.values_mut() {
            mailbox.bucket = None;
        }
    }

    /// Charges `cost` units to `user`; with quota on, a token bucket refilled at the per-second
    /// rate and holding one second's worth decides, and a refusal says how many seconds to wait.
    /// A call dearer than the whole bucket passes when the bucket is full (and empties it).
    pub fn charge(&mut self, user: &str, cost: u64) -> Result<(), u64> {
        let Some(mailbox) = self.mailboxes.get_mut(user) else { return Ok(()) };
        if let Some(rate) = self.quota {
            let rate = f64::from(rate);
            let now = Instant::now();
            let (tokens, last) = mailbox.bucket.get_or_insert((rate, now));
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
            *last = now;
            let needed = (cost as f64).min(rate);
            if *tokens < needed {
                return Err(((needed - *tokens) / rate).ceil().max(1.0) as u64);
            }
            *tokens -= cost as f64;
        }
        mailbox.units_used += cost;
        Ok(())
    }
}
