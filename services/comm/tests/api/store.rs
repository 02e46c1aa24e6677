//! The mail store's conformance suite: the contract of `MailStore`, written once and run against
//! every configured adapter: PostgreSQL always, MongoDB when `SENTRA_TEST_MONGODB_URL` is set
//! (a server this machine cannot run; see docs/operations.md for running it locally).

use std::sync::Arc;

use chrono::{TimeZone as _, Utc};
use sentra_comm::mime::{Mailbox, ParsedMail};
use sentra_comm::mongo::MongoMailStore;
use sentra_comm::store::{After, Imported, MailStore, NewMessage, PgMailStore, Subject};
use sentra_testkit::TestDatabase;
use uuid::Uuid;

/// A PostgreSQL store on a fresh, migrated database, with one mailbox row (the foreign key).
async fn postgres() -> (Arc<dyn MailStore>, TestDatabase, Vec<Uuid>) {
    let db = TestDatabase::create().await;
    let mut config = sentra_runtime::config::DatabaseConfig::for_schema("comm");
    config.url = db.secret_url();
    let pool = sentra_runtime::db::connect_and_migrate(&config, sentra_comm::migrators()).await.unwrap();
    let mut mailboxes = Vec::new();
    for _ in 0..2 {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO mailboxes (mailbox_id, organization_id, user_id, email_address, kek_id, wrapped_key, \
             refresh_token) VALUES ($1, $2, $3, $4, 'k', '\\x00', '\\x00')",
        )
        .bind(id)
        .bind(Uuid::now_v7())
        .bind(Uuid::now_v7())
        .bind(format!("{id}@agency.example"))
        .execute(&pool)
        .await
        .unwrap();
        mailboxes.push(id);
    }
    (Arc::new(PgMailStore::new(pool)), db, mailboxes)
}

fn mail(from: &str, to: &str, subject: &str, body: &str, id: &str, parent: Option<&str>, at: i64) -> ParsedMail {
    ParsedMail {
        message_id: id.into(),
        in_reply_to: parent.unwrap_or_default().into(),
        references: parent.map(|p| vec![p.to_owned()]).unwrap_or_default(),
        from: Some(Mailbox { name: from.split('@').next().unwrap_or_default().into(), email: from.into() }),
        to: vec![Mailbox { name: String::new(), email: to.into() }],
        cc: Vec::new(),
        subject: subject.into(),
        text_body: body.into(),
        html_body: String::new(),
        date: Some(Utc.timestamp_opt(1_790_000_000 + at, 0).unwrap()),
        attachments: Vec::new(),
        parse_error: false,
    }
}

fn message(org: Uuid, mailbox: Uuid, provider: &str, thread: &str, mail: ParsedMail) -> NewMessage {
    NewMessage {
        organization_id: org,
        mailbox_id: mailbox,
        provider_id: provider.into(),
        provider_thread_id: thread.into(),
        labels: vec!["INBOX".into()],
        internal_date: Utc::now(),
        size_bytes: 100,
        mail,
        request_id: None,
    }
}

