//! The MongoDB adapter of [`MailStore`]: one document per message, thread, thread key, queued id,
//! log entry and contact, in the database named by the configuration. Indexes are created at
//! start-up (idempotently). Only operations every MongoDB 6+ server supports are used, and none
//! the conformance suite (`tests/api/store.rs`) does not cover.
//!
//! Ids are UUID strings; times are BSON dates (millisecond precision, as MongoDB keeps them).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, TimeZone as _, Utc};
use futures::TryStreamExt as _;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Database, IndexModel};
use uuid::Uuid;

use crate::mime::{AttachmentInfo, Mailbox};
use crate::store::{
    After, Imported, Link, MailStore, MessageRow, NewMessage, StoreError, StoreResult, Subject, ThreadRow,
};

/// The MongoDB adapter.
#[derive(Clone, Debug)]
pub struct MongoMailStore {
    db: Database,
}

fn date(t: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(t.timestamp_millis())
}

fn chrono_of(t: bson::DateTime) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t.timestamp_millis()).single().unwrap_or_default()
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn uuid_of(d: &Document, key: &str) -> StoreResult<Uuid> {
    d.get_str(key).ok().and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(|| corrupt(key))
}

fn string_of(d: &Document, key: &str) -> String {
    d.get_str(key).unwrap_or_default().to_owned()
}

fn strings_of(d: &Document, key: &str) -> Vec<String> {
    d.get_array(key).map(|a| a.iter().filter_map(|b| b.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

fn mailboxes_bson(list: &[Mailbox]) -> Bson {
    Bson::Array(list.iter().map(|m| Bson::Document(doc! { "name": &m.name, "email": &m.email })).collect())
}

fn mailboxes_of(d: &Document, key: &str) -> Vec<Mailbox> {
    d.get_array(key)
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|m| Mailbox { name: string_of(m, "name"), email: string_of(m, "email") })
                .collect()
        })
        .unwrap_or_default()
}

fn is_duplicate(error: &mongodb::error::Error) -> bool {
    matches!(
        error.kind.as_ref(),
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) if e.code == 11000
    )
}

impl MongoMailStore {
    /// Connects to `url`, uses `database`, and creates the indexes.
    pub async fn connect(url: &str, database: &str) -> StoreResult<Self> {
        let client = Client::with_uri_str(url).await?;
        let store = Self { db: client.database(database) };
        store.create_indexes().await?;
        Ok(store)
    }

    fn messages(&self) -> Collection<Document> {
        self.db.collection("messages")
    }
    fn threads(&self) -> Collection<Document> {
        self.db.collection("threads")
    }
    fn thread_keys(&self) -> Collection<Document> {
        self.db.collection("thread_keys")
    }
    fn queue(&self) -> Collection<Document> {
        self.db.collection("sync_queue")
    }
    fn logs(&self) -> Collection<Document> {
        self.db.collection("sync_log")
    }
    fn contacts(&self) -> Collection<Document> {
        self.db.collection("contacts")
    }

    async fn create_indexes(&self) -> StoreResult<()> {
        let unique = || IndexOptions::builder().unique(true).build();
        let index = |keys: Document| IndexModel::builder().keys(keys).build();
        self.messages()
            .create_index(
                IndexModel::builder().keys(doc! { "mailbox_id": 1, "provider_id": 1 }).options(unique()).build(),
            )
            .await?;
        let requests = IndexOptions::builder()
            .unique(true)
            .partial_filter_expression(doc! { "request_id": { "$type": "string" } })
            .build();
        self.messages()
            .create_index(
                IndexModel::builder().keys(doc! { "organization_id": 1, "request_id": 1 }).options(requests).build(),
            )
            .await?;
        self.messages().create_index(index(doc! { "mailbox_id": 1, "rfc_message_id": 1 })).await?;
        self.messages().create_index(index(doc! { "organization_id": 1, "addresses": 1 })).await?;
        self.messages().create_index(index(doc! { "thread_id": 1, "sent_at": 1 })).await?;
        self.messages()
            .create_index(index(
                doc! { "subject": "text", "text_body": "text", "addresses": "text", "from.name": "text" },
            ))
            .await?;
        self.threads().create_index(index(doc! { "organization_id": 1, "last_message_at": -1 })).await?;
        self.queue().create_index(index(doc! { "mailbox_id": 1, "provider_id": 1 })).await?;
        self.logs().create_index(index(doc! { "mailbox_id": 1, "at": 1 })).await?;
        self.contacts().create_index(index(doc! { "organization_id": 1, "address": 1 })).await?;
        Ok(())
    }

