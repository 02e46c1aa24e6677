//! Gmail sync: full, incremental, 404 fallback, crash resume, rate limits, malformed mail.

use std::time::Duration;

use sentra_proto::sentra::comm::v1 as pb;
use sentra_testkit::gmail::{Endpoint, Fault, MailSpec};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{eventually_long, spawn, spawn_with};

async fn stored_ids(pool: &PgPool, mailbox: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT provider_id FROM comm.messages WHERE mailbox_id = $1::uuid ORDER BY provider_id")
        .bind(mailbox)
        .fetch_all(pool)
        .await
        .unwrap()
}

fn provider_ids(world: &crate::helpers::World, email: &str) -> Vec<String> {
    let mut ids: Vec<String> = world.gmail.listed_messages(email).into_iter().map(|(id, _)| id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn full_sync_of_2000_then_incremental_imports_only_the_new_mail() {
    let world = spawn().await;
    let agency = world.agency("Full Sync").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    world.gmail.seed(&email, 2000);
    // Spam and trash are not listed (as in Gmail).
    let total = world.gmail.listed_messages(&email).len() as i64;
    assert!(total > 1900, "{total}");
    let mailbox = world.connect(&agency.agent, &email).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, total).await;
    let pool = world.pool().await;
    assert_eq!(stored_ids(&pool, &mailbox.mailbox_id).await, provider_ids(&world, &email));
    let gets = world.gmail.calls(Endpoint::MessagesGet);
    let lists = world.gmail.calls(Endpoint::MessagesList);
    assert_eq!(gets, total as usize, "each message fetched once");

    // New mail: the next pass reads history and fetches exactly that message.
    let new = world.gmail.deliver(&email, MailSpec::new("Nia", "nia@client.example", "Nouveau message", "Bonjour"));
    world.sync_now(&agency.agent, &mailbox.mailbox_id).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, total + 1).await;
    assert_eq!(world.gmail.calls(Endpoint::MessagesGet), gets + 1);
    assert_eq!(world.gmail.calls(Endpoint::MessagesList), lists, "no listing again");
    let subject: String = sqlx::query_scalar("SELECT subject FROM comm.messages WHERE provider_id = $1")
        .bind(&new.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(subject, "Nouveau message");

    // Deleted at the provider: deleted here. Added and deleted in one window: never fetched.
    let gone = world.gmail.listed_messages(&email)[0].0.clone();
    world.gmail.delete(&email, &gone);
    let brief = world.gmail.deliver(&email, MailSpec::new("Brief", "brief@client.example", "Here and gone", "x"));
    world.gmail.delete(&email, &brief.id);
    let gets = world.gmail.calls(Endpoint::MessagesGet);
    world.sync_now(&agency.agent, &mailbox.mailbox_id).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, total).await;
    assert_eq!(world.gmail.calls(Endpoint::MessagesGet), gets);
    assert_eq!(stored_ids(&pool, &mailbox.mailbox_id).await, provider_ids(&world, &email));
    world.shutdown().await;
}

#[tokio::test]
async fn a_404_on_history_falls_back_to_a_full_sync_without_duplicates() {
    let world = spawn().await;
    let agency = world.agency("Stale History").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    world.gmail.seed(&email, 40);
    let total = world.gmail.listed_messages(&email).len() as i64;
    let mailbox = world.connect(&agency.agent, &email).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, total).await;
    let lists = world.gmail.calls(Endpoint::MessagesList);

    world.gmail.deliver(&email, MailSpec::new("Late", "late@client.example", "While we were away", "x"));
    world.gmail.expire_history(&email);
    world.sync_now(&agency.agent, &mailbox.mailbox_id).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, total + 1).await;
    assert!(world.gmail.calls(Endpoint::MessagesList) > lists, "listed again");
    let pool = world.pool().await;
    assert_eq!(stored_ids(&pool, &mailbox.mailbox_id).await, provider_ids(&world, &email));
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM comm.sync_log WHERE kind = 'history_expired'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged, 1);
    // Incremental again afterwards.
    world.gmail.deliver(&email, MailSpec::new("Next", "next@client.example", "Back to normal", "x"));
    world.sync_now(&agency.agent, &mailbox.mailbox_id).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, total + 2).await;
    world.shutdown().await;
}

