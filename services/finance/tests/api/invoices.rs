//! Issuing, numbering, payments, credit notes, overdue detection and receivables.

use chrono::{Duration as Days, Utc};
use sentra_proto::sentra::finance::v1 as pb;
use tonic::Code;

use crate::helpers::{bearer, date, eur, eventually, expect_code, spawn};

#[tokio::test]
async fn fifty_concurrent_issues_on_one_brand_get_numbers_one_to_fifty() {
    let world = spawn().await;
    let agency = world.agency("Numbers Agency").await;
    let client = world.client(&agency, "Many Invoices").await;
    let mut drafts = Vec::new();
    for i in 0..50 {
        drafts.push(world.draft(&agency.finance, &agency, &client, 10_000 + i, 30).await);
    }
    let issues = drafts.iter().map(|d| {
        let mut f = world.finance.clone();
        let request = bearer(
            &agency.finance,
            pb::IssueInvoiceRequest { invoice_id: d.id.clone(), issue_date: None, etag: d.etag.clone() },
        );
        async move { f.issue_invoice(request).await }
    });
    let issued = futures::future::join_all(issues).await;
    let year = Utc::now().format("%Y").to_string();
    let mut numbers: Vec<String> =
        issued.into_iter().map(|r| r.expect("every issue succeeds").into_inner().invoice.unwrap().number).collect();
    numbers.sort();
    let expected: Vec<String> = (1..=50).map(|n| format!("AL-{year}-{n:06}")).collect();
    assert_eq!(numbers, expected, "gap-free, no duplicates");

    // Issuing twice is refused and draws no number.
    let again = world
        .finance
        .clone()
        .issue_invoice(bearer(
            &agency.finance,
            pb::IssueInvoiceRequest { invoice_id: drafts[0].id.clone(), ..Default::default() },
        ))
        .await;
    expect_code(again, Code::FailedPrecondition);
    let next = world.draft(&agency.finance, &agency, &client, 1, 30).await;
    let next = world
        .finance
        .clone()
        .issue_invoice(bearer(&agency.finance, pb::IssueInvoiceRequest { invoice_id: next.id, ..Default::default() }))
        .await
        .unwrap();
    assert_eq!(next.into_inner().invoice.unwrap().number, format!("AL-{year}-000051"));
}

