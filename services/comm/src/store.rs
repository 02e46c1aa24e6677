//! Where Comm keeps mail: messages, threads, the sync queue, the sync log and the address index
//! of leads and clients, behind one repository trait ([`MailStore`]) so the storage can change
//! without touching sync or the API. Two adapters: [`PgMailStore`] (PostgreSQL, JSONB and full-text
//! search; the default) and [`crate::mongo::MongoMailStore`] (MongoDB). One conformance suite
//! (`tests/api/store.rs`) is the contract both keep. Mailboxes themselves (tokens, sync cursor,
//! lease) stay in PostgreSQL (`mailboxes.rs`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use crate::mime::{AttachmentInfo, Mailbox, ParsedMail};

/// A storage failure, whichever adapter.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL.
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    /// MongoDB.
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
    /// A stored document breaks what the writer guarantees.
    #[error("corrupt document: {0}")]
    Corrupt(String),
}

/// A storage result.
pub type StoreResult<T> = Result<T, StoreError>;

/// A message to store, parsed, with where it came from.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Tenant.
    pub organization_id: Uuid,
    /// The mailbox it was imported from or sent through.
    pub mailbox_id: Uuid,
    /// The provider's id (Gmail id).
    pub provider_id: String,
    /// The provider's thread id.
    pub provider_thread_id: String,
    /// Provider labels.
    pub labels: Vec<String>,
    /// The provider's internal date, used when the Date header is missing.
    pub internal_date: DateTime<Utc>,
    /// Raw size.
    pub size_bytes: i64,
    /// What the parser read.
    pub mail: ParsedMail,
    /// SendEmail's idempotency key.
    pub request_id: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Stored as a new message.
    New(Uuid),
    /// Already there (same provider id, or same Message-ID in the mailbox): nothing changed.
    Duplicate(Uuid),
}

impl Imported {
    /// The stored message's id.
    pub fn id(self) -> Uuid {
        match self {
            Imported::New(id) | Imported::Duplicate(id) => id,
        }
    }
}

/// A link from mail to Sales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `lead` or `client`.
    pub kind: String,
    /// Lead or client id.
    pub record_id: Uuid,
    /// Its brand.
    pub brand_id: Uuid,
}

/// A thread as listed: the fields of the contract's `Thread`, in storage types.
#[derive(Debug, Clone)]
#[allow(missing_docs, reason = "the fields are the contract's, documented there")]
pub struct ThreadRow {
    pub thread_id: Uuid,
    /// The mailbox it lives in.
    pub mailbox_id: Uuid,
    pub subject: String,
    pub message_count: i32,
    /// Newest message time.
    pub last_message_at: Option<DateTime<Utc>>,
    /// Newest message's start.
    pub snippet: String,
    /// Everyone in it.
    pub participants: Vec<Mailbox>,
    /// Leads and clients it is linked to.
    pub links: Vec<Link>,
}

/// A stored message: the fields of the contract's `Message`, in storage types, plus what
/// replying needs (provider ids, References).
#[derive(Debug, Clone)]
#[allow(missing_docs, reason = "the fields are the contract's, documented there")]
pub struct MessageRow {
    pub message_id: Uuid,
    pub thread_id: Uuid,
    pub mailbox_id: Uuid,
    /// Provider id.
    pub provider_id: String,
    /// Provider thread id it was filed under at the provider (for replies).
    pub provider_thread_id: Option<String>,
    /// RFC Message-ID.
    pub rfc_message_id: String,
    pub references: Vec<String>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: String,
    pub text_body: String,
    /// Sanitised HTML.
    pub html_body: String,
    pub labels: Vec<String>,
    /// Sent time.
    pub sent_at: DateTime<Utc>,
    pub attachments: Vec<AttachmentInfo>,
    /// Parse error flag.
    pub parse_error: bool,
    /// Linked leads and clients.
    pub links: Vec<Link>,
}

/// Which conversations to list.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    /// Threads naming the lead's contact address.
    Lead(Uuid),
    /// Threads naming the client's contact address.
    Client(Uuid),
}

impl Subject {
    /// `("lead" | "client", id)`.
    pub fn parts(self) -> (&'static str, Uuid) {
        match self {
            Subject::Lead(id) => ("lead", id),
            Subject::Client(id) => ("client", id),
        }
    }
}

/// A page position: the last thread of the previous page.
#[derive(Debug, Clone, Copy)]
pub struct After {
    /// Its newest message time.
    pub last_message_at: DateTime<Utc>,
    /// Its id.
    pub thread_id: Uuid,
}

