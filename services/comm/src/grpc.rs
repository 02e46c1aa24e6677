//! `sentra.comm.v1.CommService`: requests validated at the boundary, the access rule, and the
//! mapping of stored records to the contract.

use std::sync::Arc;

use chrono::Utc;
use sentra_auth::{Caller, permissions as perm};
use sentra_directory::Directory;
use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::comm_service_server::CommService;
use sentra_runtime::wire::{self, timestamp as ts};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::aliases::{AliasRecord, Aliases};
use crate::error::CommError;
use crate::mailboxes::{FAILED_AFTER, MailboxRecord, Mailboxes};
use crate::mime::Mailbox;
use crate::sending::{SendCommand, Sender};
use crate::store::{After, Link, MailStore, MessageRow, Subject, ThreadRow};

/// The service implementation.
#[derive(Clone)]
pub struct CommApi {
    /// Mailboxes and tokens.
    pub mailboxes: Mailboxes,
    /// Mail storage.
    pub store: Arc<dyn MailStore>,
    /// Brand aliases.
    pub aliases: Aliases,
    /// Sending.
    pub sender: Sender,
    /// Tenancy, for brands owners and admins name.
    pub directory: Arc<Directory>,
    /// Wakes the sync worker.
    pub wake: Arc<Notify>,
}

/// Parses a UUID field.
pub fn id(field: &'static str, value: &str) -> Result<Uuid, CommError> {
    if value.trim().is_empty() {
        return Err(CommError::invalid(field, "is required"));
    }
    Uuid::parse_str(value.trim()).map_err(|_| CommError::invalid(field, "must be a UUID"))
}

/// The access rule on a brand, the one Sales and Finance apply (`sentra_kernel::authorize`).
pub async fn authorize(directory: &Directory, who: &Caller, permission: &str, brand: Uuid) -> Result<(), CommError> {
    Ok(sentra_kernel::authorize(directory, who, permission, brand).await?)
}

fn stage(record: &MailboxRecord) -> pb::SyncStage {
    use pb::SyncStage as S;
    if record.stage == "needs_reauth" {
        return S::NeedsReauth;
    }
    if record.throttled_until.is_some_and(|t| t > Utc::now()) {
        return S::Throttled;
    }
    if record.consecutive_failures >= FAILED_AFTER {
        return S::Failed;
    }
    match record.stage.as_str() {
        "listing" => S::Listing,
        "importing" => S::Importing,
        "active" => S::Active,
        _ => S::Pending,
    }
}

fn mailbox_pb(record: &MailboxRecord, message_count: i64, pending_count: i64) -> pb::Mailbox {
    pb::Mailbox {
        name: format!("mailboxes/{}", record.mailbox_id),
        mailbox_id: record.mailbox_id.to_string(),
        user_id: record.user_id.to_string(),
        email_address: record.email_address.clone(),
        provider: record.provider.clone(),
        stage: stage(record).into(),
        message_count,
        pending_count,
        last_synced_time: record.last_synced_at.map(ts),
        throttled_until: record.throttled_until.filter(|t| *t > Utc::now()).map(ts),
        last_error: record.last_error.clone().unwrap_or_default(),
        create_time: Some(ts(record.created_at)),
    }
}

fn alias_pb(alias: &AliasRecord) -> pb::EmailAlias {
    pb::EmailAlias {
        alias_id: alias.alias_id.to_string(),
        brand_id: alias.brand_id.to_string(),
        email_address: alias.email_address.clone(),
        display_name: alias.display_name.clone(),
        mailbox_id: alias.mailbox_id.to_string(),
        status: if alias.verified { pb::AliasStatus::Verified } else { pb::AliasStatus::Unverified }.into(),
        is_default: alias.is_default,
        verify_time: alias.verified_at.map(ts),
    }
}

fn address_pb(m: &Mailbox) -> pb::Address {
    pb::Address { name: m.name.clone(), email: m.email.clone() }
}

fn links_pb(links: &[Link]) -> Vec<pb::Link> {
    links
        .iter()
        .map(|l| pb::Link {
            lead_id: if l.kind == "lead" { l.record_id.to_string() } else { String::new() },
            client_id: if l.kind == "client" { l.record_id.to_string() } else { String::new() },
            brand_id: l.brand_id.to_string(),
        })
        .collect()
}

