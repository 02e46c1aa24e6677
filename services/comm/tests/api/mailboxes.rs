//! Connecting a mailbox: the PKCE consent, tokens sealed at rest, key rotation, re-auth.

use sentra_crypto::{KeyRing, KeyRingConfig, WrappedKey};
use sentra_proto::sentra::comm::v1 as pb;
use sentra_testkit::gmail::{Endpoint, Fault, MailSpec};
use sentra_testkit::grpc::{bearer, eventually, expect_code};
use sqlx::Row as _;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{self, spawn, spawn_with};

#[tokio::test]
async fn connecting_reads_the_profile_and_syncs_the_mailbox() {
    let world = spawn().await;
    let agency = world.agency("Connect Co").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    world.gmail.seed(&email, 25);
    let total = world.gmail.listed_messages(&email).len() as i64;
    let mailbox = world.connect(&agency.agent, &email).await;
    assert_eq!(mailbox.email_address, email);
    assert_eq!(mailbox.provider, "gmail");
    assert_eq!(mailbox.name, format!("mailboxes/{}", mailbox.mailbox_id));
    world.synced(&agency.agent, &mailbox.mailbox_id, total).await;

    // Listed for its owner only.
    let mut comm = world.comm.clone();
    let mine = comm.list_mailboxes(bearer(&agency.agent, pb::ListMailboxesRequest {})).await.unwrap().into_inner();
    assert_eq!(mine.mailboxes.len(), 1);
    let theirs = comm.list_mailboxes(bearer(&agency.manager, pb::ListMailboxesRequest {})).await.unwrap().into_inner();
    assert!(theirs.mailboxes.is_empty());
    let other = comm
        .get_mailbox(bearer(&agency.manager, pb::GetMailboxRequest { mailbox_id: mailbox.mailbox_id.clone() }))
        .await;
    expect_code(other, Code::NotFound);

    // Connecting the same address again keeps what was imported.
    let again = world.connect(&agency.agent, &email).await;
    assert_eq!(again.mailbox_id, mailbox.mailbox_id);
    assert_eq!(again.message_count, total);
    world.shutdown().await;
}

