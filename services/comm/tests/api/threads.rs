//! Conversations on leads and clients, and who may read them.

use sentra_proto::sentra::comm::v1 as pb;
use sentra_testkit::gmail::MailSpec;
use sentra_testkit::grpc::{bearer, expect_code};
use tonic::Code;

use crate::helpers::spawn;

#[tokio::test]
async fn a_leads_page_lists_its_threads_and_replies_join_them() {
    let world = spawn().await;
    let agency = world.agency("Thread Co").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    // Mail from the contact before the lead exists is linked once it does.
    let first = world.gmail.deliver(
        &email,
        MailSpec::new("Zoë Martin", "Zoe@Client.Example", "Devis site été", "Bonjour, pouvez-vous…")
            .to("Agent", &email),
    );
    world.gmail.deliver(&email, MailSpec::new("Spam", "spam@else.example", "Unrelated", "no"));
    let mailbox = world.connect(&agency.agent, &email).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 2).await;
    let lead = world.lead(&agency.agent, &agency.alpha, "Zoë Martin", "zoe@client.example").await;

    let listed = world.threads_of_lead(&agency.agent, &lead).await.unwrap();
    assert_eq!(listed.threads.len(), 1);
    let thread = &listed.threads[0];
    assert_eq!(thread.subject, "Devis site été");
    assert_eq!(thread.message_count, 1);
    assert!(thread.links.iter().any(|l| l.lead_id == lead && l.brand_id == agency.alpha));

    // A reply arriving later joins the thread.
    world.gmail.deliver(
        &email,
        MailSpec::new("Zoë Martin", "zoe@client.example", "Re: Devis site été", "Et le délai ?")
            .to("Agent", &email)
            .in_reply_to(&first.message_id_header),
    );
    world.sync_now(&agency.agent, &mailbox.mailbox_id).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 3).await;
    let listed = world.threads_of_lead(&agency.agent, &lead).await.unwrap();
    assert_eq!(listed.threads.len(), 1);
    assert_eq!(listed.threads[0].message_count, 2);

    let mut comm = world.comm.clone();
    let got = comm
        .get_thread(bearer(&agency.viewer, pb::GetThreadRequest { thread_id: thread.thread_id.clone() }))
        .await
        .expect("a viewer of the brand reads it")
        .into_inner();
    assert_eq!(got.messages.len(), 2);
    assert_eq!(got.messages[0].subject, "Devis site été");
    assert_eq!(got.messages[1].text_body.trim(), "Et le délai ?");
    assert_eq!(got.messages[0].from.as_ref().unwrap().email, "zoe@client.example");

    // Full-text search within the lead's threads.
    let found = comm
        .list_threads(bearer(
            &agency.agent,
            pb::ListThreadsRequest { lead_id: lead.clone(), query: "délai".into(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.threads.len(), 1);
    let none = comm
        .list_threads(bearer(
            &agency.agent,
            pb::ListThreadsRequest { lead_id: lead.clone(), query: "invoice".into(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(none.threads.is_empty());

    // Another brand's agent: the lead is not theirs to know; nor is the thread.
    expect_code(world.threads_of_lead(&agency.beta_agent, &lead).await, Code::NotFound);
    expect_code(
        comm.get_thread(bearer(&agency.beta_agent, pb::GetThreadRequest { thread_id: thread.thread_id.clone() })).await,
        Code::NotFound,
    );
    // Another organization sees nothing.
    let other = world.agency("Other Org").await;
    expect_code(world.threads_of_lead(&other.owner, &lead).await, Code::NotFound);
    expect_code(
        comm.get_thread(bearer(&other.owner, pb::GetThreadRequest { thread_id: thread.thread_id.clone() })).await,
        Code::NotFound,
    );
    world.shutdown().await;
}

#[tokio::test]
async fn threads_page_newest_first_and_bad_requests_name_the_field() {
    let world = spawn().await;
    let agency = world.agency("Paging Co").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    for i in 0..5 {
        world.gmail.deliver(
            &email,
            MailSpec::new("Kim", "kim@client.example", &format!("Topic {i}"), "x")
                .date(chrono::Utc::now() - chrono::Duration::hours(10 - i)),
        );
    }
    let mailbox = world.connect(&agency.agent, &email).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 5).await;
    let lead = world.lead(&agency.agent, &agency.alpha, "Kim", "kim@client.example").await;
    let mut comm = world.comm.clone();
    let mut subjects = Vec::new();
    let mut token = String::new();
    loop {
        let page = comm
            .list_threads(bearer(
                &agency.agent,
                pb::ListThreadsRequest {
                    lead_id: lead.clone(),
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        subjects.extend(page.threads.into_iter().map(|t| t.subject));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(subjects, ["Topic 4", "Topic 3", "Topic 2", "Topic 1", "Topic 0"]);

    for (request, field) in [
        (pb::ListThreadsRequest::default(), "lead_id"),
        (pb::ListThreadsRequest { lead_id: "nope".into(), ..Default::default() }, "lead_id"),
        (pb::ListThreadsRequest { lead_id: lead.clone(), client_id: lead.clone(), ..Default::default() }, "client_id"),
        (
            pb::ListThreadsRequest { lead_id: lead.clone(), page_token: "garbage!".into(), ..Default::default() },
            "page_token",
        ),
        (pb::ListThreadsRequest { lead_id: lead.clone(), page_size: -1, ..Default::default() }, "page_size"),
    ] {
        let status = expect_code(comm.list_threads(bearer(&agency.agent, request)).await, Code::InvalidArgument);
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
    world.shutdown().await;
}

#[tokio::test]
async fn mail_linked_to_no_lead_stays_with_its_mailbox_owner() {
    let world = spawn().await;
    let agency = world.agency("Private Mail").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    world
        .gmail
        .deliver(&email, MailSpec::new("Mum", "mum@family.example", "Sunday lunch", "Bring dessert").to("A", &email));
    let mailbox = world.connect(&agency.agent, &email).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 1).await;
    let pool = world.pool().await;
    let thread: uuid::Uuid = sqlx::query_scalar("SELECT thread_id FROM comm.threads").fetch_one(&pool).await.unwrap();
    let mut comm = world.comm.clone();
    let get = |token: &str| bearer(token, pb::GetThreadRequest { thread_id: thread.to_string() });
    let own = comm.get_thread(get(&agency.agent)).await.expect("the owner reads their own mail").into_inner();
    assert_eq!(own.messages[0].subject, "Sunday lunch");
    for other in [&agency.owner, &agency.manager, &agency.viewer] {
        expect_code(comm.get_thread(get(other)).await, Code::NotFound);
    }
    world.shutdown().await;
}

#[tokio::test]
async fn a_clients_page_lists_the_conversations_with_its_contact() {
    let world = spawn().await;
    let agency = world.agency("Client Mail").await;
    let email = agency.email("agent");
    world.gmail.add_user(&email);
    // The testkit's client is converted from a lead of "<name>@client.example".
    world
        .gmail
        .deliver(&email, MailSpec::new("Rita", "rita@client.example", "Invoice question", "Hi!").to("A", &email));
    let mailbox = world.connect(&agency.agent, &email).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 1).await;
    let client = sentra_testkit::sales::client(&world.sales, &agency.agent, &agency.alpha, "Rita").await.id;
    let mut comm = world.comm.clone();
    let request =
        |token: &str| bearer(token, pb::ListThreadsRequest { client_id: client.clone(), ..Default::default() });
    let listed = sentra_testkit::grpc::eventually("the client's thread", || {
        let mut comm = comm.clone();
        let request = request(&agency.agent);
        async move { comm.list_threads(request).await.ok().map(|r| r.into_inner()).filter(|r| !r.threads.is_empty()) }
    })
    .await;
    assert_eq!(listed.threads[0].subject, "Invoice question");
    assert!(listed.threads[0].links.iter().any(|l| l.client_id == client));
    expect_code(comm.list_threads(request(&agency.beta_agent)).await, Code::NotFound);
    world.shutdown().await;
}
