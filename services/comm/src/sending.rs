//! SendEmail: from a brand alias through its mailbox, new or as a reply, once per request id.

use std::sync::Arc;

use chrono::Utc;
use sentra_auth::Caller;
use sentra_proto::sentra::comm::v1 as pb;
use uuid::Uuid;

use crate::aliases::{self, Aliases};
use crate::error::CommError;
use crate::mailboxes::Mailboxes;
use crate::mime::{self, Mailbox, Outgoing};
use crate::store::{MailStore, MessageRow, NewMessage};

/// Longest subject accepted (RFC 5322's line limit).
const MAX_SUBJECT: usize = 998;
/// Longest body accepted, in bytes.
const MAX_BODY: usize = 1024 * 1024;
/// Most recipients (To and Cc together).
const MAX_RECIPIENTS: usize = 100;

/// A validated SendEmail.
#[derive(Debug, Clone)]
pub struct SendCommand {
    /// Brand.
    pub brand_id: Uuid,
    /// Alias.
    pub alias_id: Uuid,
    /// To (may be empty for a reply: the parent's sender).
    pub to: Vec<Mailbox>,
    /// Cc.
    pub cc: Vec<Mailbox>,
    /// Subject (may be empty for a reply).
    pub subject: String,
    /// Body.
    pub text_body: String,
    /// The message replied to.
    pub reply_to: Option<Uuid>,
    /// Idempotency key.
    pub request_id: Option<String>,
}

fn recipients(field: &'static str, list: &[pb::Address]) -> Result<Vec<Mailbox>, CommError> {
    list.iter()
        .map(|a| {
            let name = a.name.trim();
            if name.chars().any(char::is_control) || name.chars().count() > 200 {
                return Err(CommError::invalid(field, "a display name has control characters or is too long"));
            }
            Ok(Mailbox { name: name.to_owned(), email: aliases::address(field, &a.email)? })
        })
        .collect()
}

impl TryFrom<pb::SendEmailRequest> for SendCommand {
    type Error = CommError;

    fn try_from(req: pb::SendEmailRequest) -> Result<Self, CommError> {
        let reply_to = match req.reply_to_message_id.trim() {
            "" => None,
            v => Some(crate::grpc::id("reply_to_message_id", v)?),
        };
        let to = recipients("to", &req.to)?;
        let cc = recipients("cc", &req.cc)?;
        if to.is_empty() && reply_to.is_none() {
            return Err(CommError::invalid("to", "at least one recipient is required"));
        }
        if to.len() + cc.len() > MAX_RECIPIENTS {
            return Err(CommError::invalid("to", format!("at most {MAX_RECIPIENTS} recipients")));
        }
        let subject = req.subject.trim().to_owned();
        if subject.chars().any(char::is_control) {
            return Err(CommError::invalid("subject", "must be one line"));
        }
        if subject.len() > MAX_SUBJECT {
            return Err(CommError::invalid("subject", format!("must be at most {MAX_SUBJECT} bytes")));
        }
        if subject.is_empty() && reply_to.is_none() {
            return Err(CommError::invalid("subject", "is required"));
        }
        if req.text_body.len() > MAX_BODY {
            return Err(CommError::invalid("text_body", format!("must be at most {MAX_BODY} bytes")));
        }
        let request_id = match req.request_id.trim() {
            "" => None,
            v if v.len() > 200 => return Err(CommError::invalid("request_id", "must be at most 200 characters")),
            v => Some(v.to_owned()),
        };
        Ok(Self {
            brand_id: crate::grpc::id("brand_id", &req.brand_id)?,
            alias_id: crate::grpc::id("alias_id", &req.alias_id)?,
            to,
            cc,
            subject,
            text_body: req.text_body,
            reply_to,
            request_id,
        })
    }
}

