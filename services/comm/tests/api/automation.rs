//! Email automation end to end: Tenancy's and Sales' events on the real broker, Finance's
//! invoice events published as Finance publishes them, a real SMTP server (aiosmtpd) on loopback
//! whose received messages are read back.

use mail_parser::MessageParser;
use sentra_bus::Payload;
use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::automation_service_client::AutomationServiceClient;
use sentra_proto::sentra::finance::events::v1 as fev;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_testkit::grpc::{bearer, eventually, expect_code};
use sentra_testkit::smtp::SmtpServer;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{Agency, World, envelope, issued_invoice, publish, spawn_with};

fn client(world: &World) -> AutomationServiceClient<tonic::transport::Channel> {
    AutomationServiceClient::new(sentra_testkit::grpc::channel(world.comm_addr))
}

async fn with_smtp() -> (World, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let port = smtp.port();
    let world = spawn_with(move |c| c.automation.smtp.port = port).await;
    (world, smtp)
}

/// A client of Alpha with `email`, once Comm has its record; returns (client id, organization id).
async fn sales_client(world: &World, agency: &Agency, name: &str, email: &str) -> (String, Uuid) {
    let lead = world.lead(&agency.manager, &agency.alpha, name, email).await;
    for stage in [spb::LeadStage::Contacted, spb::LeadStage::Qualified] {
        world
            .sales
            .clone()
            .change_lead_stage(bearer(
                &agency.manager,
                spb::ChangeLeadStageRequest { lead_id: lead.clone(), stage: stage.into(), ..Default::default() },
            ))
            .await
            .unwrap();
    }
    let created = world
        .sales
        .clone()
        .convert_lead(bearer(&agency.manager, spb::ConvertLeadRequest { lead_id: lead, ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    let pool = world.pool().await;
    let org = eventually("the client in Comm's records", || {
        let (pool, id) = (pool.clone(), created.id.clone());
        async move {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT organization_id FROM comm.known_records WHERE kind = 'client' AND record_id = $1::uuid",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten()
        }
    })
    .await;
    (created.id, org)
}

/// Waits until Tenancy's event about `brand` reached Comm (emails show the brand's name).
async fn brand_known(world: &World, brand: &str) {
    let pool = world.pool().await;
    eventually("the brand in Comm's records", || {
        let (pool, brand) = (pool.clone(), brand.to_owned());
        async move {
            let name: Option<String> =
                sqlx::query_scalar("SELECT name FROM comm.known_brands WHERE brand_id = $1::uuid")
                    .bind(brand)
                    .fetch_optional(&pool)
                    .await
                    .ok()
                    .flatten();
            name.filter(|n| !n.is_empty())
        }
    })
    .await;
}

async fn template(world: &World, token: &str, brand: &str) -> pb::EmailTemplate {
    client(world)
        .create_email_template(bearer(
            token,
            pb::CreateEmailTemplateRequest {
                brand_id: brand.into(),
                template: Some(pb::EmailTemplate {
                    name: "Overdue reminder".into(),
                    subject: "Invoice {{ invoice.number }} is overdue".into(),
                    html_body: "<p>Dear {{ client.name }},</p>\n<p>{{ invoice.balance }} was due on {{ invoice.due_date }}.</p>\n\
                                <p>{{ brand.name }} · <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"
                        .into(),
                    text_body: "Dear {{ client.name }}, {{ invoice.balance }} was due on {{ invoice.due_date }}.".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .template
        .unwrap()
}

async fn rule(
    world: &World,
    token: &str,
    brand: &str,
    template: &str,
    trigger: pb::automation_rule::Trigger,
) -> pb::AutomationRule {
    client(world)
        .create_automation_rule(bearer(
            token,
            pb::CreateAutomationRuleRequest {
                brand_id: brand.into(),
                rule: Some(pb::AutomationRule {
                    name: "Remind".into(),
                    enabled: true,
                    trigger: Some(trigger),
                    template_id: template.into(),
                    recipient: pb::AutomationRecipient::ClientContact.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap()
}

async fn emails(world: &World, token: &str, brand: &str) -> Vec<pb::AutomatedEmail> {
    client(world)
        .list_automated_emails(bearer(
            token,
            pb::ListAutomatedEmailsRequest { brand_id: brand.into(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner()
        .emails
}

async fn received(smtp: &SmtpServer, n: usize) -> Vec<String> {
    eventually(&format!("{n} messages at the SMTP server"), || async {
        let got = smtp.messages();
        (got.len() >= n).then_some(got)
    })
    .await
}

fn header(raw: &str, name: &str) -> String {
    let message = MessageParser::default().parse(raw.as_bytes()).unwrap();
    message.header_raw(name).unwrap_or_default().trim().to_owned()
}

#[tokio::test]
async fn an_overdue_invoice_sends_the_reminder_once_and_unsubscribe_stops_the_next() {
    let (world, smtp) = with_smtp().await;
    let agency = world.agency("Remind Co").await;
    brand_known(&world, &agency.alpha).await;
    let (client_id, org) = sales_client(&world, &agency, "Clara Client", "Clara@Client.example").await;
    let t = template(&world, &agency.manager, &agency.alpha).await;
    rule(
        &world,
        &agency.manager,
        &agency.alpha,
        &t.template_id,
        pb::automation_rule::Trigger::EventType("finance.invoice.overdue".into()),
    )
    .await;

    // The brand's default sender: an alias of the manager's mailbox, verified in Gmail's send-as.
    let me = agency.email("manager");
    world.gmail.add_user(&me);
    world.gmail.add_send_as(&me, "billing@alpha.remind-co.example", "Alpha Billing", true);
    let mailbox = world.connect(&agency.manager, &me).await;
    world
        .comm
        .clone()
        .create_email_alias(bearer(
            &agency.manager,
            pb::CreateEmailAliasRequest {
                brand_id: agency.alpha.clone(),
                email_address: "billing@alpha.remind-co.example".into(),
                display_name: "Alpha Billing".into(),
                mailbox_id: mailbox.mailbox_id,
                is_default: true,
            },
        ))
        .await
        .unwrap();

    let invoice = issued_invoice(&world, org, &agency.alpha, &client_id, "AL-2026-0001", -3).await;
    let overdue = envelope(
        org,
        &invoice,
        "overdue",
        Payload::proto(&fev::InvoiceOverdue { invoice_id: invoice.clone(), ..Default::default() }),
    );
    publish(&world, &overdue).await;
    publish(&world, &overdue).await; // delivered twice

    let got = received(&smtp, 1).await;
    let raw = &got[0];
    let message = MessageParser::default().parse(raw.as_bytes()).unwrap();
    assert_eq!(message.subject(), Some("Invoice AL-2026-0001 is overdue"));
    let to = message.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned();
    assert_eq!(to, "clara@client.example");
    let from = message.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.name(), Some("Alpha Billing"));
    assert_eq!(from.address(), Some("billing@alpha.remind-co.example"), "the brand's default alias");
    let html = message.body_html(0).unwrap_or_default().into_owned();
    assert!(html.contains("Dear Clara Client"), "{html}");
    assert!(html.contains("EUR 1,190.00 was due on"), "{html}");
    let text = message.body_text(0).unwrap_or_default().into_owned();
    assert!(text.contains("EUR 1,190.00"), "{text}");
    let unsubscribe = header(raw, "List-Unsubscribe");
    assert!(unsubscribe.starts_with("<http://links.test.example/email/unsubscribe?token="), "{unsubscribe}");
    assert_eq!(header(raw, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    let token = unsubscribe.trim_end_matches('>').split("token=").nth(1).unwrap().to_owned();
    assert!(html.contains(&format!("unsubscribe?token={token}")), "the link in the body too: {html}");

    // The duplicate was consumed before this later invoice's reminder: still one for the first.
    let second = issued_invoice(&world, org, &agency.alpha, &client_id, "AL-2026-0002", -1).await;
    publish(
        &world,
        &envelope(
            org,
            &second,
            "overdue",
            Payload::proto(&fev::InvoiceOverdue { invoice_id: second.clone(), ..Default::default() }),
        ),
    )
    .await;
    let got = received(&smtp, 2).await;
    assert_eq!(got.iter().filter(|m| m.contains("AL-2026-0001")).count(), 1);
    let log = emails(&world, &agency.viewer, &agency.alpha).await;
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|e| e.status() == pb::EmailDeliveryStatus::Sent && e.attempts == 1));

    // One click: the recipient unsubscribes (RFC 8058: a POST to the List-Unsubscribe URL).
    // Comm answers it on its own port; the gateway passes `/email/unsubscribe` through.
    let link = format!("http://{}/email/unsubscribe?token={token}", world.comm_addr);
    let http = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("clara@client.example") && page.contains("method=\"post\""), "{page}");
    let none = client(&world)
        .list_suppressions(bearer(&agency.manager, pb::ListSuppressionsRequest { brand_id: agency.alpha.clone() }))
        .await
        .unwrap()
        .into_inner()
        .suppressions;
    assert!(none.is_empty(), "opening the link (as scanners do) unsubscribes nobody");
    let clicked = http
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), 200);
    assert!(clicked.text().await.unwrap().contains("Alpha will no longer send automated emails"));
    // The RPC does the same for the portal, and says who and from whom.
    let answer =
        client(&world).unsubscribe(pb::UnsubscribeRequest { token: token.clone() }).await.unwrap().into_inner();
    assert_eq!(answer.email_address, "clara@client.example");
    assert_eq!(answer.brand_name, "Alpha");
    let bad = http.post(format!("http://{}/email/unsubscribe?token=forged.x", world.comm_addr)).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let third = issued_invoice(&world, org, &agency.alpha, &client_id, "AL-2026-0003", -1).await;
    publish(
        &world,
        &envelope(
            org,
            &third,
            "overdue",
            Payload::proto(&fev::InvoiceOverdue { invoice_id: third.clone(), ..Default::default() }),
        ),
    )
    .await;
    let suppressed = eventually("the third reminder suppressed", || async {
        emails(&world, &agency.manager, &agency.alpha)
            .await
            .into_iter()
            .find(|e| e.subject_ref == format!("invoices/{third}") && e.status() == pb::EmailDeliveryStatus::Suppressed)
    })
    .await;
    assert_eq!(suppressed.recipient, "clara@client.example");
    assert_eq!(smtp.messages().len(), 2);
    let listed = client(&world)
        .list_suppressions(bearer(&agency.manager, pb::ListSuppressionsRequest { brand_id: agency.alpha.clone() }))
        .await
        .unwrap()
        .into_inner()
        .suppressions;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reason, "unsubscribed");
    // A forged token is refused.
    expect_code(
        client(&world).unsubscribe(pb::UnsubscribeRequest { token: "x.y".into() }).await,
        Code::InvalidArgument,
    );
    world.shutdown().await;
}

#[tokio::test]
async fn a_date_rule_fires_before_the_due_date_and_smtp_failures_are_retried_or_final() {
    let (world, smtp) = with_smtp().await;
    let agency = world.agency("Soon Co").await;
    let (soon_client, org) = sales_client(&world, &agency, "Sam Soon", "defer-sam@client.example").await;
    let (later_client, _) = sales_client(&world, &agency, "Lea Later", "lea@client.example").await;
    let (bad_client, _) = sales_client(&world, &agency, "Rex Reject", "reject-rex@client.example").await;
    let t = template(&world, &agency.manager, &agency.alpha).await;
    let offset = pb::DateOffset { date: pb::AutomationDate::InvoiceDue.into(), days: -3 };
    rule(&world, &agency.manager, &agency.alpha, &t.template_id, pb::automation_rule::Trigger::DateOffset(offset))
        .await;

    // Due in 2 days: within 3 days before. Due in 10 days: not yet.
    let soon = issued_invoice(&world, org, &agency.alpha, &soon_client, "AL-1", 2).await;
    issued_invoice(&world, org, &agency.alpha, &later_client, "AL-2", 10).await;
    let bad = issued_invoice(&world, org, &agency.alpha, &bad_client, "AL-3", 1).await;

    // The deferring recipient gets it on the second try (451 first); the rejecting one never.
    let got = received(&smtp, 1).await;
    assert!(got[0].contains("X-Envelope-To: defer-sam@client.example"));
    // No verified default alias on this brand: the configured sender.
    let message = MessageParser::default().parse(got[0].as_bytes()).unwrap();
    let from = message.from().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned();
    assert_eq!(from, "no-reply@sentra.invalid");
    let log = eventually("both outcomes logged", || async {
        let log = emails(&world, &agency.manager, &agency.alpha).await;
        let done = log
            .iter()
            .filter(|e| matches!(e.status(), pb::EmailDeliveryStatus::Sent | pb::EmailDeliveryStatus::Failed))
            .count();
        (done == 2).then_some(log)
    })
    .await;
    assert_eq!(log.len(), 2, "nothing for the invoice due in 10 days");
    let sent = log.iter().find(|e| e.subject_ref == format!("invoices/{soon}")).unwrap();
    assert_eq!((sent.status(), sent.attempts), (pb::EmailDeliveryStatus::Sent, 2));
    let failed = log.iter().find(|e| e.subject_ref == format!("invoices/{bad}")).unwrap();
    assert_eq!((failed.status(), failed.attempts), (pb::EmailDeliveryStatus::Failed, 1));
    assert!(failed.last_error.contains("550"), "{}", failed.last_error);
    // Another pass of the date rules (as every replica's scheduler makes) queues nothing more.
    let options: sqlx::postgres::PgConnectOptions = world.db.url().parse().unwrap();
    let comm = sqlx::PgPool::connect_with(options.options([("search_path", "comm")])).await.unwrap();
    assert_eq!(sentra_comm::automation::rules::fire_date_rules(&comm).await.unwrap(), 0);
    assert_eq!(emails(&world, &agency.manager, &agency.alpha).await.len(), 2);
    world.shutdown().await;
}

#[tokio::test]
async fn templates_are_checked_when_saved_and_previewed_with_sample_data() {
    let (world, _smtp) = with_smtp().await;
    let agency = world.agency("Draft Co").await;
    brand_known(&world, &agency.alpha).await;
    let mut automation = client(&world);
    for (html, field, needle) in [
        ("<p>Hi</p>\n<p>{{ invoice.numbr }}</p>", "html_body", "line 2: invoice.numbr"),
        ("<p>{% if client.name %}</p>", "html_body", "line 1"),
        ("{{ nobody.home }}", "html_body", "nobody"),
    ] {
        let status = expect_code(
            automation
                .create_email_template(bearer(
                    &agency.manager,
                    pb::CreateEmailTemplateRequest {
                        brand_id: agency.alpha.clone(),
                        template: Some(pb::EmailTemplate {
                            name: "x".into(),
                            subject: "Hi".into(),
                            html_body: html.into(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await,
            Code::InvalidArgument,
        );
        assert!(status.message().starts_with(field) && status.message().contains(needle), "{}", status.message());
    }
    let preview = automation
        .preview_email_template(bearer(
            &agency.agent,
            pb::PreviewEmailTemplateRequest {
                brand_id: agency.alpha.clone(),
                template: Some(pb::EmailTemplate {
                    subject: "{{ brand.name }}: invoice {{ invoice.number }}".into(),
                    html_body: "<b>{{ client.name }}</b> owes {{ invoice.balance }}".into(),
                    text_body: "{{ client.name }}".into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.subject, "Alpha: invoice NW-2026-0042", "the brand's real name, sample invoice");
    assert_eq!(preview.html_body, "<b>Clara Client</b> owes EUR 1,190.00");
    let status = expect_code(
        automation
            .preview_email_template(bearer(
                &agency.agent,
                pb::PreviewEmailTemplateRequest {
                    brand_id: agency.alpha.clone(),
                    template: Some(pb::EmailTemplate {
                        subject: "ok".into(),
                        text_body: "a\nb\n{{ invoice.nope }}".into(),
                        ..Default::default()
                    }),
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().starts_with("text_body: line 3"), "{}", status.message());

    // Rules refuse unknown events, fields and an agent recipient without a lead.
    let t = template(&world, &agency.manager, &agency.alpha).await;
    for (rule, field) in [
        (
            pb::AutomationRule {
                trigger: Some(pb::automation_rule::Trigger::EventType("finance.invoice.paid".into())),
                ..Default::default()
            },
            "rule.event_type",
        ),
        (
            pb::AutomationRule {
                trigger: Some(pb::automation_rule::Trigger::EventType("finance.invoice.overdue".into())),
                recipient: pb::AutomationRecipient::AssignedAgent.into(),
                ..Default::default()
            },
            "rule.recipient",
        ),
        (
            pb::AutomationRule {
                trigger: Some(pb::automation_rule::Trigger::EventType("finance.invoice.overdue".into())),
                recipient: pb::AutomationRecipient::ClientContact.into(),
                conditions: vec![pb::AutomationCondition {
                    field: "invoice.secret".into(),
                    operator: 1,
                    value: "x".into(),
                }],
                ..Default::default()
            },
            "rule.conditions.field",
        ),
    ] {
        let rule = pb::AutomationRule { name: "r".into(), template_id: t.template_id.clone(), ..rule };
        let status = expect_code(
            automation
                .create_automation_rule(bearer(
                    &agency.manager,
                    pb::CreateAutomationRuleRequest {
                        brand_id: agency.alpha.clone(),
                        rule: Some(rule),
                        request_id: String::new(),
                    },
                ))
                .await,
            Code::InvalidArgument,
        );
        assert!(status.message().starts_with(field), "{}", status.message());
    }
    world.shutdown().await;
}

#[tokio::test]
async fn other_brands_and_organizations_reach_no_template_rule_or_email() {
    let (world, _smtp) = with_smtp().await;
    let ours = world.agency("Ours Auto").await;
    let theirs = world.agency("Theirs Auto").await;
    let t = template(&world, &ours.manager, &ours.alpha).await;
    let r = rule(
        &world,
        &ours.manager,
        &ours.alpha,
        &t.template_id,
        pb::automation_rule::Trigger::EventType("finance.invoice.overdue".into()),
    )
    .await;
    let mut automation = client(&world);
    let brand = ours.alpha.clone();
    // Their owner and our Beta agent name our brand: refused before anything is read.
    for token in [&theirs.owner, &ours.beta_agent] {
        let calls: Vec<(Code, Result<(), tonic::Status>)> = vec![
            (
                Code::NotFound,
                automation
                    .list_email_templates(bearer(token, pb::ListEmailTemplatesRequest { brand_id: brand.clone() }))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .list_automation_rules(bearer(token, pb::ListAutomationRulesRequest { brand_id: brand.clone() }))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .list_automated_emails(bearer(
                        token,
                        pb::ListAutomatedEmailsRequest { brand_id: brand.clone(), ..Default::default() },
                    ))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .list_suppressions(bearer(token, pb::ListSuppressionsRequest { brand_id: brand.clone() }))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .delete_email_template(bearer(
                        token,
                        pb::DeleteEmailTemplateRequest {
                            brand_id: brand.clone(),
                            template_id: t.template_id.clone(),
                            etag: String::new(),
                        },
                    ))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .delete_automation_rule(bearer(
                        token,
                        pb::DeleteAutomationRuleRequest {
                            brand_id: brand.clone(),
                            rule_id: r.rule_id.clone(),
                            etag: String::new(),
                        },
                    ))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .update_email_template(bearer(
                        token,
                        pb::UpdateEmailTemplateRequest {
                            brand_id: brand.clone(),
                            template: Some(pb::EmailTemplate { name: "x".into(), ..t.clone() }),
                            update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
                        },
                    ))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .update_automation_rule(bearer(
                        token,
                        pb::UpdateAutomationRuleRequest {
                            brand_id: brand.clone(),
                            rule: Some(pb::AutomationRule { enabled: false, ..r.clone() }),
                            update_mask: Some(prost_types::FieldMask { paths: vec!["enabled".into()] }),
                        },
                    ))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .preview_email_template(bearer(
                        token,
                        pb::PreviewEmailTemplateRequest { brand_id: brand.clone(), template: Some(t.clone()) },
                    ))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .create_email_template(bearer(
                        token,
                        pb::CreateEmailTemplateRequest {
                            brand_id: brand.clone(),
                            template: Some(t.clone()),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .create_automation_rule(bearer(
                        token,
                        pb::CreateAutomationRuleRequest {
                            brand_id: brand.clone(),
                            rule: Some(r.clone()),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .map(drop),
            ),
            (
                Code::NotFound,
                automation
                    .delete_suppression(bearer(
                        token,
                        pb::DeleteSuppressionRequest { brand_id: brand.clone(), email_address: "a@b.example".into() },
                    ))
                    .await
                    .map(drop),
            ),
        ];
        for (code, call) in calls {
            let status = call.expect_err("refused");
            assert!(matches!(status.code(), Code::NotFound | Code::PermissionDenied), "{code:?}: {status:?}");
        }
    }
    // A viewer reads but does not write; an agent of the brand may not change rules either.
    expect_code(
        automation
            .delete_automation_rule(bearer(
                &ours.agent,
                pb::DeleteAutomationRuleRequest {
                    brand_id: brand.clone(),
                    rule_id: r.rule_id.clone(),
                    etag: String::new(),
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    let still = automation
        .list_automation_rules(bearer(&ours.viewer, pb::ListAutomationRulesRequest { brand_id: brand.clone() }))
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(still, vec![r.clone()]);
    // A stale etag is refused.
    let updated = automation
        .update_automation_rule(bearer(
            &ours.manager,
            pb::UpdateAutomationRuleRequest {
                brand_id: brand.clone(),
                rule: Some(pb::AutomationRule { enabled: false, ..r.clone() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["enabled".into()] }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert!(!updated.enabled);
    expect_code(
        automation
            .update_automation_rule(bearer(
                &ours.manager,
                pb::UpdateAutomationRuleRequest {
                    brand_id: brand.clone(),
                    rule: Some(r.clone()),
                    update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
                },
            ))
            .await,
        Code::Aborted,
    );
    // A template in use cannot go.
    expect_code(
        automation
            .delete_email_template(bearer(
                &ours.manager,
                pb::DeleteEmailTemplateRequest { brand_id: brand, template_id: t.template_id, etag: String::new() },
            ))
            .await,
        Code::FailedPrecondition,
    );
    world.shutdown().await;
}
