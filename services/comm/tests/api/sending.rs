//! Brand aliases and SendEmail.

use sentra_proto::sentra::comm::v1 as pb;
use sentra_testkit::gmail::MailSpec;
use sentra_testkit::grpc::{bearer, expect_code};
use tonic::Code;

use crate::helpers::spawn;

#[tokio::test]
async fn a_reply_goes_out_from_the_alias_once_and_threads_correctly() {
    let world = spawn().await;
    let agency = world.agency("Send Co").await;
    let me = agency.email("manager");
    world.gmail.add_user(&me);
    world.gmail.add_send_as(&me, "hello@alpha.send-co.example", "Alpha Studio", true);
    world.gmail.add_send_as(&me, "pending@alpha.send-co.example", "Pending", false);
    let parent = world.gmail.deliver(
        &me,
        MailSpec::new("Léa", "lea@client.example", "Projet de refonte", "Pouvez-vous m'envoyer un devis ?")
            .to("M", &me),
    );
    let mailbox = world.connect(&agency.manager, &me).await;
    world.synced(&agency.manager, &mailbox.mailbox_id, 1).await;
    let lead = world.lead(&agency.manager, &agency.alpha, "Léa", "lea@client.example").await;

    let mut comm = world.comm.clone();
    let create = |address: &str, default: bool| {
        bearer(
            &agency.manager,
            pb::CreateEmailAliasRequest {
                brand_id: agency.alpha.clone(),
                email_address: address.into(),
                display_name: "Alpha Studio".into(),
                mailbox_id: mailbox.mailbox_id.clone(),
                is_default: default,
            },
        )
    };
    let alias =
        comm.create_email_alias(create("Hello@Alpha.Send-Co.example", true)).await.unwrap().into_inner().alias.unwrap();
    assert_eq!(alias.status(), pb::AliasStatus::Verified);
    assert_eq!(alias.email_address, "hello@alpha.send-co.example");
    assert!(alias.is_default);
    let pending = comm
        .create_email_alias(create("pending@alpha.send-co.example", false))
        .await
        .unwrap()
        .into_inner()
        .alias
        .unwrap();
    assert_eq!(pending.status(), pb::AliasStatus::Unverified);
    expect_code(comm.create_email_alias(create("hello@alpha.send-co.example", false)).await, Code::AlreadyExists);
    let listed = comm
        .list_email_aliases(bearer(&agency.agent, pb::ListEmailAliasesRequest { brand_id: agency.alpha.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.aliases.len(), 2);
    assert!(listed.aliases[0].is_default);
    // Agents may not add aliases.
    let mut agent_create = create("x@alpha.send-co.example", false);
    agent_create.metadata_mut().insert("authorization", format!("Bearer {}", agency.agent).parse().unwrap());
    expect_code(comm.create_email_alias(agent_create).await, Code::PermissionDenied);

    let thread = world.threads_of_lead(&agency.manager, &lead).await.unwrap().threads.remove(0);
    let message = comm
        .get_thread(bearer(&agency.manager, pb::GetThreadRequest { thread_id: thread.thread_id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);
    let send = |token: &str, alias: &str, request: &str| {
        bearer(
            token,
            pb::SendEmailRequest {
                brand_id: agency.alpha.clone(),
                alias_id: alias.into(),
                text_body: "Bonjour Léa, voici notre devis.".into(),
                reply_to_message_id: message.message_id.clone(),
                request_id: request.into(),
                ..Default::default()
            },
        )
    };
    // An unverified alias cannot send.
    let status =
        expect_code(comm.send_email(send(&agency.agent, &pending.alias_id, "r0")).await, Code::FailedPrecondition);
    assert!(status.message().contains("verif"), "{}", status.message());

    let sent = comm.send_email(send(&agency.agent, &alias.alias_id, "r1")).await.unwrap().into_inner().message.unwrap();
    assert_eq!(sent.thread_id, thread.thread_id, "the reply is in the parent's thread");
    assert_eq!(sent.subject, "Re: Projet de refonte");
    assert_eq!(sent.from.as_ref().unwrap().email, "hello@alpha.send-co.example");
    assert_eq!(sent.to[0].email, "lea@client.example");
    // The same request again: the same message, nothing sent twice.
    let again =
        comm.send_email(send(&agency.agent, &alias.alias_id, "r1")).await.unwrap().into_inner().message.unwrap();
    assert_eq!(again.message_id, sent.message_id);
    let out = world.gmail.sent(&me);
    assert_eq!(out.len(), 1);
    let raw = String::from_utf8_lossy(&out[0].raw).to_string();
    assert!(raw.contains("From: \"Alpha Studio\" <hello@alpha.send-co.example>"), "{raw}");
    let parent_id = parent.message_id_header.trim_matches(|c| c == '<' || c == '>');
    assert!(raw.contains(&format!("In-Reply-To: <{parent_id}>")), "{raw}");
    assert!(raw.contains(&format!("References: <{parent_id}>")), "{raw}");
    assert_eq!(out[0].thread_id, parent.thread_id, "filed in the provider's thread");

    // On the lead: one thread, now two messages; and a later sync imports nothing twice.
    world.sync_now(&agency.manager, &mailbox.mailbox_id).await;
    world.synced(&agency.manager, &mailbox.mailbox_id, 2).await;
    let threads = world.threads_of_lead(&agency.agent, &lead).await.unwrap().threads;
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].message_count, 2);

    // Who may send: not a viewer, not another brand's agent, not through another brand.
    expect_code(comm.send_email(send(&agency.viewer, &alias.alias_id, "r2")).await, Code::PermissionDenied);
    expect_code(comm.send_email(send(&agency.beta_agent, &alias.alias_id, "r3")).await, Code::NotFound);
    let mut through_beta = send(&agency.beta_agent, &alias.alias_id, "r4");
    through_beta.get_mut().brand_id = agency.beta.clone();
    expect_code(comm.send_email(through_beta).await, Code::NotFound);
    world.shutdown().await;
}

#[tokio::test]
async fn bad_sends_name_the_field_and_send_nothing() {
    let world = spawn().await;
    let agency = world.agency("Bad Send").await;
    let mut comm = world.comm.clone();
    let base = pb::SendEmailRequest {
        brand_id: agency.alpha.clone(),
        alias_id: uuid::Uuid::new_v4().to_string(),
        to: vec![pb::Address { name: "A".into(), email: "a@client.example".into() }],
        subject: "Hi".into(),
        text_body: "x".into(),
        ..Default::default()
    };
    let cases: Vec<(pb::SendEmailRequest, &str)> = vec![
        (pb::SendEmailRequest { to: vec![], ..base.clone() }, "to"),
        (
            pb::SendEmailRequest {
                to: vec![pb::Address { name: String::new(), email: "not-an-address".into() }],
                ..base.clone()
            },
            "to",
        ),
        (pb::SendEmailRequest { subject: String::new(), ..base.clone() }, "subject"),
        (pb::SendEmailRequest { subject: "a\r\nBcc: x@y.z".into(), ..base.clone() }, "subject"),
        (pb::SendEmailRequest { alias_id: "x".into(), ..base.clone() }, "alias_id"),
        (pb::SendEmailRequest { brand_id: String::new(), ..base.clone() }, "brand_id"),
        (pb::SendEmailRequest { reply_to_message_id: "nope".into(), ..base.clone() }, "reply_to_message_id"),
    ];
    for (request, field) in cases {
        let status = expect_code(comm.send_email(bearer(&agency.agent, request)).await, Code::InvalidArgument);
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
    // A well-formed send through an alias that does not exist.
    expect_code(comm.send_email(bearer(&agency.agent, base)).await, Code::NotFound);
    world.shutdown().await;
}