fn thread_pb(thread: &ThreadRow) -> pb::Thread {
    pb::Thread {
        thread_id: thread.thread_id.to_string(),
        subject: thread.subject.clone(),
        participants: thread.participants.iter().map(address_pb).collect(),
        message_count: thread.message_count,
        last_message_time: thread.last_message_at.map(ts),
        snippet: thread.snippet.clone(),
        links: links_pb(&thread.links),
    }
}

/// A message as the contract shows it.
pub fn message_pb(m: &MessageRow) -> pb::Message {
    pb::Message {
        message_id: m.message_id.to_string(),
        thread_id: m.thread_id.to_string(),
        mailbox_id: m.mailbox_id.to_string(),
        rfc_message_id: m.rfc_message_id.clone(),
        from: Some(address_pb(&m.from)),
        to: m.to.iter().map(address_pb).collect(),
        cc: m.cc.iter().map(address_pb).collect(),
        subject: m.subject.clone(),
        text_body: m.text_body.clone(),
        html_body: m.html_body.clone(),
        labels: m.labels.clone(),
        sent_time: Some(ts(m.sent_at)),
        attachments: m
            .attachments
            .iter()
            .map(|a| pb::Attachment {
                file_name: a.file_name.clone(),
                content_type: a.content_type.clone(),
                size: a.size,
            })
            .collect(),
        parse_error: m.parse_error,
        links: links_pb(&m.links),
    }
}

fn parse_page_token(token: &str) -> Result<Option<After>, CommError> {
    let after = wire::decode_cursor(token)
        .map_err(|()| CommError::invalid("page_token", "is not a token from a previous response"))?;
    Ok(after.map(|(last_message_at, thread_id)| After { last_message_at, thread_id }))
}

impl CommApi {
    /// A mailbox as the contract shows it, with its counts from the mail store.
    async fn mailbox_view(&self, record: &MailboxRecord) -> Result<pb::Mailbox, CommError> {
        let messages = self.store.message_count(record.mailbox_id).await?;
        let pending = self.store.queue_len(record.mailbox_id).await?;
        Ok(mailbox_pb(record, messages, pending))
    }

    async fn own_mailbox(&self, who: &Caller, mailbox: &str) -> Result<MailboxRecord, CommError> {
        let mailbox = id("mailbox_id", mailbox)?;
        match self.mailboxes.get(who.tenant(), mailbox).await? {
            Some(record) if record.user_id == who.principal.user_id => Ok(record),
            _ => Err(CommError::NotFound("mailbox")),
        }
    }

    /// Whether `who` may read a thread: it is in their own mailbox, or linked to a lead or client
    /// of a brand on which they hold `comm.thread.read`.
    async fn may_read(&self, who: &Caller, mailbox: Uuid, links: &[Link]) -> Result<bool, CommError> {
        if let Some(record) = self.mailboxes.get(who.tenant(), mailbox).await?
            && record.user_id == who.principal.user_id
        {
            return Ok(true);
        }
        // Owners and admins read every brand's conversations, but not mail in someone else's
        // mailbox that is linked to no lead or client (that is that person's own mail).
        Ok(match who.principal.brands_with(perm::THREAD_READ) {
            None => !links.is_empty(),
            Some(brands) => links.iter().any(|l| brands.contains(&l.brand_id)),
        })
    }
}

