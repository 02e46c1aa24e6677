//! The fake Google OAuth + Gmail server, driven over HTTP the way the Comm service drives Google.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use reqwest::{Client, StatusCode, Url};
use sentra_testkit::gmail::{Endpoint, FakeGmail, Fault, MailSpec};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const USER: &str = "owner@agency.example";
const SCOPES: &str = "https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.send";
const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

fn client() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

async fn fake() -> FakeGmail {
    let fake = FakeGmail::start().await;
    fake.add_user(USER);
    fake
}

/// Runs the consent redirect and returns the code it carried, checking state and scope.
async fn authorize(fake: &FakeGmail, challenge: &str) -> String {
    let response = client()
        .get(fake.auth_endpoint())
        .query(&[
            ("response_type", "code"),
            ("client_id", fake.client_id()),
            ("redirect_uri", REDIRECT),
            ("scope", SCOPES),
            ("state", "st/ate=1&x"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("access_type", "offline"),
            ("prompt", "consent"),
        ])
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().expect("ascii location");
    let url = Url::parse(location).expect("location url");
    assert_eq!(url.path(), "/oauth/callback");
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("state").as_deref(), Some("st/ate=1&x"));
    assert_eq!(param("scope").as_deref(), Some(SCOPES));
    param("code").expect("code")
}

async fn exchange(fake: &FakeGmail, code: &str, verifier: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", verifier),
        ("client_id", fake.client_id()),
        ("client_secret", fake.client_secret()),
        ("redirect_uri", REDIRECT),
    ];
    let response = client().post(fake.token_endpoint()).form(&form).send().await.expect("token");
    (response.status(), response.json().await.expect("json"))
}

async fn refresh(fake: &FakeGmail, refresh_token: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", fake.client_id()),
        ("client_secret", fake.client_secret()),
    ];
    let response = client().post(fake.token_endpoint()).form(&form).send().await.expect("token");
    (response.status(), response.json().await.expect("json"))
}

async fn gmail(fake: &FakeGmail, token: &str, path_and_query: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let url = format!("{}/gmail/v1/users/me/{path_and_query}", fake.base_url());
    let response = client().get(url).bearer_auth(token).send().await.expect("gmail");
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.expect("json"))
}

fn token(fake: &FakeGmail) -> String {
    fake.issue_tokens(USER, SCOPES).access_token
}