/// The repository of mail.
#[async_trait::async_trait]
pub trait MailStore: Send + Sync + 'static {
    /// Stores a message once: keyed by (mailbox, provider id) and by the RFC Message-ID within
    /// the mailbox. Threads by the provider's thread id, else by References.
    async fn import(&self, message: &NewMessage) -> StoreResult<Imported>;
    /// Removes messages the provider deleted.
    async fn delete(&self, mailbox: Uuid, provider_ids: &[String]) -> StoreResult<u64>;
    /// Adds ids to the mailbox's import queue (already queued ones are ignored).
    async fn enqueue(&self, mailbox: Uuid, provider_ids: &[String]) -> StoreResult<()>;
    /// Up to `limit` queued ids, in order.
    async fn queued(&self, mailbox: Uuid, limit: i64) -> StoreResult<Vec<String>>;
    /// Removes imported (or vanished) ids from the queue.
    async fn dequeue(&self, mailbox: Uuid, provider_ids: &[String]) -> StoreResult<()>;
    /// How many ids are queued.
    async fn queue_len(&self, mailbox: Uuid) -> StoreResult<i64>;
    /// How many messages the mailbox holds.
    async fn message_count(&self, mailbox: Uuid) -> StoreResult<i64>;
    /// Appends to the mailbox's sync log.
    async fn log(&self, mailbox: Uuid, kind: &str, detail: &str) -> StoreResult<()>;
    /// Sets the contact address of a lead or client (creating its entry with its brand).
    async fn upsert_contact(&self, subject: Subject, organization: Uuid, brand: Uuid, address: &str)
    -> StoreResult<()>;
    /// Changes the address of a known lead or client; false when it is not indexed yet.
    async fn update_contact(&self, subject: Subject, organization: Uuid, address: &str) -> StoreResult<bool>;
    /// The contact address and brand of a lead or client of the organization.
    async fn contact(&self, organization: Uuid, subject: Subject) -> StoreResult<Option<(String, Uuid)>>;
    /// Threads naming `address`, newest first, optionally matching a full-text query.
    async fn threads(
        &self,
        organization: Uuid,
        address: &str,
        query: Option<&str>,
        after: Option<After>,
        limit: i64,
    ) -> StoreResult<Vec<ThreadRow>>;
    /// A thread of the organization.
    async fn thread(&self, organization: Uuid, thread: Uuid) -> StoreResult<Option<ThreadRow>>;
    /// A thread's messages, oldest first.
    async fn messages(&self, organization: Uuid, thread: Uuid) -> StoreResult<Vec<MessageRow>>;
    /// One message of the organization.
    async fn message(&self, organization: Uuid, message: Uuid) -> StoreResult<Option<MessageRow>>;
    /// The message SendEmail stored for `request_id`.
    async fn sent_for_request(&self, organization: Uuid, request_id: &str) -> StoreResult<Option<MessageRow>>;
}

/// The PostgreSQL adapter (schema `comm`).
#[derive(Clone, Debug)]
pub struct PgMailStore {
    pool: PgPool,
}

impl PgMailStore {
    /// An adapter over the service's pool.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn mailboxes_json(list: &[Mailbox]) -> Value {
    serde_json::to_value(list).unwrap_or(Value::Array(Vec::new()))
}

fn from_json<T: serde::de::DeserializeOwned + Default>(value: Value) -> T {
    serde_json::from_value(value).unwrap_or_default()
}

fn links_of(value: Value) -> Vec<Link> {
    #[derive(serde::Deserialize)]
    struct L {
        kind: String,
        record_id: Uuid,
        brand_id: Uuid,
    }
    from_json::<Vec<L>>(value)
        .into_iter()
        .map(|l| Link { kind: l.kind, record_id: l.record_id, brand_id: l.brand_id })
        .collect()
}

/// The links of a thread (`t`), computed from its messages' addresses and the contact index,
/// so mail imported before a lead existed links as soon as the lead does.
const THREAD_LINKS: &str = "(SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object('kind', c.kind, 'record_id', \
     c.record_id, 'brand_id', c.brand_id)), '[]') FROM messages m JOIN message_addresses a ON a.message_id = \
     m.message_id JOIN contacts c ON c.organization_id = a.organization_id AND c.address = a.address WHERE \
     m.thread_id = t.thread_id)";

const THREAD_PARTICIPANTS: &str = "(SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object('name', m.from_name, \
     'email', m.from_address)) FILTER (WHERE m.from_address <> ''), '[]') || coalesce((SELECT \
     jsonb_agg(DISTINCT r) FROM messages m2, jsonb_array_elements(m2.to_addresses || m2.cc_addresses) r WHERE \
     m2.thread_id = t.thread_id), '[]') FROM messages m WHERE m.thread_id = t.thread_id)";