#[tokio::test]
async fn tokens_are_ciphertext_and_open_after_a_key_rotation() {
    let mut world = spawn().await;
    let agency = world.agency("Cipher Co").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    for i in 0..3 {
        world.gmail.deliver(&email, MailSpec::new("Ann", "ann@client.example", &format!("Message {i}"), "hi"));
    }
    let mailbox = world.connect(&agency.agent, &email).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 3).await;
    let id: Uuid = mailbox.mailbox_id.parse().unwrap();

    let pool = world.pool().await;
    let row = sqlx::query(
        "SELECT kek_id, wrapped_key, refresh_token, access_token FROM comm.mailboxes WHERE mailbox_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("kek_id"), "k1");
    // Open the stored refresh token the way the service does: it is a token the provider honours,
    // and nowhere in the row in plaintext.
    let old_ring = KeyRing::from_config(&world.comm_config.keys).unwrap();
    let wrapped = WrappedKey { kek_id: "k1".into(), ciphertext: row.get("wrapped_key") };
    let key = old_ring.unwrap(&wrapped, id.as_bytes()).unwrap();
    let sealed: Vec<u8> = row.get("refresh_token");
    let mut aad = id.as_bytes().to_vec();
    aad.extend_from_slice(b"refresh");
    let refresh = String::from_utf8(key.open(&sealed, &aad).unwrap().to_vec()).unwrap();
    assert!(refresh.len() >= 16);
    for column in ["wrapped_key", "refresh_token", "access_token"] {
        let bytes: Vec<u8> = row.get(column);
        assert!(!bytes.windows(refresh.len()).any(|w| w == refresh.as_bytes()), "{column} holds the token");
    }
    let refreshed = reqwest::Client::new()
        .post(format!("{}/token", world.gmail.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", world.gmail.client_id()),
            ("client_secret", world.gmail.client_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200, "the decrypted refresh token is the provider's");
    // Nothing else in the schema carries it either (logs, queue).
    let logs: Vec<String> = sqlx::query_scalar("SELECT detail FROM comm.sync_log").fetch_all(&pool).await.unwrap();
    assert!(logs.iter().all(|l| !l.contains(&refresh)));

    // Rotation: k2 becomes active beside k1; on start the data key is re-wrapped under k2.
    world.stop_comm().await;
    let new_key = KeyRingConfig::generate_key();
    world.comm_config.keys.keys.insert("k2".into(), new_key.clone().into());
    world.comm_config.keys.active = "k2".into();
    world.start_comm().await;
    eventually("the data key re-wrapped under k2", || {
        let pool = pool.clone();
        async move {
            let kek: String = sqlx::query_scalar("SELECT kek_id FROM comm.mailboxes WHERE mailbox_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .ok()?;
            (kek == "k2").then_some(())
        }
    })
    .await;
    // k1 retired: the tokens still open, so sync goes on (the access token is forced to refresh).
    world.stop_comm().await;
    world.comm_config.keys = KeyRingConfig { active: "k2".into(), keys: [("k2".to_string(), new_key.into())].into() };
    sqlx::query("UPDATE comm.mailboxes SET access_expires_at = now() WHERE mailbox_id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    world.start_comm().await;
    world.gmail.deliver(&email, MailSpec::new("Ann", "ann@client.example", "After rotation", "hi"));
    world.sync_now(&agency.agent, &mailbox.mailbox_id).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 4).await;
    world.shutdown().await;
}

#[tokio::test]
async fn a_state_is_single_use_signed_and_the_callers_own() {
    let world = spawn().await;
    let agency = world.agency("State Co").await;
    let mut comm = world.comm.clone();
    let complete = |token: &str, code: &str, state: &str| {
        bearer(token, pb::CompleteMailboxConnectionRequest { code: code.into(), state: state.into() })
    };
    // Forged and empty values name the field.
    let status = expect_code(
        comm.complete_mailbox_connection(complete(&agency.agent, "c", "nonsense")).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("state"), "{}", status.message());
    let status =
        expect_code(comm.complete_mailbox_connection(complete(&agency.agent, "", "x")).await, Code::InvalidArgument);
    assert!(status.message().contains("code"), "{}", status.message());

    // Another user cannot complete someone else's consent.
    let (code, state) = world.consent(&agency.agent, &agency.email("agent")).await;
    let status = expect_code(
        comm.complete_mailbox_connection(complete(&agency.manager, &code, &state)).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("state"));
    // The state was consumed by that attempt? No: it is bound to the agent, who can still use it.
    let ok = comm.complete_mailbox_connection(complete(&agency.agent, &code, &state)).await;
    // The manager's attempt deleted nothing of the agent's.
    let mailbox = ok.expect("the owner completes").into_inner().mailbox.unwrap();
    assert_eq!(mailbox.email_address, agency.email("agent"));
    // Used once: a replay is refused.
    let status = expect_code(
        comm.complete_mailbox_connection(complete(&agency.agent, &code, &state)).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("state"));

    // A tampered signature is refused; a bad code is the code's fault.
    let (_code, state) = world.consent(&agency.agent, &agency.email("agent")).await;
    let mut tampered = state.clone();
    tampered.push('A');
    expect_code(comm.complete_mailbox_connection(complete(&agency.agent, "x", &tampered)).await, Code::InvalidArgument);
    let status = expect_code(
        comm.complete_mailbox_connection(complete(&agency.agent, "wrong-code", &state)).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("code"), "{}", status.message());
    world.shutdown().await;
}

#[tokio::test]
async fn invalid_grant_needs_reauth_and_a_server_error_does_not() {
    let world = spawn().await;
    let agency = world.agency("Grant Co").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    for i in 0..2 {
        world.gmail.deliver(&email, MailSpec::new("Ann", "ann@client.example", &format!("Message {i}"), "hi"));
    }
    let mailbox = world.connect(&agency.agent, &email).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 2).await;
    let pool = world.pool().await;
    let expire = || async {
        sqlx::query("UPDATE comm.mailboxes SET access_expires_at = now()").execute(&pool).await.unwrap();
    };

    // A 500 from the token endpoint: a failure to retry, never NEEDS_REAUTH.
    world.gmail.fail_next(Endpoint::Token, Fault::ServerError500, 1);
    expire().await;
    world.sync_now(&agency.agent, &mailbox.mailbox_id).await;
    let failed = eventually("the failed pass recorded", || async {
        let m = world.mailbox(&agency.agent, &mailbox.mailbox_id).await;
        (!m.last_error.is_empty()).then_some(m)
    })
    .await;
    assert_ne!(failed.stage(), pb::SyncStage::NeedsReauth);
    assert!(!failed.last_error.contains("grant"), "{}", failed.last_error);
    // It recovers by itself.
    sqlx::query("UPDATE comm.mailboxes SET due_at = now()").execute(&pool).await.unwrap();
    eventually("recovered", || async {
        let m = world.mailbox(&agency.agent, &mailbox.mailbox_id).await;
        (m.last_error.is_empty() && m.stage() == pb::SyncStage::Active).then_some(())
    })
    .await;

    // The grant revoked: NEEDS_REAUTH, logged, announced on the bus for the owner's
    // notification (once), and nothing due any more.
    let (_conn, _channel, mut spy) = helpers::spy(&world, "reauth-spy", "comm.mailbox.needs_reauth").await;
    world.gmail.revoke(&email);
    expire().await;
    world.sync_now(&agency.agent, &mailbox.mailbox_id).await;
    let m = eventually("needs re-auth", || async {
        let m = world.mailbox(&agency.agent, &mailbox.mailbox_id).await;
        (m.stage() == pb::SyncStage::NeedsReauth).then_some(m)
    })
    .await;
    assert!(m.last_error.contains("connect the mailbox again"), "{}", m.last_error);
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM comm.sync_log WHERE kind = 'needs_reauth'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged, 1);
    let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), futures::StreamExt::next(&mut spy))
        .await
        .expect("the event within 10 s")
        .expect("a delivery")
        .expect("delivered");
    let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
    assert_eq!(body["payload"]["mailbox_id"], mailbox.mailbox_id, "{body}");
    assert_eq!(body["payload"]["user_id"], mailbox.user_id);
    assert_eq!(body["payload"]["reason"], "invalid_grant");
    assert!(!body.to_string().contains("refresh"), "no token in the event: {body}");
    // The owner's notification, made from that event.
    let mut notes = sentra_proto::sentra::comm::v1::notification_service_client::NotificationServiceClient::new(
        sentra_testkit::grpc::channel(world.comm_addr),
    );
    let notified = eventually("the owner notified", || {
        let mut notes = notes.clone();
        let request = bearer(&agency.agent, pb::ListNotificationsRequest::default());
        async move { notes.list_notifications(request).await.ok()?.into_inner().notifications.into_iter().next() }
    })
    .await;
    assert_eq!(notified.kind(), pb::NotificationKind::MailboxNeedsReauth);
    assert_eq!(notified.subject, format!("mailboxes/{}", mailbox.mailbox_id));
    assert!(notified.title.contains(&email), "{}", notified.title);
    let _ = &mut notes;
    // Connecting again resumes it.
    let again = world.connect(&agency.agent, &email).await;
    assert_eq!(again.mailbox_id, mailbox.mailbox_id);
    assert_ne!(again.stage(), pb::SyncStage::NeedsReauth);
    world.synced(&agency.agent, &mailbox.mailbox_id, 2).await;
    world.shutdown().await;
}