/// Sends mail.
#[derive(Clone)]
pub struct Sender {
    /// The pool (for the per-request lock).
    pub pool: sqlx::PgPool,
    /// Mail storage.
    pub store: Arc<dyn MailStore>,
    /// Mailboxes and tokens.
    pub mailboxes: Mailboxes,
    /// Aliases.
    pub aliases: Aliases,
}

impl Sender {
    /// Sends `command` for `who` (already authorized on the brand) and stores the sent message
    /// in its thread. The same request id returns the first call's message without sending.
    pub async fn send(&self, who: &Caller, command: SendCommand) -> Result<MessageRow, CommError> {
        let org = who.tenant();
        // Concurrent retries of one request wait for each other; the second finds the first's message.
        let mut lock = self.pool.begin().await?;
        if let Some(request) = &command.request_id {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("comm.send:{org}:{request}"))
                .execute(&mut *lock)
                .await?;
            if let Some(sent) = self.store.sent_for_request(org, request).await? {
                return Ok(sent);
            }
        }
        let alias = self.aliases.get(org, command.alias_id).await?;
        let alias = alias.filter(|a| a.brand_id == command.brand_id).ok_or(CommError::NotFound("alias"))?;
        if !alias.verified {
            return Err(CommError::Precondition(
                "ALIAS_UNVERIFIED",
                "the alias is not a verified send-as address of its mailbox; verify it first".into(),
            ));
        }
        let parent = match command.reply_to {
            Some(id) => Some(self.store.message(org, id).await?.ok_or(CommError::NotFound("message"))?),
            None => None,
        };
        let to = match (&parent, command.to.is_empty()) {
            (Some(p), true) => vec![p.from.clone()],
            _ => command.to.clone(),
        };
        let subject = match (&parent, command.subject.is_empty()) {
            (Some(p), true) if p.subject.to_lowercase().starts_with("re:") => p.subject.clone(),
            (Some(p), true) => format!("Re: {}", p.subject),
            _ => command.subject.clone(),
        };
        let domain = alias.email_address.split_once('@').map(|(_, d)| d).unwrap_or("sentra.invalid");
        let message_id = format!("{}@{domain}", Uuid::now_v7());
        let mut references = parent.as_ref().map(|p| p.references.clone()).unwrap_or_default();
        if let Some(p) = &parent
            && !p.rfc_message_id.is_empty()
        {
            references.push(p.rfc_message_id.clone());
        }
        let outgoing = Outgoing {
            from: Mailbox { name: alias.display_name.clone(), email: alias.email_address.clone() },
            to,
            cc: command.cc.clone(),
            subject,
            text_body: command.text_body.clone(),
            message_id,
            in_reply_to: parent.as_ref().map(|p| p.rfc_message_id.clone()).filter(|id| !id.is_empty()),
            references,
            date: Utc::now(),
        };
        let raw = mime::build(&outgoing).map_err(|e| CommError::corrupt(format!("building MIME: {e}")))?;
        // Gmail files a reply in the parent's thread when both live in the sending mailbox.
        let provider_thread =
            parent.as_ref().filter(|p| p.mailbox_id == alias.mailbox_id).and_then(|p| p.provider_thread_id.clone());
        let token = self.mailboxes.access_token(alias.mailbox_id).await?;
        let sent =
            self.mailboxes.gmail().send(&token, &raw, provider_thread.as_deref()).await.map_err(CommError::Provider)?;
        let message = NewMessage {
            organization_id: org,
            mailbox_id: alias.mailbox_id,
            provider_id: sent.id,
            provider_thread_id: sent.thread_id,
            labels: vec!["SENT".into()],
            internal_date: outgoing.date,
            size_bytes: i64::try_from(raw.len()).unwrap_or(i64::MAX),
            mail: mime::parse(&raw),
            request_id: command.request_id.clone(),
        };
        let stored = self.store.import(&message).await?;
        lock.commit().await?;
        self.store.message(org, stored.id()).await?.ok_or(CommError::NotFound("message"))
    }
}