fn thread_row(row: &sqlx::postgres::PgRow) -> Result<ThreadRow, sqlx::Error> {
    let mut participants: Vec<Mailbox> = from_json(row.try_get("participants")?);
    let mut seen = std::collections::HashSet::new();
    participants.retain(|p| seen.insert(p.email.clone()));
    Ok(ThreadRow {
        thread_id: row.try_get("thread_id")?,
        mailbox_id: row.try_get("mailbox_id")?,
        subject: row.try_get("subject")?,
        message_count: row.try_get("message_count")?,
        last_message_at: row.try_get("last_message_at")?,
        snippet: row.try_get("snippet")?,
        participants,
        links: links_of(row.try_get("links")?),
    })
}

const MESSAGE_COLUMNS: &str = "m.message_id, m.thread_id, m.mailbox_id, m.provider_id, m.rfc_message_id, \
     m.\"references\", m.from_name, m.from_address, m.to_addresses, m.cc_addresses, m.subject, m.text_body, \
     m.html_body, m.labels, m.sent_at, m.attachments, m.parse_error, (SELECT k.provider_thread_id FROM \
     thread_keys k WHERE k.thread_id = m.thread_id LIMIT 1) AS provider_thread_id, (SELECT \
     coalesce(jsonb_agg(DISTINCT jsonb_build_object('kind', c.kind, 'record_id', c.record_id, 'brand_id', \
     c.brand_id)), '[]') FROM message_addresses a JOIN contacts c ON c.organization_id = a.organization_id AND \
     c.address = a.address WHERE a.message_id = m.message_id) AS links";

fn message_row(row: &sqlx::postgres::PgRow) -> Result<MessageRow, sqlx::Error> {
    Ok(MessageRow {
        message_id: row.try_get("message_id")?,
        thread_id: row.try_get("thread_id")?,
        mailbox_id: row.try_get("mailbox_id")?,
        provider_id: row.try_get("provider_id")?,
        provider_thread_id: row.try_get("provider_thread_id")?,
        rfc_message_id: row.try_get("rfc_message_id")?,
        references: row.try_get("references")?,
        from: Mailbox { name: row.try_get("from_name")?, email: row.try_get("from_address")? },
        to: from_json(row.try_get("to_addresses")?),
        cc: from_json(row.try_get("cc_addresses")?),
        subject: row.try_get("subject")?,
        text_body: row.try_get("text_body")?,
        html_body: row.try_get("html_body")?,
        labels: row.try_get("labels")?,
        sent_at: row.try_get("sent_at")?,
        attachments: from_json(row.try_get("attachments")?),
        parse_error: row.try_get("parse_error")?,
        links: links_of(row.try_get("links")?),
    })
}