/// The suite: everything sync and the API rely on.
async fn conformance(store: Arc<dyn MailStore>, mailboxes: &[Uuid]) {
    let (org, other_org) = (Uuid::now_v7(), Uuid::now_v7());
    let (mb, mb2) = (mailboxes[0], mailboxes[1]);
    let (lead, client, brand) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let me = "agent@agency.example";

    // Import is keyed by provider id and by Message-ID within a mailbox.
    let first = store
        .import(&message(
            org,
            mb,
            "p1",
            "t1",
            mail("zoe@client.example", me, "Devis été", "Bonjour, un devis ?", "m1@c", None, 0),
        ))
        .await
        .unwrap();
    let Imported::New(first_id) = first else { panic!("new: {first:?}") };
    let again = store
        .import(&message(org, mb, "p1", "t1", mail("zoe@client.example", me, "Devis été", "x", "m1@c", None, 0)))
        .await
        .unwrap();
    assert_eq!(again, Imported::Duplicate(first_id));
    let same_id = store
        .import(&message(org, mb, "p1-copy", "t9", mail("zoe@client.example", me, "Devis été", "x", "m1@c", None, 0)))
        .await
        .unwrap();
    assert_eq!(same_id, Imported::Duplicate(first_id));
    // Another mailbox keeps its own copy (same ids, another conversation there).
    assert!(matches!(
        store
            .import(&message(org, mb2, "p1", "t1", mail("ann@client.example", me, "Devis été", "x", "m1@c", None, 0)))
            .await
            .unwrap(),
        Imported::New(_)
    ));
    assert_eq!(store.message_count(mb).await.unwrap(), 1);

    // Threads: by provider thread id, and a new provider thread joins by References.
    let reply = store
        .import(&message(
            org,
            mb,
            "p2",
            "t1",
            mail(me, "zoe@client.example", "Re: Devis été", "Oui.", "m2@a", Some("m1@c"), 60),
        ))
        .await
        .unwrap();
    let elsewhere = store
        .import(&message(
            org,
            mb,
            "p3",
            "t-other",
            mail("zoe@client.example", me, "Re: Devis été", "Et le délai ?", "m3@c", Some("m2@a"), 120),
        ))
        .await
        .unwrap();
    let unrelated = store
        .import(&message(org, mb, "p4", "t4", mail("news@weekly.example", me, "Digest", "unrelated", "m4@n", None, 30)))
        .await
        .unwrap();
    let thread = store.message(org, first_id).await.unwrap().unwrap().thread_id;
    for id in [reply.id(), elsewhere.id()] {
        assert_eq!(store.message(org, id).await.unwrap().unwrap().thread_id, thread);
    }
    assert_ne!(store.message(org, unrelated.id()).await.unwrap().unwrap().thread_id, thread);
    let messages = store.messages(org, thread).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.provider_id.as_str()).collect::<Vec<_>>(), ["p1", "p2", "p3"], "oldest first");
    assert_eq!(messages[2].references, ["m2@a"]);
    assert!(
        matches!(messages[0].provider_thread_id.as_deref(), Some("t1" | "t-other")),
        "a provider thread id to reply in"
    );

    // Links come from the address index, whenever it learns of the contact.
    assert!(store.messages(org, thread).await.unwrap()[0].links.is_empty());
    assert!(store.contact(org, Subject::Lead(lead)).await.unwrap().is_none());
    assert!(!store.update_contact(Subject::Lead(lead), org, "zoe@client.example").await.unwrap(), "not indexed yet");
    store.upsert_contact(Subject::Lead(lead), org, brand, "zoe@client.example").await.unwrap();
    store.upsert_contact(Subject::Client(client), org, brand, "other@client.example").await.unwrap();
    assert_eq!(store.contact(org, Subject::Lead(lead)).await.unwrap(), Some(("zoe@client.example".into(), brand)));
    assert!(store.contact(other_org, Subject::Lead(lead)).await.unwrap().is_none(), "another organization");
    let listed = store.threads(org, "zoe@client.example", None, None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    let t = &listed[0];
    assert_eq!(t.thread_id, thread);
    assert_eq!(t.message_count, 3);
    assert_eq!(t.subject, "Devis été");
    assert_eq!(t.snippet, "Et le délai ?");
    assert_eq!(t.last_message_at, Some(Utc.timestamp_opt(1_790_000_120, 0).unwrap()));
    assert!(t.links.iter().any(|l| l.kind == "lead" && l.record_id == lead && l.brand_id == brand));
    let mut who: Vec<_> = t.participants.iter().map(|p| p.email.clone()).collect();
    who.sort();
    assert_eq!(who, [me, "zoe@client.example"]);
    assert!(store.message(org, first_id).await.unwrap().unwrap().links.iter().any(|l| l.record_id == lead));
    assert!(store.threads(other_org, "zoe@client.example", None, None, 10).await.unwrap().is_empty());
    assert!(store.thread(other_org, thread).await.unwrap().is_none());
    assert!(store.message(other_org, first_id).await.unwrap().is_none());
    assert!(store.messages(other_org, thread).await.unwrap().is_empty());
    // An address change moves the links.
    assert!(store.update_contact(Subject::Lead(lead), org, "news@weekly.example").await.unwrap());
    let moved = store.threads(org, "news@weekly.example", None, None, 10).await.unwrap();
    assert_eq!(moved.len(), 1);
    assert!(moved[0].links.iter().any(|l| l.record_id == lead));
    store.update_contact(Subject::Lead(lead), org, "zoe@client.example").await.unwrap();

    // Full-text search over subject, body and participants.
    assert_eq!(store.threads(org, "zoe@client.example", Some("délai"), None, 10).await.unwrap().len(), 1);
    assert_eq!(store.threads(org, "zoe@client.example", Some("devis"), None, 10).await.unwrap().len(), 1);
    assert!(store.threads(org, "zoe@client.example", Some("invoice"), None, 10).await.unwrap().is_empty());

    // Paging: newest first, the keyset continues where the page ended.
    for i in 0..3 {
        store
            .import(&message(
                org,
                mb,
                &format!("k{i}"),
                &format!("tk{i}"),
                mail("kim@client.example", me, &format!("Topic {i}"), "x", &format!("k{i}@c"), None, 1000 + i),
            ))
            .await
            .unwrap();
    }
    let page = store.threads(org, "kim@client.example", None, None, 2).await.unwrap();
    assert_eq!(page.iter().map(|t| t.subject.as_str()).collect::<Vec<_>>(), ["Topic 2", "Topic 1"]);
    let last = page.last().unwrap();
    let after = After { last_message_at: last.last_message_at.unwrap(), thread_id: last.thread_id };
    let next = store.threads(org, "kim@client.example", None, Some(after), 2).await.unwrap();
    assert_eq!(next.iter().map(|t| t.subject.as_str()).collect::<Vec<_>>(), ["Topic 0"]);

    // Deletion updates the thread; an emptied thread goes.
    assert_eq!(store.delete(mb, &["p3".into(), "nope".into()]).await.unwrap(), 1);
    let t = store.thread(org, thread).await.unwrap().unwrap();
    assert_eq!((t.message_count, t.snippet.as_str()), (2, "Oui."));
    store.delete(mb, &["p4".into()]).await.unwrap();
    assert!(store.thread(org, store.message(org, first_id).await.unwrap().unwrap().thread_id).await.unwrap().is_some());
    assert!(store.message(org, unrelated.id()).await.unwrap().is_none());

    // SendEmail's request ids: found again, and kept when sync imported the message first.
    let mut sent = message(
        org,
        mb,
        "s1",
        "t1",
        mail(me, "zoe@client.example", "Re: Devis été", "Voici.", "s1@a", Some("m2@a"), 200),
    );
    sent.request_id = Some("req-1".into());
    let stored = store.import(&sent).await.unwrap();
    assert_eq!(store.sent_for_request(org, "req-1").await.unwrap().unwrap().message_id, stored.id());
    assert!(store.sent_for_request(other_org, "req-1").await.unwrap().is_none());
    let mut synced_first = message(org, mb, "s2", "t1", mail(me, "zoe@client.example", "Re", "x", "s2@a", None, 210));
    let imported = store.import(&synced_first).await.unwrap();
    synced_first.request_id = Some("req-2".into());
    assert_eq!(store.import(&synced_first).await.unwrap(), Imported::Duplicate(imported.id()));
    assert_eq!(store.sent_for_request(org, "req-2").await.unwrap().unwrap().message_id, imported.id());

    // The import queue: idempotent enqueue, ordered batches, dequeue of what was stored.
    let ids: Vec<String> = (0..5).map(|i| format!("q{i}")).collect();
    store.enqueue(mb, &ids).await.unwrap();
    store.enqueue(mb, &ids[..2]).await.unwrap();
    assert_eq!(store.queue_len(mb).await.unwrap(), 5);
    assert_eq!(store.queue_len(mb2).await.unwrap(), 0);
    assert_eq!(store.queued(mb, 3).await.unwrap(), ["q0", "q1", "q2"]);
    store.dequeue(mb, &ids[..3]).await.unwrap();
    assert_eq!(store.queued(mb, 10).await.unwrap(), ["q3", "q4"]);
    store.log(mb, "full_sync", "from history 1").await.unwrap();
}

#[tokio::test]
async fn the_postgres_store_keeps_the_contract() {
    let (store, _db, mailboxes) = postgres().await;
    conformance(store, &mailboxes).await;
}

#[tokio::test]
async fn the_mongodb_store_keeps_the_contract_when_a_server_is_configured() {
    let Ok(url) = std::env::var("SENTRA_TEST_MONGODB_URL") else {
        eprintln!("SENTRA_TEST_MONGODB_URL is not set: the MongoDB adapter's conformance run is skipped");
        return;
    };
    let database = format!("sentra_test_{}", Uuid::new_v4().simple());
    let store = MongoMailStore::connect(&url, &database).await.expect("MongoDB reachable");
    conformance(Arc::new(store), &[Uuid::now_v7(), Uuid::now_v7()]).await;
}