#[tokio::test]
async fn a_worker_killed_mid_import_resumes_with_no_duplicate_and_no_gap() {
    let mut world = spawn_with(|c| {
        c.sync.import_batch = 20;
        c.sync.fetch_concurrency = 2;
    })
    .await;
    let agency = world.agency("Crash Co").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    world.gmail.seed(&email, 600);
    let total = world.gmail.listed_messages(&email).len() as i64;
    world.gmail.set_latency(Duration::from_millis(3));
    let mailbox = world.connect(&agency.agent, &email).await;
    let pool = world.pool().await;
    eventually_long("part of the mailbox imported", Duration::from_secs(60), || async {
        let n = stored_ids(&pool, &mailbox.mailbox_id).await.len();
        (n >= 100).then_some(())
    })
    .await;
    world.kill_comm().await;
    let partial = stored_ids(&pool, &mailbox.mailbox_id).await.len();
    assert!((partial as i64) < total, "killed before the end ({partial})");
    let held: Option<Uuid> = sqlx::query_scalar("SELECT lease_owner FROM comm.mailboxes WHERE mailbox_id = $1::uuid")
        .bind(&mailbox.mailbox_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(held.is_some(), "the dead worker's lease is still there");

    // Another replica takes over once the lease expires, and finishes.
    world.gmail.set_latency(Duration::ZERO);
    world.start_comm().await;
    world.synced(&agency.agent, &mailbox.mailbox_id, total).await;
    assert_eq!(stored_ids(&pool, &mailbox.mailbox_id).await, provider_ids(&world, &email));
    let dupes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT rfc_message_id FROM comm.messages GROUP BY rfc_message_id HAVING count(*) > 1) d",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(dupes, 0);
    world.shutdown().await;
}

#[tokio::test]
async fn rate_limits_back_off_honouring_retry_after_and_the_sync_finishes() {
    let world = spawn_with(|c| c.sync.quota_units_per_sec = 2000).await;
    let agency = world.agency("Storm Co").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    world.gmail.seed(&email, 150);
    let total = world.gmail.listed_messages(&email).len() as i64;
    // The provider allows less than we would spend, and throws a storm of 429s and 403s.
    world.gmail.enforce_quota(400);
    world.gmail.fail_next(Endpoint::MessagesGet, Fault::Status429 { retry_after_secs: Some(1) }, 10);
    world.gmail.fail_next(Endpoint::MessagesList, Fault::RateLimit403 { retry_after_secs: None }, 2);
    let mailbox = world.connect(&agency.agent, &email).await;
    let pool = world.pool().await;
    eventually_long("throttled shown", Duration::from_secs(30), || async {
        let m = world.mailbox(&agency.agent, &mailbox.mailbox_id).await;
        (m.stage() == pb::SyncStage::Throttled && m.throttled_until.is_some()).then_some(())
    })
    .await;
    world.synced(&agency.agent, &mailbox.mailbox_id, total).await;
    assert_eq!(stored_ids(&pool, &mailbox.mailbox_id).await, provider_ids(&world, &email));
    let waits: i64 = sqlx::query_scalar("SELECT count(*) FROM comm.sync_log WHERE kind = 'throttled'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(waits >= 2, "{waits}");
    world.shutdown().await;
}

#[tokio::test]
async fn malformed_and_hostile_mail_is_stored_flagged_and_sanitised() {
    let world = spawn().await;
    let agency = world.agency("Hostile Mail").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    world.gmail.deliver_raw(&email, b"\xff\xfe garbage without headers".to_vec(), &["INBOX"]);
    world.gmail.deliver(
        &email,
        MailSpec::new("Ève", "eve@client.example", "Offre spéciale ✓", "texte")
            .html("<p onmouseover=\"steal()\">Hi<script>alert(1)</script><img src=x onerror=alert(2)></p>")
            .attach("devis.pdf", "application/pdf", b"%PDF-1.4".to_vec()),
    );
    let mailbox = world.connect(&agency.agent, &email).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 2).await;
    let pool = world.pool().await;
    let flagged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM comm.messages WHERE parse_error").fetch_one(&pool).await.unwrap();
    assert_eq!(flagged, 1);
    let (subject, html, attachments): (String, String, serde_json::Value) =
        sqlx::query_as("SELECT subject, html_body, attachments FROM comm.messages WHERE NOT parse_error")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(subject, "Offre spéciale ✓");
    for bad in ["script", "onmouseover", "onerror"] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    assert_eq!(attachments[0]["file_name"], "devis.pdf");
    world.shutdown().await;
}