fn reason(body: &Value) -> &str {
    body["error"]["errors"][0]["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn pkce_code_flow_issues_tokens_once_and_only_for_the_right_verifier() {
    let fake = fake().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-a-valid-pkce-verifier";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let code = authorize(&fake, &challenge).await;

    let (status, body) = exchange(&fake, &code, "a-wrong-verifier-a-wrong-verifier-a-wrong-verifier").await;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, json!({"error": "invalid_grant", "error_description": "Bad Request"}))
    );

    let (status, body) = exchange(&fake, &code, verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["scope"], SCOPES);
    let access = body["access_token"].as_str().expect("access token");
    assert!(body["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
    let (status, _, profile) = gmail(&fake, access, "profile").await;
    assert_eq!((status, profile["emailAddress"].as_str()), (StatusCode::OK, Some(USER)));

    let (status, body) = exchange(&fake, &code, verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    // Wrong client credentials are 401 invalid_client, whatever the grant.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", fake.client_id()),
        ("client_secret", "nope"),
    ];
    let response = client().post(fake.token_endpoint()).form(&form).send().await.expect("token");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.expect("json")["error"], "invalid_client");

    // Missing parameters never reach the redirect.
    let response =
        client().get(fake.auth_endpoint()).query(&[("client_id", fake.client_id())]).send().await.expect("auth");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn expired_tokens_are_refreshed_until_the_grant_is_revoked() {
    let fake = fake().await;
    fake.set_access_token_lifetime(Duration::ZERO);
    let tokens = fake.issue_tokens(USER, SCOPES);
    let (status, headers, body) = gmail(&fake, &tokens.access_token, "profile").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(reason(&body), "authError");
    assert!(headers.contains_key("www-authenticate"));

    fake.set_access_token_lifetime(Duration::from_secs(3599));
    let (status, body) = refresh(&fake, &tokens.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "Google does not rotate refresh tokens");
    let access = body["access_token"].as_str().expect("access token").to_owned();
    assert_eq!(gmail(&fake, &access, "profile").await.0, StatusCode::OK);

    fake.revoke(USER);
    assert_eq!(gmail(&fake, &access, "profile").await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = refresh(&fake, &tokens.refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn profile_counts_messages_and_threads() {
    let fake = fake().await;
    let first = fake.deliver(USER, MailSpec::new("Ann", "ann@client.example", "Hello", "Hi there"));
    fake.deliver(
        USER,
        MailSpec::new("Ann", "ann@client.example", "Re: Hello", "Again").in_reply_to(&first.message_id_header),
    );
    fake.deliver(USER, MailSpec::new("Bob", "bob@client.example", "Other", "Text"));
    let (status, _, body) = gmail(&fake, &token(&fake), "profile").await;
    assert_eq!(status, StatusCode::OK);
    let expected = json!({"emailAddress": USER, "messagesTotal": 3, "threadsTotal": 2, "historyId": fake.history_id(USER).to_string()});
    assert_eq!(body, expected);
}

#[tokio::test]
async fn list_pages_cover_every_message_exactly_once_newest_first() {
    let fake = fake().await;
    let started = Instant::now();
    fake.seed(USER, 2_500);
    assert!(started.elapsed() < Duration::from_secs(5), "seeding took {:?}", started.elapsed());
    let token = token(&fake);

    let mut seen = Vec::new();
    let mut page_token: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &page_token {
            Some(t) => format!("messages?maxResults=500&includeSpamTrash=true&pageToken={t}"),
            None => "messages?maxResults=500&includeSpamTrash=true".to_owned(),
        };
        let (status, _, body) = gmail(&fake, &token, &query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["resultSizeEstimate"], 2_500);
        for m in body["messages"].as_array().expect("messages") {
            let id = m["id"].as_str().expect("id");
            assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            seen.push((id.to_owned(), m["threadId"].as_str().expect("threadId").to_owned()));
        }
        pages += 1;
        page_token = body["nextPageToken"].as_str().map(str::to_owned);
        if page_token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, fake.messages(USER));
    assert_eq!(seen.iter().map(|(id, _)| id).collect::<HashSet<_>>().len(), 2_500);
    let threads: HashSet<_> = seen.iter().map(|(_, t)| t).collect();
    assert!(threads.len() < 2_200 && threads.len() > 1_000, "seed threads some messages: {}", threads.len());

    // Seeded mail is real MIME: every message parses, with a sender and a subject, and the mix
    // has HTML, attachments and non-ASCII subjects.
    let parser = mail_parser::MessageParser::default();
    let (mut html, mut attachments, mut non_ascii) = (0, 0, 0);
    for (id, _) in seen.iter().step_by(10) {
        let raw = fake.raw(USER, id).expect("raw");
        let message = parser.parse(&raw).expect("parses");
        assert!(message.from().is_some() && message.message_id().is_some(), "{}", String::from_utf8_lossy(&raw));
        let subject = message.subject().expect("subject");
        html +=
            usize::from(message.html_body_count() > 0 && message.body_html(0).is_some_and(|h| h.contains("<html>")));
        attachments += usize::from(message.attachment_count() > 0);
        non_ascii += usize::from(!subject.is_ascii());
    }
    assert!(html > 0 && attachments > 0 && non_ascii > 0, "{html} {attachments} {non_ascii}");

    // SPAM and TRASH are left out unless asked for; the default page size is 100.
    let (_, _, body) = gmail(&fake, &token, "messages").await;
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(100));
    assert!(body["resultSizeEstimate"].as_u64().is_some_and(|n| n < 2_500));

    // An empty mailbox omits `messages`.
    fake.add_user("empty@agency.example");
    let empty = fake.issue_tokens("empty@agency.example", SCOPES).access_token;
    let (_, _, body) = gmail(&fake, &empty, "messages").await;
    assert_eq!(body, json!({"resultSizeEstimate": 0}));
}

#[tokio::test]
async fn raw_format_returns_the_delivered_mime() {
    let fake = fake().await;
    let spec = MailSpec::new(
        "Zoë Faßbender",
        "zoe@kunde.example",
        "Angebot für Q3 – bitte prüfen ✅",
        "Hallo,\nanbei das Angebot.",
    )
    .html("<p>Hallo,<br>anbei das <b>Angebot</b>.</p>")
    .attach("angebot.pdf", "application/pdf", b"%PDF-1.4 fake".to_vec())
    .cc("", "cc@agency.example");
    let delivered = fake.deliver(USER, spec);
    let token = token(&fake);

    let (status, _, body) = gmail(&fake, &token, &format!("messages/{}?format=raw", delivered.id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], delivered.id.as_str());
    assert_eq!(body["threadId"], delivered.id.as_str(), "a new thread is named after its first message");
    assert_eq!(body["labelIds"], json!(["INBOX", "UNREAD"]));
    assert_eq!(body["snippet"], "Hallo, anbei das Angebot.");
    assert!(body["internalDate"].as_str().is_some_and(|d| d.parse::<i64>().is_ok()));
    let raw = URL_SAFE.decode(body["raw"].as_str().expect("raw")).expect("padded base64url");
    assert_eq!(Some(raw.clone()), fake.raw(USER, &delivered.id));
    assert_eq!(body["sizeEstimate"], raw.len());

    let message = mail_parser::MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(message.subject(), Some("Angebot für Q3 – bitte prüfen ✅"));
    let from = message.from().and_then(|a| a.first()).expect("from");
    assert_eq!((from.name(), from.address()), (Some("Zoë Faßbender"), Some("zoe@kunde.example")));
    assert_eq!(message.message_id().map(|id| format!("<{id}>")), Some(delivered.message_id_header));
    assert_eq!(message.attachment_count(), 1);
    assert!(message.body_html(0).is_some_and(|h| h.contains("<b>Angebot</b>")));
    assert!(String::from_utf8_lossy(&raw).starts_with(&format!("Delivered-To: {USER}\r\n")));

    let (status, _, body) = gmail(&fake, &token, &format!("messages/{}?format=minimal", delivered.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("raw").is_none() && body["historyId"].is_string());

    let (status, _, body) = gmail(&fake, &token, "messages/00000000000000ff?format=raw").await;
    assert_eq!((status, body["error"]["status"].as_str()), (StatusCode::NOT_FOUND, Some("NOT_FOUND")));
    assert_eq!(reason(&body), "notFound");
}

#[tokio::test]
async fn history_shows_exactly_the_new_message_and_404s_once_expired() {
    let fake = fake().await;
    fake.seed(USER, 50);
    let token = token(&fake);
    let (_, _, profile) = gmail(&fake, &token, "profile").await;
    let start = profile["historyId"].as_str().expect("string historyId").to_owned();

    let delivered = fake.deliver(USER, MailSpec::new("Ann", "ann@client.example", "New", "Body"));
    let (status, _, body) =
        gmail(&fake, &token, &format!("history?startHistoryId={start}&historyTypes=messageAdded")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let history = body["history"].as_array().expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["messages"], json!([{"id": delivered.id, "threadId": delivered.thread_id}]));
    let added = &history[0]["messagesAdded"][0]["message"];
    assert_eq!(
        (added["id"].as_str(), added["labelIds"].clone()),
        (Some(delivered.id.as_str()), json!(["INBOX", "UNREAD"]))
    );
    assert_eq!(body["historyId"], fake.history_id(USER).to_string());

    assert!(fake.delete(USER, &delivered.id));
    let (_, _, body) = gmail(&fake, &token, &format!("history?startHistoryId={start}")).await;
    let history = body["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["messagesDeleted"][0]["message"]["id"], delivered.id.as_str());

    // Up to date, or ahead: nothing to report.
    let now = fake.history_id(USER);
    let (status, _, body) = gmail(&fake, &token, &format!("history?startHistoryId={now}")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"historyId": now.to_string()})));

    fake.expire_history(USER);
    let (status, _, body) = gmail(&fake, &token, &format!("history?startHistoryId={start}")).await;
    assert_eq!((status, reason(&body)), (StatusCode::NOT_FOUND, "notFound"));
    assert_eq!(gmail(&fake, &token, &format!("history?startHistoryId={now}")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn injected_faults_answer_like_google_then_stop() {
    let fake = fake().await;
    let token = token(&fake);
    fake.fail_next(Endpoint::Profile, Fault::Status429 { retry_after_secs: Some(7) }, 1);
    fake.fail_next(Endpoint::Any, Fault::ServerError500, 1);
    fake.fail_next(Endpoint::MessagesList, Fault::RateLimit403 { retry_after_secs: None }, 1);

    let (status, headers, body) = gmail(&fake, &token, "profile").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    assert_eq!(reason(&body), "rateLimitExceeded");

    let (status, _, body) = gmail(&fake, &token, "messages").await;
    assert_eq!((status, reason(&body)), (StatusCode::INTERNAL_SERVER_ERROR, "backendError"));
    let (status, _, body) = gmail(&fake, &token, "messages").await;
    assert_eq!((status, reason(&body)), (StatusCode::FORBIDDEN, "userRateLimitExceeded"));
    assert_eq!(gmail(&fake, &token, "messages").await.0, StatusCode::OK);
    assert_eq!(gmail(&fake, &token, "profile").await.0, StatusCode::OK);
    assert_eq!(fake.calls(Endpoint::Profile), 2);
    assert_eq!(fake.calls(Endpoint::MessagesList), 3);

    fake.fail_next(Endpoint::Token, Fault::InvalidGrant, 1);
    let refresh_token = fake.issue_tokens(USER, SCOPES).refresh_token;
    assert_eq!(refresh(&fake, &refresh_token).await.1["error"], "invalid_grant");
    assert_eq!(refresh(&fake, &refresh_token).await.0, StatusCode::OK);

    fake.fail_next(Endpoint::Profile, Fault::Slow(Duration::from_millis(300)), 1);
    let started = Instant::now();
    assert_eq!(gmail(&fake, &token, "profile").await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn quota_is_charged_in_gmail_units_per_user_and_second() {
    let fake = fake().await;
    let delivered = fake.deliver(USER, MailSpec::new("Ann", "ann@client.example", "Hi", "Body"));
    let token = token(&fake);
    fake.enforce_quota(12);
    let get = format!("messages/{}?format=minimal", delivered.id);
    assert_eq!(gmail(&fake, &token, &get).await.0, StatusCode::OK);
    assert_eq!(gmail(&fake, &token, &get).await.0, StatusCode::OK);
    let (status, headers, body) = gmail(&fake, &token, &get).await;
    assert_eq!((status, reason(&body)), (StatusCode::TOO_MANY_REQUESTS, "rateLimitExceeded"));
    assert_eq!(headers["retry-after"], "1");
    // Cheaper methods still fit in what is left (2 units).
    assert_eq!(gmail(&fake, &token, "profile").await.0, StatusCode::OK);
    assert_eq!(fake.units_used(USER), 11);

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(gmail(&fake, &token, &get).await.0, StatusCode::OK);
    assert_eq!(fake.units_used(USER), 16);
}

async fn send(fake: &FakeGmail, token: &str, body: Value) -> (StatusCode, Value) {
    let url = format!("{}/gmail/v1/users/me/messages/send", fake.base_url());
    let response = client().post(url).bearer_auth(token).json(&body).send().await.expect("send");
    (response.status(), response.json().await.expect("json"))
}

#[tokio::test]
async fn sent_replies_join_the_thread_and_are_kept_for_the_test() {
    let fake = fake().await;
    let inbound = fake.deliver(USER, MailSpec::new("Ann", "ann@client.example", "Proposal", "Can you send it?"));
    let token = token(&fake);
    let reply = format!(
        "From: {USER}\r\nTo: ann@client.example\r\nSubject: Re: Proposal\r\nMessage-ID: <reply-1@agency.example>\r\n\
         In-Reply-To: {id}\r\nReferences: {id}\r\n\r\nHere it is.\r\n",
        id = inbound.message_id_header
    );
    let (status, body) = send(&fake, &token, json!({"raw": URL_SAFE_NO_PAD.encode(&reply)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["threadId"], inbound.thread_id.as_str());
    assert_eq!(body["labelIds"], json!(["SENT"]));
    let sent = fake.sent(USER);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].id.as_str(), sent[0].raw.as_slice()), (body["id"].as_str().expect("id"), reply.as_bytes()));

    // An inbound answer to our reply threads through its Message-ID.
    let answer = fake.deliver(
        USER,
        MailSpec::new("Ann", "ann@client.example", "Re: Proposal", "Thanks").in_reply_to("<reply-1@agency.example>"),
    );
    assert_eq!(answer.thread_id, inbound.thread_id);
    let raw = fake.raw(USER, &answer.id).expect("raw");
    let headers = String::from_utf8_lossy(&raw).replace("\r\n\t", " ");
    assert!(
        headers.contains(&format!("References: {} <reply-1@agency.example>", inbound.message_id_header)),
        "{headers}"
    );

    // An explicit threadId wins; no headers and no threadId opens a new thread.
    let fresh = format!("From: {USER}\r\nTo: bob@client.example\r\nSubject: New\r\n\r\nHello\r\n");
    let (_, body) = send(&fake, &token, json!({"raw": URL_SAFE.encode(&fresh), "threadId": inbound.thread_id})).await;
    assert_eq!(body["threadId"], inbound.thread_id.as_str());
    let (_, body) = send(&fake, &token, json!({"raw": URL_SAFE.encode(&fresh)})).await;
    assert_eq!(body["threadId"], body["id"]);

    let (status, body) = send(&fake, &token, json!({"raw": URL_SAFE.encode("Subject: nobody\r\n\r\nx")})).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Recipient address required"))
    );
    assert_eq!(fake.units_used(USER), 400, "messages.send costs 100 units");

    // Read-only grants cannot send.
    let read_only = fake.issue_tokens(USER, "https://www.googleapis.com/auth/gmail.readonly").access_token;
    let (status, body) = send(&fake, &read_only, json!({"raw": URL_SAFE.encode(&fresh)})).await;
    assert_eq!((status, reason(&body)), (StatusCode::FORBIDDEN, "insufficientPermissions"));
    assert_eq!(fake.sent(USER).len(), 3);
}

#[tokio::test]
async fn send_as_lists_the_primary_address_and_aliases() {
    let fake = fake().await;
    fake.add_send_as(USER, "sales@agency.example", "Agency Sales", true);
    fake.add_send_as(USER, "new@agency.example", "", false);
    let (status, _, body) = gmail(&fake, &token(&fake), "settings/sendAs").await;
    assert_eq!(status, StatusCode::OK);
    let entries = body["sendAs"].as_array().expect("sendAs");
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["sendAsEmail"].as_str(),
                e["isPrimary"].as_bool(),
                e["isDefault"].as_bool(),
                e["verificationStatus"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some(USER), Some(true), Some(true), None),
            (Some("sales@agency.example"), Some(false), Some(false), Some("accepted")),
            (Some("new@agency.example"), Some(false), Some(false), Some("pending")),
        ]
    );
    assert_eq!(entries[1]["displayName"], "Agency Sales");
}