    /// Links of messages with these addresses (the contact index joined in memory).
    async fn links_for(&self, organization: Uuid, addresses: &BTreeSet<String>) -> StoreResult<Vec<(String, Link)>> {
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<&String> = addresses.iter().collect();
        let found: Vec<Document> = self
            .contacts()
            .find(doc! { "organization_id": organization.to_string(), "address": { "$in": list } })
            .await?
            .try_collect()
            .await?;
        found
            .iter()
            .map(|c| {
                Ok((
                    string_of(c, "address"),
                    Link {
                        kind: string_of(c, "kind"),
                        record_id: uuid_of(c, "record_id")?,
                        brand_id: uuid_of(c, "brand_id")?,
                    },
                ))
            })
            .collect()
    }

    fn message_of(d: &Document, links: Vec<Link>, provider_thread_id: Option<String>) -> StoreResult<MessageRow> {
        let attachments = d
            .get_array("attachments")
            .map(|a| {
                a.iter()
                    .filter_map(Bson::as_document)
                    .map(|x| AttachmentInfo {
                        file_name: string_of(x, "file_name"),
                        content_type: string_of(x, "content_type"),
                        size: x.get_i64("size").unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let from = d.get_document("from").ok();
        Ok(MessageRow {
            message_id: uuid_of(d, "_id")?,
            thread_id: uuid_of(d, "thread_id")?,
            mailbox_id: uuid_of(d, "mailbox_id")?,
            provider_id: string_of(d, "provider_id"),
            provider_thread_id,
            rfc_message_id: string_of(d, "rfc_message_id"),
            references: strings_of(d, "references"),
            from: Mailbox {
                name: from.map(|f| string_of(f, "name")).unwrap_or_default(),
                email: from.map(|f| string_of(f, "email")).unwrap_or_default(),
            },
            to: mailboxes_of(d, "to"),
            cc: mailboxes_of(d, "cc"),
            subject: string_of(d, "subject"),
            text_body: string_of(d, "text_body"),
            html_body: string_of(d, "html_body"),
            labels: strings_of(d, "labels"),
            sent_at: d.get_datetime("sent_at").map(|t| chrono_of(*t)).map_err(|_| corrupt("sent_at"))?,
            attachments,
            parse_error: d.get_bool("parse_error").unwrap_or_default(),
            links,
        })
    }

    /// Messages with their links and provider thread ids.
    async fn rows(&self, organization: Uuid, docs: Vec<Document>) -> StoreResult<Vec<MessageRow>> {
        let addresses: BTreeSet<String> = docs.iter().flat_map(|d| strings_of(d, "addresses")).collect();
        let links = self.links_for(organization, &addresses).await?;
        let mut keys = HashMap::new();
        for d in &docs {
            let thread = string_of(d, "thread_id");
            if !keys.contains_key(&thread)
                && let Some(key) = self.thread_keys().find_one(doc! { "thread_id": &thread }).await?
            {
                keys.insert(thread, string_of(&key, "provider_thread_id"));
            }
        }
        docs.iter()
            .map(|d| {
                let own: BTreeSet<String> = strings_of(d, "addresses").into_iter().collect();
                let mut mine: Vec<Link> =
                    links.iter().filter(|(a, _)| own.contains(a)).map(|(_, l)| l.clone()).collect();
                mine.sort_by_key(|l| (l.kind.clone(), l.record_id));
                mine.dedup();
                Self::message_of(d, mine, keys.get(&string_of(d, "thread_id")).cloned())
            })
            .collect()
    }

    async fn thread_rows(&self, organization: Uuid, docs: Vec<Document>) -> StoreResult<Vec<ThreadRow>> {
        let mut out = Vec::with_capacity(docs.len());
        for t in docs {
            let thread_id = string_of(&t, "_id");
            let messages: Vec<Document> =
                self.messages().find(doc! { "thread_id": &thread_id }).await?.try_collect().await?;
            let mut participants: Vec<Mailbox> = Vec::new();
            let mut seen = BTreeSet::new();
            for m in &messages {
                let from = m
                    .get_document("from")
                    .ok()
                    .map(|f| Mailbox { name: string_of(f, "name"), email: string_of(f, "email") });
                for p in from.into_iter().chain(mailboxes_of(m, "to")).chain(mailboxes_of(m, "cc")) {
                    if !p.email.is_empty() && seen.insert(p.email.clone()) {
                        participants.push(p);
                    }
                }
            }
            let addresses: BTreeSet<String> = messages.iter().flat_map(|d| strings_of(d, "addresses")).collect();
            let mut links: Vec<Link> =
                self.links_for(organization, &addresses).await?.into_iter().map(|(_, l)| l).collect();
            links.sort_by_key(|l| (l.kind.clone(), l.record_id));
            links.dedup();
            out.push(ThreadRow {
                thread_id: uuid_of(&t, "_id")?,
                mailbox_id: uuid_of(&t, "mailbox_id")?,
                subject: string_of(&t, "subject"),
                message_count: t.get_i32("message_count").unwrap_or_default(),
                last_message_at: t.get_datetime("last_message_at").ok().map(|d| chrono_of(*d)),
                snippet: string_of(&t, "snippet"),
                participants,
                links,
            });
        }
        Ok(out)
    }

    /// Recomputes a thread's counters from its messages; an emptied thread goes.
    async fn refresh_thread(&self, thread: &str) -> StoreResult<()> {
        let count = self.messages().count_documents(doc! { "thread_id": thread }).await?;
        if count == 0 {
            self.threads().delete_one(doc! { "_id": thread }).await?;
            return Ok(());
        }
        let newest = self
            .messages()
            .find_one(doc! { "thread_id": thread })
            .sort(doc! { "sent_at": -1, "_id": -1 })
            .await?
            .ok_or_else(|| corrupt("thread without messages"))?;
        let snippet: String = string_of(&newest, "text_body")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(200)
            .collect();
        self.threads()
            .update_one(
                doc! { "_id": thread },
                doc! { "$set": {
                    "message_count": i32::try_from(count).unwrap_or(i32::MAX),
                    "last_message_at": newest.get("sent_at").cloned().unwrap_or(Bson::Null),
                    "snippet": snippet,
                } },
            )
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl MailStore for MongoMailStore {
    async fn import(&self, message: &NewMessage) -> StoreResult<Imported> {
        let mail = &message.mail;
        let mailbox = message.mailbox_id.to_string();
        let mut same = vec![doc! { "provider_id": &message.provider_id }];
        if !mail.message_id.is_empty() {
            same.push(doc! { "rfc_message_id": &mail.message_id });
        }
        if let Some(existing) = self.messages().find_one(doc! { "mailbox_id": &mailbox, "$or": same }).await? {
            let id = uuid_of(&existing, "_id")?;
            if let Some(request) = &message.request_id {
                self.messages()
                    .update_one(
                        doc! { "_id": id.to_string(), "request_id": { "$exists": false } },
                        doc! { "$set": { "request_id": request } },
                    )
                    .await?;
            }
            return Ok(Imported::Duplicate(id));
        }
        let mut ids: Vec<&str> = mail.references.iter().map(String::as_str).collect();
        if !mail.in_reply_to.is_empty() {
            ids.push(&mail.in_reply_to);
        }
        let by_references = if ids.is_empty() {
            None
        } else {
            self.messages()
                .find_one(doc! { "mailbox_id": &mailbox, "rfc_message_id": { "$in": ids } })
                .await?
                .map(|d| string_of(&d, "thread_id"))
        };
        let key = format!("{mailbox}:{}", message.provider_thread_id);
        let candidate = by_references.unwrap_or_else(|| Uuid::now_v7().to_string());
        // The first writer of a provider thread key decides the thread; later ones read it.
        let keyed = self
            .thread_keys()
            .find_one_and_update(
                doc! { "_id": &key },
                doc! { "$setOnInsert": { "thread_id": &candidate, "mailbox_id": &mailbox, "provider_thread_id": &message.provider_thread_id } },
            )
            .upsert(true)
            .return_document(mongodb::options::ReturnDocument::After)
            .await?
            .ok_or_else(|| corrupt("thread key"))?;
        let thread_id = string_of(&keyed, "thread_id");
        self.threads()
            .update_one(
                doc! { "_id": &thread_id },
                doc! { "$setOnInsert": {
                    "organization_id": message.organization_id.to_string(),
                    "mailbox_id": &mailbox,
                    "subject": &mail.subject,
                    "message_count": 0,
                    "snippet": "",
                } },
            )
            .upsert(true)
            .await?;
        let addresses: BTreeSet<&str> =
            mail.from.iter().chain(mail.to.iter()).chain(mail.cc.iter()).map(|m| m.email.as_str()).collect();
        let id = Uuid::now_v7();
        let (from_name, from_email) = mail.from.as_ref().map(|f| (f.name.clone(), f.email.clone())).unwrap_or_default();
        let attachments: Vec<Bson> = mail
            .attachments
            .iter()
            .map(|a| {
                Bson::Document(doc! { "file_name": &a.file_name, "content_type": &a.content_type, "size": a.size })
            })
            .collect();
        let mut document = doc! {
            "_id": id.to_string(),
            "organization_id": message.organization_id.to_string(),
            "mailbox_id": &mailbox,
            "thread_id": &thread_id,
            "provider_id": &message.provider_id,
            "rfc_message_id": &mail.message_id,
            "in_reply_to": &mail.in_reply_to,
            "references": &mail.references,
            "from": { "name": from_name, "email": from_email },
            "to": mailboxes_bson(&mail.to),
            "cc": mailboxes_bson(&mail.cc),
            "subject": &mail.subject,
            "text_body": &mail.text_body,
            "html_body": &mail.html_body,
            "labels": &message.labels,
            "sent_at": date(mail.date.unwrap_or(message.internal_date)),
            "attachments": attachments,
            "parse_error": mail.parse_error,
            "size_bytes": message.size_bytes,
            "addresses": addresses.into_iter().collect::<Vec<_>>(),
        };
        if let Some(request) = &message.request_id {
            document.insert("request_id", request);
        }
        match self.messages().insert_one(document).await {
            Ok(_) => {}
            Err(error) if is_duplicate(&error) => {
                let existing = self
                    .messages()
                    .find_one(doc! { "mailbox_id": &mailbox, "provider_id": &message.provider_id })
                    .await?
                    .ok_or_else(|| corrupt("duplicate without a document"))?;
                return Ok(Imported::Duplicate(uuid_of(&existing, "_id")?));
            }
            Err(error) => return Err(error.into()),
        }
        self.refresh_thread(&thread_id).await?;
        Ok(Imported::New(id))
    }

    async fn delete(&self, mailbox: Uuid, provider_ids: &[String]) -> StoreResult<u64> {
        if provider_ids.is_empty() {
            return Ok(0);
        }
        let filter = doc! { "mailbox_id": mailbox.to_string(), "provider_id": { "$in": provider_ids } };
        let threads: Vec<Bson> = self.messages().distinct("thread_id", filter.clone()).await?;
        let deleted = self.messages().delete_many(filter).await?.deleted_count;
        for thread in threads.iter().filter_map(Bson::as_str) {
            self.refresh_thread(thread).await?;
        }
        Ok(deleted)
    }

    async fn enqueue(&self, mailbox: Uuid, provider_ids: &[String]) -> StoreResult<()> {
        for id in provider_ids {
            self.queue()
                .update_one(
                    doc! { "_id": format!("{mailbox}:{id}") },
                    doc! { "$setOnInsert": { "mailbox_id": mailbox.to_string(), "provider_id": id } },
                )
                .upsert(true)
                .await?;
        }
        Ok(())
    }

    async fn queued(&self, mailbox: Uuid, limit: i64) -> StoreResult<Vec<String>> {
        let found: Vec<Document> = self
            .queue()
            .find(doc! { "mailbox_id": mailbox.to_string() })
            .sort(doc! { "provider_id": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        Ok(found.iter().map(|d| string_of(d, "provider_id")).collect())
    }

    async fn dequeue(&self, mailbox: Uuid, provider_ids: &[String]) -> StoreResult<()> {
        if !provider_ids.is_empty() {
            self.queue()
                .delete_many(doc! { "mailbox_id": mailbox.to_string(), "provider_id": { "$in": provider_ids } })
                .await?;
        }
        Ok(())
    }

    async fn queue_len(&self, mailbox: Uuid) -> StoreResult<i64> {
        let n = self.queue().count_documents(doc! { "mailbox_id": mailbox.to_string() }).await?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    async fn message_count(&self, mailbox: Uuid) -> StoreResult<i64> {
        let n = self.messages().count_documents(doc! { "mailbox_id": mailbox.to_string() }).await?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    async fn log(&self, mailbox: Uuid, kind: &str, detail: &str) -> StoreResult<()> {
        self.logs()
            .insert_one(
                doc! { "mailbox_id": mailbox.to_string(), "at": date(Utc::now()), "kind": kind, "detail": detail },
            )
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
        self.contacts()
            .update_one(
                doc! { "_id": format!("{kind}:{id}") },
                doc! {
                    "$set": { "address": address },
                    "$setOnInsert": { "kind": kind, "record_id": id.to_string(), "organization_id": organization.to_string(), "brand_id": brand.to_string() },
                },
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    async fn update_contact(&self, subject: Subject, organization: Uuid, address: &str) -> StoreResult<bool> {
        let (kind, id) = subject.parts();
        let result = self
            .contacts()
            .update_one(
                doc! { "_id": format!("{kind}:{id}"), "organization_id": organization.to_string() },
                doc! { "$set": { "address": address } },
            )
            .await?;
        Ok(result.matched_count > 0)
    }

    async fn contact(&self, organization: Uuid, subject: Subject) -> StoreResult<Option<(String, Uuid)>> {
        let (kind, id) = subject.parts();
        let found = self
            .contacts()
            .find_one(doc! { "_id": format!("{kind}:{id}"), "organization_id": organization.to_string() })
            .await?;
        found.map(|c| Ok((string_of(&c, "address"), uuid_of(&c, "brand_id")?))).transpose()
    }

    async fn threads(
        &self,
        organization: Uuid,
        address: &str,
        query: Option<&str>,
        after: Option<After>,
        limit: i64,
    ) -> StoreResult<Vec<ThreadRow>> {
        let mut filter = doc! { "organization_id": organization.to_string(), "addresses": address };
        let mut ids: Vec<Bson> = self.messages().distinct("thread_id", filter.clone()).await?;
        if let Some(query) = query {
            // A second pass: $text must be the query's top-level text clause.
            filter = doc! { "organization_id": organization.to_string(), "$text": { "$search": query } };
            let matching: BTreeSet<String> = self
                .messages()
                .distinct("thread_id", filter)
                .await?
                .into_iter()
                .filter_map(|b| b.as_str().map(str::to_owned))
                .collect();
            ids.retain(|b| b.as_str().is_some_and(|s| matching.contains(s)));
        }
        let mut thread_filter = doc! { "_id": { "$in": ids }, "message_count": { "$gt": 0 } };
        if let Some(after) = after {
            let at = date(after.last_message_at);
            thread_filter.insert(
                "$or",
                vec![
                    doc! { "last_message_at": { "$lt": at } },
                    doc! { "last_message_at": at, "_id": { "$lt": after.thread_id.to_string() } },
                ],
            );
        }
        let docs: Vec<Document> = self
            .threads()
            .find(thread_filter)
            .sort(doc! { "last_message_at": -1, "_id": -1 })
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        self.thread_rows(organization, docs).await
    }

    async fn thread(&self, organization: Uuid, thread: Uuid) -> StoreResult<Option<ThreadRow>> {
        let found = self
            .threads()
            .find_one(doc! { "_id": thread.to_string(), "organization_id": organization.to_string() })
            .await?;
        Ok(self.thread_rows(organization, found.into_iter().collect()).await?.into_iter().next())
    }

    async fn messages(&self, organization: Uuid, thread: Uuid) -> StoreResult<Vec<MessageRow>> {
        let docs: Vec<Document> = self
            .messages()
            .find(doc! { "organization_id": organization.to_string(), "thread_id": thread.to_string() })
            .sort(doc! { "sent_at": 1, "_id": 1 })
            .await?
            .try_collect()
            .await?;
        self.rows(organization, docs).await
    }

    async fn message(&self, organization: Uuid, message: Uuid) -> StoreResult<Option<MessageRow>> {
        let found = self
            .messages()
            .find_one(doc! { "organization_id": organization.to_string(), "_id": message.to_string() })
            .await?;
        Ok(self.rows(organization, found.into_iter().collect()).await?.into_iter().next())
    }

    async fn sent_for_request(&self, organization: Uuid, request_id: &str) -> StoreResult<Option<MessageRow>> {
        let found = self
            .messages()
            .find_one(doc! { "organization_id": organization.to_string(), "request_id": request_id })
            .await?;
        Ok(self.rows(organization, found.into_iter().collect()).await?.into_iter().next())
    }
}