#[tokio::test]
async fn the_service_refuses_to_start_without_keys() {
    let world = spawn_with(|_| {}).await;
    let mut config = world.comm_config.clone();
    config.keys = KeyRingConfig::default();
    let error = sentra_comm::Application::build(config).await.err().expect("refused");
    assert!(error.to_string().contains("keys"), "{error}");
    let _ = helpers::comm_config;
    world.shutdown().await;
}

#[tokio::test]
async fn a_callback_path_is_joined_to_the_origin_the_consent_started_from() {
    let world = spawn_with(|c| c.google.redirect_uri = "/app/mailboxes/callback".into()).await;
    let agency = world.agency("Origin Co").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    world.gmail.consent_as(&email);
    let mut comm = world.comm.clone();
    let start = |origin: Option<&str>| {
        let mut request = bearer(&agency.agent, pb::StartMailboxConnectionRequest {});
        if let Some(origin) = origin {
            request.metadata_mut().insert("origin", origin.parse().unwrap());
        }
        request
    };
    for bad in [None, Some("javascript:alert(1)"), Some("http://alpha.origin-co.example/path")] {
        let status = expect_code(comm.start_mailbox_connection(start(bad)).await, Code::FailedPrecondition);
        assert!(status.message().contains("origin"), "{bad:?}: {}", status.message());
    }
    let started =
        comm.start_mailbox_connection(start(Some("http://alpha.origin-co.example:8080"))).await.unwrap().into_inner();
    let url = reqwest::Url::parse(&started.authorization_url).unwrap();
    let redirect = url.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
    assert_eq!(redirect, "http://alpha.origin-co.example:8080/app/mailboxes/callback");
    // The exchange names the same redirect URI (the provider refuses another).
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = http.get(&started.authorization_url).send().await.unwrap();
    let location = reqwest::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(&redirect));
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let done = comm
        .complete_mailbox_connection(bearer(
            &agency.agent,
            pb::CompleteMailboxConnectionRequest { code, state: started.state },
        ))
        .await
        .expect("completes with the stored redirect URI")
        .into_inner();
    assert_eq!(done.mailbox.unwrap().email_address, email);
    world.shutdown().await;
}