#[tokio::test]
async fn payments_and_credit_notes_move_balances_and_statuses_exactly() {
    let world = spawn().await;
    let agency = world.agency("Payments Agency").await;
    let client = world.client(&agency, "Paying Client").await;
    let mut f = world.finance.clone();
    let tok = &agency.finance;
    let draft = world.draft(tok, &agency, &client, 100_000, 14).await;
    let early = f
        .record_payment(bearer(
            tok,
            pb::RecordPaymentRequest {
                invoice_id: draft.id.clone(),
                amount: eur(1),
                method: pb::PaymentMethod::Card.into(),
                ..Default::default()
            },
        ))
        .await;
    expect_code(early, Code::FailedPrecondition);
    let issued = f
        .issue_invoice(bearer(tok, pb::IssueInvoiceRequest { invoice_id: draft.id.clone(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(issued.status, pb::InvoiceStatus::Issued as i32);
    assert_eq!(issued.payment_terms_days, 14);

    let pay = |amount: i64, request_id: &str| pb::RecordPaymentRequest {
        invoice_id: draft.id.clone(),
        amount: eur(amount),
        method: pb::PaymentMethod::BankTransfer.into(),
        reference: "SEPA".into(),
        paid_on: None,
        request_id: request_id.into(),
    };
    let partly = f.record_payment(bearer(tok, pay(30_000, "p1"))).await.unwrap().into_inner().invoice.unwrap();
    assert_eq!((partly.status, partly.balance.clone()), (pb::InvoiceStatus::PartiallyPaid as i32, eur(70_000)));
    // A retried payment is not recorded twice.
    let retried = f.record_payment(bearer(tok, pay(30_000, "p1"))).await.unwrap().into_inner().invoice.unwrap();
    assert_eq!((retried.payments.len(), retried.balance.clone()), (1, eur(70_000)));

    let credit = f
        .issue_credit_note(bearer(
            tok,
            pb::IssueCreditNoteRequest {
                invoice_id: draft.id.clone(),
                amount: eur(20_000),
                reason: "Scope reduced".into(),
                request_id: "c1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let year = Utc::now().format("%Y").to_string();
    assert_eq!(credit.credit_note.unwrap().number, format!("AL-CN-{year}-000001"));
    let after_credit = credit.invoice.unwrap();
    assert_eq!((after_credit.balance.clone(), after_credit.amount_credited.clone()), (eur(50_000), eur(20_000)));
    let too_much = f
        .issue_credit_note(bearer(
            tok,
            pb::IssueCreditNoteRequest {
                invoice_id: draft.id.clone(),
                amount: eur(80_001),
                reason: "x".into(),
                request_id: String::new(),
            },
        ))
        .await;
    assert!(expect_code(too_much, Code::InvalidArgument).message().starts_with("amount:"));

    // Overpaying settles the invoice; the excess is the client's credit.
    let paid = f.record_payment(bearer(tok, pay(60_000, "p2"))).await.unwrap().into_inner().invoice.unwrap();
    assert_eq!(
        (paid.status, paid.balance.clone(), paid.amount_paid.clone()),
        (pb::InvoiceStatus::Paid as i32, eur(0), eur(80_000))
    );
    // Balances come from the read table, which follows the events within moments.
    let expected = vec![pb::CurrencyBalance {
        currency_code: "EUR".into(),
        invoiced_minor: 100_000,
        paid_minor: 90_000,
        credited_minor: 20_000,
        outstanding_minor: 0,
        credit_minor: 10_000,
    }];
    crate::helpers::eventually("the client balance", || {
        let mut f = f.clone();
        let request =
            bearer(tok, pb::GetClientBalanceRequest { client_id: client.clone(), brand_id: agency.alpha.clone() });
        let expected = expected.clone();
        async move { (f.get_client_balance(request).await.ok()?.into_inner().balances == expected).then_some(()) }
    })
    .await;
    let wrong_currency = f
        .record_payment(bearer(
            tok,
            pb::RecordPaymentRequest {
                amount: Some(sentra_proto::sentra::r#type::v1::Money { currency_code: "USD".into(), amount_minor: 5 }),
                ..pay(5, "")
            },
        ))
        .await;
    assert!(expect_code(wrong_currency, Code::InvalidArgument).message().starts_with("amount:"));

    // Voiding keeps the number; a void invoice takes no more payments.
    let voided = f
        .void_invoice(bearer(
            tok,
            pb::VoidInvoiceRequest { invoice_id: draft.id.clone(), reason: "Duplicate".into(), etag: String::new() },
        ))
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!((voided.status, voided.number.clone()), (pb::InvoiceStatus::Void as i32, issued.number.clone()));
    expect_code(f.record_payment(bearer(tok, pay(1, ""))).await, Code::FailedPrecondition);
}

#[tokio::test]
async fn the_overdue_job_marks_past_due_invoices_and_receivables_age_them() {
    let world = spawn().await;
    let agency = world.agency("Aging Agency").await;
    let client = world.client(&agency, "Late Client").await;
    let mut f = world.finance.clone();
    let tok = &agency.finance;
    let today = Utc::now().date_naive();
    // Issued 75 days ago with 30-day terms: 45 days late. Issued today: current.
    let late = world.draft(tok, &agency, &client, 40_000, 30).await;
    f.issue_invoice(bearer(
        tok,
        pb::IssueInvoiceRequest {
            invoice_id: late.id.clone(),
            issue_date: date(today - Days::days(75)),
            etag: String::new(),
        },
    ))
    .await
    .unwrap();
    let fresh = world.draft(tok, &agency, &client, 25_000, 30).await;
    f.issue_invoice(bearer(
        tok,
        pb::IssueInvoiceRequest { invoice_id: fresh.id.clone(), issue_date: None, etag: String::new() },
    ))
    .await
    .unwrap();

    let overdue = eventually("the overdue job", || {
        let mut f = f.clone();
        let request = bearer(tok, pb::GetInvoiceRequest { invoice_id: late.id.clone() });
        async move {
            let invoice = f.get_invoice(request).await.ok()?.into_inner().invoice?;
            (invoice.status == pb::InvoiceStatus::Overdue as i32).then_some(invoice)
        }
    })
    .await;
    assert_eq!(overdue.balance, eur(40_000));
    let fresh_now = f
        .get_invoice(bearer(tok, pb::GetInvoiceRequest { invoice_id: fresh.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(fresh_now.status, pb::InvoiceStatus::Issued as i32, "not due yet");

    let then = f
        .get_receivables_summary(bearer(
            tok,
            pb::GetReceivablesSummaryRequest { brand_id: agency.alpha.clone(), as_of: None },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(then.buckets.len(), 1);
    let bucket = &then.buckets[0];
    assert_eq!(
        (bucket.current_minor, bucket.days_31_60_minor, bucket.total_minor, bucket.invoice_count),
        (25_000, 40_000, 65_000, 2)
    );

    // Money arrives; the past stays what it was.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let payment = pb::RecordPaymentRequest {
        invoice_id: late.id.clone(),
        amount: eur(15_000),
        method: pb::PaymentMethod::Cash.into(),
        ..Default::default()
    };
    let after = f.record_payment(bearer(tok, payment)).await.unwrap().into_inner().invoice.unwrap();
    assert_eq!((after.status, after.balance.clone()), (pb::InvoiceStatus::Overdue as i32, eur(25_000)));
    let now = f
        .get_receivables_summary(bearer(
            tok,
            pb::GetReceivablesSummaryRequest { brand_id: agency.alpha.clone(), as_of: None },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.buckets[0].days_31_60_minor, 25_000);
    let past = f
        .get_receivables_summary(bearer(
            tok,
            pb::GetReceivablesSummaryRequest { brand_id: agency.alpha.clone(), as_of: then.as_of },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(past, then);
}