#[async_trait::async_trait]
impl MailStore for PgMailStore {
    async fn import(&self, message: &NewMessage) -> StoreResult<Imported> {
        let mail = &message.mail;
        let mut tx = self.pool.begin().await?;
        let existing: Option<Uuid> = sqlx::query_scalar(
            "SELECT message_id FROM messages WHERE mailbox_id = $1 AND (provider_id = $2 OR ($3 <> '' AND \
             rfc_message_id = $3)) LIMIT 1",
        )
        .bind(message.mailbox_id)
        .bind(&message.provider_id)
        .bind(&mail.message_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = existing {
            if let Some(request) = &message.request_id {
                sqlx::query("UPDATE messages SET request_id = $2 WHERE message_id = $1 AND request_id IS NULL")
                    .bind(id)
                    .bind(request)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            return Ok(Imported::Duplicate(id));
        }
        // A provider thread seen for the first time joins the conversation its References name.
        let mut ids: Vec<&str> = mail.references.iter().map(String::as_str).collect();
        if !mail.in_reply_to.is_empty() {
            ids.push(&mail.in_reply_to);
        }
        let by_references: Option<Uuid> = if ids.is_empty() {
            None
        } else {
            sqlx::query_scalar(
                "SELECT thread_id FROM messages WHERE mailbox_id = $1 AND rfc_message_id = ANY($2) LIMIT 1",
            )
            .bind(message.mailbox_id)
            .bind(&ids)
            .fetch_optional(&mut *tx)
            .await?
        };
        let thread_id: Uuid = sqlx::query_scalar(
            "INSERT INTO thread_keys (mailbox_id, provider_thread_id, thread_id) VALUES ($1, $2, $3) \
             ON CONFLICT (mailbox_id, provider_thread_id) DO UPDATE SET provider_thread_id = \
             EXCLUDED.provider_thread_id RETURNING thread_id",
        )
        .bind(message.mailbox_id)
        .bind(&message.provider_thread_id)
        .bind(by_references.unwrap_or_else(Uuid::now_v7))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO threads (thread_id, organization_id, mailbox_id, subject) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (thread_id) DO NOTHING",
        )
        .bind(thread_id)
        .bind(message.organization_id)
        .bind(message.mailbox_id)
        .bind(&mail.subject)
        .execute(&mut *tx)
        .await?;
        let id = Uuid::now_v7();
        let (from_name, from_address) =
            mail.from.as_ref().map(|f| (f.name.clone(), f.email.clone())).unwrap_or_default();
        sqlx::query(
            "INSERT INTO messages (message_id, organization_id, mailbox_id, thread_id, provider_id, rfc_message_id, \
             in_reply_to, \"references\", from_name, from_address, to_addresses, cc_addresses, subject, text_body, \
             html_body, labels, sent_at, attachments, parse_error, size_bytes, request_id) VALUES ($1, $2, $3, $4, \
             $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(id)
        .bind(message.organization_id)
        .bind(message.mailbox_id)
        .bind(thread_id)
        .bind(&message.provider_id)
        .bind(&mail.message_id)
        .bind(&mail.in_reply_to)
        .bind(&mail.references)
        .bind(&from_name)
        .bind(&from_address)
        .bind(mailboxes_json(&mail.to))
        .bind(mailboxes_json(&mail.cc))
        .bind(&mail.subject)
        .bind(&mail.text_body)
        .bind(&mail.html_body)
        .bind(&message.labels)
        .bind(mail.date.unwrap_or(message.internal_date))
        .bind(serde_json::to_value(&mail.attachments).unwrap_or(Value::Array(Vec::new())))
        .bind(mail.parse_error)
        .bind(i32::try_from(message.size_bytes).unwrap_or(i32::MAX))
        .bind(&message.request_id)
        .execute(&mut *tx)
        .await?;
        let addresses: Vec<&str> = mail
            .from
            .iter()
            .chain(mail.to.iter())
            .chain(mail.cc.iter())
            .map(|m| m.email.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        sqlx::query(
            "INSERT INTO message_addresses (message_id, organization_id, address) SELECT $1, $2, unnest($3::text[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(message.organization_id)
        .bind(&addresses)
        .execute(&mut *tx)
        .await?;
        refresh_thread(&mut tx, thread_id).await?;
        tx.commit().await?;
        Ok(Imported::New(id))
    }

    async fn delete(&self, mailbox: Uuid, provider_ids: &[String]) -> StoreResult<u64> {
        if provider_ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let threads: Vec<Uuid> = sqlx::query_scalar(
            "DELETE FROM messages WHERE mailbox_id = $1 AND provider_id = ANY($2) RETURNING thread_id",
        )
        .bind(mailbox)
        .bind(provider_ids)
        .fetch_all(&mut *tx)
        .await?;
        let deleted = threads.len() as u64;
        let mut unique: Vec<Uuid> = threads;
        unique.sort();
        unique.dedup();
        for thread in unique {
            refresh_thread(&mut tx, thread).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn enqueue(&self, mailbox: Uuid, provider_ids: &[String]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sync_queue (mailbox_id, provider_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(mailbox)
        .bind(provider_ids)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn queued(&self, mailbox: Uuid, limit: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT provider_id FROM sync_queue WHERE mailbox_id = $1 ORDER BY provider_id LIMIT $2")
            .bind(mailbox)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn dequeue(&self, mailbox: Uuid, provider_ids: &[String]) -> StoreResult<()> {
        sqlx::query("DELETE FROM sync_queue WHERE mailbox_id = $1 AND provider_id = ANY($2)")
            .bind(mailbox)
            .bind(provider_ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn queue_len(&self, mailbox: Uuid) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM sync_queue WHERE mailbox_id = $1")
            .bind(mailbox)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn message_count(&self, mailbox: Uuid) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM messages WHERE mailbox_id = $1")
            .bind(mailbox)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn log(&self, mailbox: Uuid, kind: &str, detail: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO sync_log (mailbox_id, kind, detail) VALUES ($1, $2, $3)")
            .bind(mailbox)
            .bind(kind)
            .bind(detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn upsert_contact(
        &self,
        subject: Subject,
        organization: Uuid,
        brand: Uuid,
        address: &str,
    ) -> StoreResult<()> {
        let (kind, id) = subject.parts();
        sqlx::query(
            "INSERT INTO contacts (kind, record_id, organization_id, brand_id, address) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, record_id) DO UPDATE SET address = EXCLUDED.address",
        )
        .bind(kind)
        .bind(id)
        .bind(organization)
        .bind(brand)
        .bind(address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn update_contact(&self, subject: Subject, organization: Uuid, address: &str) -> StoreResult<bool> {
        let (kind, id) = subject.parts();
        let changed =
            sqlx::query("UPDATE contacts SET address = $3 WHERE kind = $1 AND record_id = $2 AND organization_id = $4")
                .bind(kind)
                .bind(id)
                .bind(address)
                .bind(organization)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(changed > 0)
    }

    async fn contact(&self, organization: Uuid, subject: Subject) -> StoreResult<Option<(String, Uuid)>> {
        let (kind, id) = subject.parts();
        let row = sqlx::query(
            "SELECT address, brand_id FROM contacts WHERE kind = $1 AND record_id = $2 AND organization_id = $3",
        )
        .bind(kind)
        .bind(id)
        .bind(organization)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Ok::<_, sqlx::Error>((r.try_get("address")?, r.try_get("brand_id")?))).transpose()?)
    }

    async fn threads(
        &self,
        organization: Uuid,
        address: &str,
        query: Option<&str>,
        after: Option<After>,
        limit: i64,
    ) -> StoreResult<Vec<ThreadRow>> {
        let sql = format!(
            "SELECT t.thread_id, t.mailbox_id, t.subject, t.message_count, t.last_message_at, t.snippet, \
             {THREAD_PARTICIPANTS} AS participants, {THREAD_LINKS} AS links FROM threads t WHERE t.organization_id \
             = $1 AND t.message_count > 0 AND EXISTS (SELECT 1 FROM messages m JOIN message_addresses a ON \
             a.message_id = m.message_id WHERE m.thread_id = t.thread_id AND a.address = $2) AND ($3::text IS NULL \
             OR EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = t.thread_id AND m.search @@ \
             websearch_to_tsquery('simple', $3))) AND ($4::timestamptz IS NULL OR (t.last_message_at, t.thread_id) \
             < ($4, $5)) ORDER BY t.last_message_at DESC, t.thread_id DESC LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(organization)
            .bind(address)
            .bind(query)
            .bind(after.map(|a| a.last_message_at))
            .bind(after.map(|a| a.thread_id))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(thread_row).collect::<Result<_, _>>()?)
    }

    async fn thread(&self, organization: Uuid, thread: Uuid) -> StoreResult<Option<ThreadRow>> {
        let sql = format!(
            "SELECT t.thread_id, t.mailbox_id, t.subject, t.message_count, t.last_message_at, t.snippet, \
             {THREAD_PARTICIPANTS} AS participants, {THREAD_LINKS} AS links FROM threads t WHERE t.organization_id \
             = $1 AND t.thread_id = $2"
        );
        let row = sqlx::query(&sql).bind(organization).bind(thread).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(thread_row).transpose()?)
    }

    async fn messages(&self, organization: Uuid, thread: Uuid) -> StoreResult<Vec<MessageRow>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.organization_id = $1 AND m.thread_id = $2 ORDER BY \
             m.sent_at, m.message_id"
        );
        let rows = sqlx::query(&sql).bind(organization).bind(thread).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(message_row).collect::<Result<_, _>>()?)
    }

    async fn message(&self, organization: Uuid, message: Uuid) -> StoreResult<Option<MessageRow>> {
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.organization_id = $1 AND m.message_id = $2");
        let row = sqlx::query(&sql).bind(organization).bind(message).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(message_row).transpose()?)
    }

    async fn sent_for_request(&self, organization: Uuid, request_id: &str) -> StoreResult<Option<MessageRow>> {
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.organization_id = $1 AND m.request_id = $2");
        let row = sqlx::query(&sql).bind(organization).bind(request_id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(message_row).transpose()?)
    }
}

/// Recomputes a thread's counters from its messages (the row lock orders concurrent imports
/// into one thread); an emptied thread goes.
async fn refresh_thread(tx: &mut sqlx::PgConnection, thread: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE threads t SET message_count = s.n, last_message_at = s.last, snippet = coalesce(s.snippet, '') \
         FROM (SELECT count(*)::int AS n, max(sent_at) AS last, (array_agg(left(regexp_replace(text_body, '\\s+', \
         ' ', 'g'), 200) ORDER BY sent_at DESC))[1] AS snippet FROM messages WHERE thread_id = $1) s WHERE \
         t.thread_id = $1",
    )
    .bind(thread)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM threads WHERE thread_id = $1 AND message_count = 0")
        .bind(thread)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
