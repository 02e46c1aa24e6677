//! Cross-tenant access on every RPC: another organization's records are NOT_FOUND (or, for
//! lists, absent), never someone else's data.

use sentra_proto::sentra::comm::v1 as pb;
use sentra_testkit::gmail::MailSpec;
use sentra_testkit::grpc::{bearer, expect_code};
use tonic::Code;

use crate::helpers::spawn;

#[tokio::test]
async fn another_organization_reaches_nothing_through_any_rpc() {
    let world = spawn().await;
    let ours = world.agency("Ours Inc").await;
    let theirs = world.agency("Theirs Inc").await;
    let me = ours.email("manager");
    world.gmail.add_user(&me);
    world.gmail.add_send_as(&me, "hi@ours.example", "Ours", true);
    world.gmail.deliver(&me, MailSpec::new("C", "c@client.example", "Hello", "x").to("M", &me));
    let mailbox = world.connect(&ours.manager, &me).await;
    world.synced(&ours.manager, &mailbox.mailbox_id, 1).await;
    let lead = world.lead(&ours.manager, &ours.alpha, "C", "c@client.example").await;
    let mut comm = world.comm.clone();
    let alias = comm
        .create_email_alias(bearer(
            &ours.manager,
            pb::CreateEmailAliasRequest {
                brand_id: ours.alpha.clone(),
                email_address: "hi@ours.example".into(),
                display_name: "Ours".into(),
                mailbox_id: mailbox.mailbox_id.clone(),
                is_default: true,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .alias
        .unwrap();
    let thread = world.threads_of_lead(&ours.manager, &lead).await.unwrap().threads.remove(0);
    let message = comm
        .get_thread(bearer(&ours.manager, pb::GetThreadRequest { thread_id: thread.thread_id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);

    // A consent started in our organization cannot be completed from theirs.
    let (code, state) = world.consent(&ours.agent, &ours.email("agent")).await;
    expect_code(
        comm.complete_mailbox_connection(bearer(&theirs.owner, pb::CompleteMailboxConnectionRequest { code, state }))
            .await,
        Code::InvalidArgument,
    );
    let listed = comm.list_mailboxes(bearer(&theirs.owner, pb::ListMailboxesRequest {})).await.unwrap().into_inner();
    assert!(listed.mailboxes.is_empty());
    let id = mailbox.mailbox_id.clone();
    expect_code(
        comm.get_mailbox(bearer(&theirs.owner, pb::GetMailboxRequest { mailbox_id: id.clone() })).await,
        Code::NotFound,
    );
    expect_code(
        comm.sync_mailbox(bearer(&theirs.owner, pb::SyncMailboxRequest { mailbox_id: id.clone() })).await,
        Code::NotFound,
    );
    let create = pb::CreateEmailAliasRequest {
        brand_id: ours.alpha.clone(),
        email_address: "x@ours.example".into(),
        display_name: String::new(),
        mailbox_id: id.clone(),
        is_default: false,
    };
    expect_code(comm.create_email_alias(bearer(&theirs.owner, create)).await, Code::NotFound);
    expect_code(
        comm.list_email_aliases(bearer(&theirs.owner, pb::ListEmailAliasesRequest { brand_id: ours.alpha.clone() }))
            .await,
        Code::NotFound,
    );
    expect_code(
        comm.verify_email_alias(bearer(
            &theirs.owner,
            pb::VerifyEmailAliasRequest { alias_id: alias.alias_id.clone() },
        ))
        .await,
        Code::NotFound,
    );
    expect_code(world.threads_of_lead(&theirs.owner, &lead).await, Code::NotFound);
    expect_code(
        comm.get_thread(bearer(&theirs.owner, pb::GetThreadRequest { thread_id: thread.thread_id.clone() })).await,
        Code::NotFound,
    );
    // Sending: through our brand (not theirs to see), or through theirs with our alias or message.
    let send = |brand: &str| pb::SendEmailRequest {
        brand_id: brand.into(),
        alias_id: alias.alias_id.clone(),
        reply_to_message_id: message.message_id.clone(),
        text_body: "x".into(),
        ..Default::default()
    };
    expect_code(comm.send_email(bearer(&theirs.owner, send(&ours.alpha))).await, Code::NotFound);
    expect_code(comm.send_email(bearer(&theirs.owner, send(&theirs.alpha))).await, Code::NotFound);
    assert!(world.gmail.sent(&me).is_empty(), "nothing was sent");
    world.shutdown().await;
}

#[tokio::test]
async fn another_brands_staff_reach_nothing_of_this_brand() {
    let world = spawn().await;
    let agency = world.agency("Two Brands").await;
    let me = agency.email("manager");
    world.gmail.add_user(&me);
    world.gmail.add_send_as(&me, "hi@alpha.two-brands.example", "Alpha", true);
    world.gmail.deliver(&me, MailSpec::new("C", "c@client.example", "Hello", "x").to("M", &me));
    let mailbox = world.connect(&agency.manager, &me).await;
    world.synced(&agency.manager, &mailbox.mailbox_id, 1).await;
    let lead = world.lead(&agency.manager, &agency.alpha, "C", "c@client.example").await;
    let mut comm = world.comm.clone();
    let alias = comm
        .create_email_alias(bearer(
            &agency.manager,
            pb::CreateEmailAliasRequest {
                brand_id: agency.alpha.clone(),
                email_address: "hi@alpha.two-brands.example".into(),
                display_name: "Alpha".into(),
                mailbox_id: mailbox.mailbox_id.clone(),
                is_default: false,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .alias
        .unwrap();
    let thread = world.threads_of_lead(&agency.manager, &lead).await.unwrap().threads.remove(0);
    let them = &agency.beta_agent;
    let create = pb::CreateEmailAliasRequest {
        brand_id: agency.alpha.clone(),
        email_address: "x@alpha.two-brands.example".into(),
        display_name: String::new(),
        mailbox_id: mailbox.mailbox_id.clone(),
        is_default: false,
    };
    expect_code(comm.create_email_alias(bearer(them, create)).await, Code::NotFound);
    let list = pb::ListEmailAliasesRequest { brand_id: agency.alpha.clone() };
    expect_code(comm.list_email_aliases(bearer(them, list)).await, Code::NotFound);
    let verify = pb::VerifyEmailAliasRequest { alias_id: alias.alias_id.clone() };
    expect_code(comm.verify_email_alias(bearer(them, verify)).await, Code::NotFound);
    expect_code(world.threads_of_lead(them, &lead).await, Code::NotFound);
    let get = pb::GetThreadRequest { thread_id: thread.thread_id.clone() };
    expect_code(comm.get_thread(bearer(them, get)).await, Code::NotFound);
    let send = pb::SendEmailRequest {
        brand_id: agency.alpha.clone(),
        alias_id: alias.alias_id.clone(),
        to: vec![pb::Address { name: String::new(), email: "c@client.example".into() }],
        subject: "Hi".into(),
        text_body: "x".into(),
        ..Default::default()
    };
    expect_code(comm.send_email(bearer(them, send)).await, Code::NotFound);
    assert!(world.gmail.sent(&me).is_empty());
    world.shutdown().await;
}