type Result2<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl CommService for CommApi {
    async fn start_mailbox_connection(
        &self,
        request: Request<pb::StartMailboxConnectionRequest>,
    ) -> Result2<pb::StartMailboxConnectionResponse> {
        let who = Caller::of(&request)?;
        who.principal.require(perm::MAILBOX_WRITE, None).map_err(CommError::from)?;
        let origin = request.metadata().get("origin").and_then(|v| v.to_str().ok());
        let (authorization_url, state) =
            self.mailboxes.start_connection(who.tenant(), who.principal.user_id, origin).await?;
        Ok(Response::new(pb::StartMailboxConnectionResponse { authorization_url, state }))
    }

    async fn complete_mailbox_connection(
        &self,
        request: Request<pb::CompleteMailboxConnectionRequest>,
    ) -> Result2<pb::CompleteMailboxConnectionResponse> {
        let who = Caller::of(&request)?;
        who.principal.require(perm::MAILBOX_WRITE, None).map_err(CommError::from)?;
        let req = request.into_inner();
        if req.code.trim().is_empty() {
            return Err(CommError::invalid("code", "is required").into());
        }
        if req.state.trim().is_empty() {
            return Err(CommError::invalid("state", "is required").into());
        }
        let record = self
            .mailboxes
            .complete_connection(who.tenant(), who.principal.user_id, req.code.trim(), req.state.trim())
            .await?;
        self.wake.notify_one();
        Ok(Response::new(pb::CompleteMailboxConnectionResponse { mailbox: Some(self.mailbox_view(&record).await?) }))
    }

    async fn list_mailboxes(&self, request: Request<pb::ListMailboxesRequest>) -> Result2<pb::ListMailboxesResponse> {
        let who = Caller::of(&request)?;
        who.principal.require(perm::MAILBOX_READ, None).map_err(CommError::from)?;
        let list = self.mailboxes.of_user(who.tenant(), who.principal.user_id).await?;
        let mut mailboxes = Vec::with_capacity(list.len());
        for record in &list {
            mailboxes.push(self.mailbox_view(record).await?);
        }
        Ok(Response::new(pb::ListMailboxesResponse { mailboxes }))
    }

    async fn get_mailbox(&self, request: Request<pb::GetMailboxRequest>) -> Result2<pb::GetMailboxResponse> {
        let who = Caller::of(&request)?;
        who.principal.require(perm::MAILBOX_READ, None).map_err(CommError::from)?;
        let record = self.own_mailbox(&who, &request.get_ref().mailbox_id).await?;
        Ok(Response::new(pb::GetMailboxResponse { mailbox: Some(self.mailbox_view(&record).await?) }))
    }

    async fn sync_mailbox(&self, request: Request<pb::SyncMailboxRequest>) -> Result2<pb::SyncMailboxResponse> {
        let who = Caller::of(&request)?;
        who.principal.require(perm::MAILBOX_WRITE, None).map_err(CommError::from)?;
        let record = self.own_mailbox(&who, &request.get_ref().mailbox_id).await?;
        self.mailboxes.make_due(record.mailbox_id).await?;
        self.wake.notify_one();
        Ok(Response::new(pb::SyncMailboxResponse { mailbox: Some(self.mailbox_view(&record).await?) }))
    }

    async fn create_email_alias(
        &self,
        request: Request<pb::CreateEmailAliasRequest>,
    ) -> Result2<pb::CreateEmailAliasResponse> {
        let who = Caller::of(&request)?;
        let req = request.into_inner();
        let brand = id("brand_id", &req.brand_id)?;
        authorize(&self.directory, &who, perm::ALIAS_WRITE, brand).await?;
        let address = crate::aliases::address("email_address", &req.email_address)?;
        let mailbox = self.own_mailbox(&who, &req.mailbox_id).await?;
        let display = req.display_name.trim();
        if display.chars().count() > 200 {
            return Err(CommError::invalid("display_name", "must be at most 200 characters").into());
        }
        let alias = self.aliases.create(who.tenant(), brand, &address, display, &mailbox, req.is_default).await?;
        Ok(Response::new(pb::CreateEmailAliasResponse { alias: Some(alias_pb(&alias)) }))
    }

    async fn list_email_aliases(
        &self,
        request: Request<pb::ListEmailAliasesRequest>,
    ) -> Result2<pb::ListEmailAliasesResponse> {
        let who = Caller::of(&request)?;
        let brand = id("brand_id", &request.get_ref().brand_id)?;
        authorize(&self.directory, &who, perm::ALIAS_READ, brand).await?;
        let aliases = self.aliases.of_brand(who.tenant(), brand).await?;
        Ok(Response::new(pb::ListEmailAliasesResponse { aliases: aliases.iter().map(alias_pb).collect() }))
    }

    async fn verify_email_alias(
        &self,
        request: Request<pb::VerifyEmailAliasRequest>,
    ) -> Result2<pb::VerifyEmailAliasResponse> {
        let who = Caller::of(&request)?;
        let alias_id = id("alias_id", &request.get_ref().alias_id)?;
        let alias = self.aliases.get(who.tenant(), alias_id).await?.ok_or(CommError::NotFound("alias"))?;
        authorize(&self.directory, &who, perm::ALIAS_WRITE, alias.brand_id).await?;
        let alias = self.aliases.verify(&alias).await?;
        Ok(Response::new(pb::VerifyEmailAliasResponse { alias: Some(alias_pb(&alias)) }))
    }

    async fn list_threads(&self, request: Request<pb::ListThreadsRequest>) -> Result2<pb::ListThreadsResponse> {
        let who = Caller::of(&request)?;
        let req = request.into_inner();
        let subject = match (req.lead_id.trim().is_empty(), req.client_id.trim().is_empty()) {
            (false, true) => Subject::Lead(id("lead_id", &req.lead_id)?),
            (true, false) => Subject::Client(id("client_id", &req.client_id)?),
            (true, true) => {
                return Err(CommError::invalid("lead_id", "one of lead_id and client_id is required").into());
            }
            (false, false) => {
                return Err(CommError::invalid("client_id", "give either lead_id or client_id, not both").into());
            }
        };
        let what = if matches!(subject, Subject::Lead(_)) { "lead" } else { "client" };
        let limit =
            wire::page_size(req.page_size).ok_or_else(|| CommError::invalid("page_size", "must not be negative"))?;
        let after = parse_page_token(&req.page_token)?;
        let query = req.query.trim();
        if query.chars().count() > 500 {
            return Err(CommError::invalid("query", "must be at most 500 characters").into());
        }
        // The lead or client, its brand and address, as Sales last published them.
        let (address, brand) = self
            .store
            .contact(who.tenant(), subject)
            .await
            .map_err(CommError::from)?
            .ok_or(CommError::NotFound(what))?;
        if !who.principal.may_see_brand(brand) {
            return Err(CommError::NotFound(what).into());
        }
        who.principal.require(perm::THREAD_READ, Some(brand)).map_err(CommError::from)?;
        if address.is_empty() {
            return Ok(Response::new(pb::ListThreadsResponse::default()));
        }
        let threads = self
            .store
            .threads(who.tenant(), &address, (!query.is_empty()).then_some(query), after, limit + 1)
            .await
            .map_err(CommError::from)?;
        let more = threads.len() as i64 > limit;
        let threads: Vec<_> = threads.into_iter().take(usize::try_from(limit).unwrap_or(50)).collect();
        let next_page_token = match threads.last() {
            Some(last) if more => wire::encode_cursor(last.last_message_at.unwrap_or_default(), last.thread_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListThreadsResponse { threads: threads.iter().map(thread_pb).collect(), next_page_token }))
    }

    async fn get_thread(&self, request: Request<pb::GetThreadRequest>) -> Result2<pb::GetThreadResponse> {
        let who = Caller::of(&request)?;
        let thread_id = id("thread_id", &request.get_ref().thread_id)?;
        let thread = self.store.thread(who.tenant(), thread_id).await.map_err(CommError::from)?;
        let Some(thread) = thread else { return Err(CommError::NotFound("thread").into()) };
        if !self.may_read(&who, thread.mailbox_id, &thread.links).await? {
            return Err(CommError::NotFound("thread").into());
        }
        let messages = self.store.messages(who.tenant(), thread_id).await.map_err(CommError::from)?;
        Ok(Response::new(pb::GetThreadResponse {
            thread: Some(thread_pb(&thread)),
            messages: messages.iter().map(message_pb).collect(),
        }))
    }

    async fn send_email(&self, request: Request<pb::SendEmailRequest>) -> Result2<pb::SendEmailResponse> {
        let who = Caller::of(&request)?;
        let req = request.into_inner();
        let command = SendCommand::try_from(req)?;
        authorize(&self.directory, &who, perm::EMAIL_SEND, command.brand_id).await?;
        if let Some(parent) = command.reply_to {
            let parent = self.store.message(who.tenant(), parent).await.map_err(CommError::from)?;
            let readable = match &parent {
                Some(p) => self.may_read(&who, p.mailbox_id, &p.links).await?,
                None => false,
            };
            if !readable {
                return Err(CommError::NotFound("message").into());
            }
        }
        let sent = self.sender.send(&who, command).await?;
        Ok(Response::new(pb::SendEmailResponse { message: Some(message_pb(&sent)) }))
    }
}
