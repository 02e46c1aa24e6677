//! Hostile and out-of-range input gets a clean INVALID_ARGUMENT naming the field, and changes
//! nothing: dates outside the years 1 to 9999, amounts beyond the bound, payments that would
//! overflow a balance, invoices that total less than zero.

use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::r#type::v1::Date;
use tonic::Code;

use crate::helpers::{bearer, eur, eventually, expect_code, spawn};

fn day(year: i32) -> Option<Date> {
    Some(Date { year, month: 1, day: 1 })
}

fn names(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with(field), "{field} not named: {status:?}");
    let details = tonic_types::StatusExt::get_details_bad_request(status).expect("a BadRequest detail");
    assert_eq!(details.field_violations[0].field, field);
}

#[tokio::test]
async fn issue_dates_outside_years_1_to_9999_are_refused_and_the_draft_stays_a_draft() {
    let world = spawn().await;
    let agency = world.agency("Calendar Agency").await;
    let client = world.client(&agency, "Time Traveller").await;
    let draft = world.draft(&agency.finance, &agency, &client, 10_000, 365).await;
    let mut f = world.finance.clone();
    // Year 262142 once panicked in the due-date arithmetic; year 0 was numbered BAD-0-000001.
    for year in [262_142, 10_000, 0, -250_000] {
        let request =
            pb::IssueInvoiceRequest { invoice_id: draft.id.clone(), issue_date: day(year), etag: String::new() };
        let status = expect_code(f.issue_invoice(bearer(&agency.finance, request)).await, Code::InvalidArgument);
        names(&status, "issue_date");
    }
    // The last day there is, with a year of terms, is still fine (the due date is computed safely).
    let edge = pb::IssueInvoiceRequest {
        invoice_id: draft.id.clone(),
        issue_date: Some(Date { year: 9999, month: 12, day: 31 }),
        etag: String::new(),
    };
    let issued = f.issue_invoice(bearer(&agency.finance, edge)).await.unwrap().into_inner().invoice.unwrap();
    assert_eq!(issued.status, pb::InvoiceStatus::Issued as i32);
    assert!(issued.number.contains("-9999-"), "{}", issued.number);
    assert_eq!(issued.due_date.unwrap().year, 10_000);
}

#[tokio::test]
async fn list_and_summary_times_outside_the_calendar_are_invalid_not_internal() {
    let world = spawn().await;
    let agency = world.agency("Range Agency").await;
    let mut f = world.finance.clone();
    let far = prost_types::Timestamp { seconds: -7_950_000_000_000, nanos: 0 }; // year -250000
    let status = expect_code(
        f.get_receivables_summary(bearer(
            &agency.finance,
            pb::GetReceivablesSummaryRequest { brand_id: String::new(), as_of: Some(far) },
        ))
        .await,
        Code::InvalidArgument,
    );
    names(&status, "as_of");
    for (field, request) in [
        ("issued_from", pb::ListInvoicesRequest { issued_from: day(-250_000), ..Default::default() }),
        ("due_to", pb::ListInvoicesRequest { due_to: day(99_999), ..Default::default() }),
    ] {
        let status = expect_code(f.list_invoices(bearer(&agency.finance, request)).await, Code::InvalidArgument);
        names(&status, field);
    }
}

#[tokio::test]
async fn a_payment_that_would_overflow_the_balance_is_refused_and_nothing_changes() {
    let world = spawn().await;
    let agency = world.agency("Overflow Agency").await;
    let client = world.client(&agency, "Big Spender").await;
    let max = sentra_money::MAX_AMOUNT;
    // The largest invoice there can be: one line at the bound, less ten cents.
    let draft = world.draft(&agency.finance, &agency, &client, max - 10, 30).await;
    let mut f = world.finance.clone();
    let issue = pb::IssueInvoiceRequest { invoice_id: draft.id.clone(), ..Default::default() };
    f.issue_invoice(bearer(&agency.finance, issue)).await.unwrap();
    let pay = |amount: i64| pb::RecordPaymentRequest {
        invoice_id: draft.id.clone(),
        amount: eur(amount),
        method: pb::PaymentMethod::BankTransfer.into(),
        ..Default::default()
    };
    f.record_payment(bearer(&agency.finance, pay(1))).await.unwrap();
    // i64::MAX once recorded fine, marked the invoice PAID with amount_paid 0, and wrapped the
    // client's balance to i64::MIN.
    for amount in [i64::MAX, max + 1] {
        let status = expect_code(f.record_payment(bearer(&agency.finance, pay(amount))).await, Code::InvalidArgument);
        names(&status, "amount");
    }
    // Within the bound each, but together beyond it: refused by the invoice, not wrapped.
    f.record_payment(bearer(&agency.finance, pay(max - 20))).await.unwrap();
    let status = expect_code(f.record_payment(bearer(&agency.finance, pay(30))).await, Code::InvalidArgument);
    names(&status, "amount");
    assert!(status.message().contains("must not add up"), "{status:?}");

    let invoice = f
        .get_invoice(bearer(&agency.finance, pb::GetInvoiceRequest { invoice_id: draft.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(invoice.payments.len(), 2);
    assert_eq!(invoice.status, pb::InvoiceStatus::PartiallyPaid as i32);
    assert_eq!(invoice.amount_paid.unwrap().amount_minor, max - 19);
    assert_eq!(invoice.balance.unwrap().amount_minor, 9);
    // The client's balance (a projection) follows exactly, without wrapping.
    eventually("the client's balance", || {
        let mut f = f.clone();
        let request = bearer(
            &agency.finance,
            pb::GetClientBalanceRequest { client_id: client.clone(), brand_id: agency.alpha.clone() },
        );
        async move {
            let balance = f.get_client_balance(request).await.ok()?.into_inner();
            let eur = balance.balances.first()?;
            ((eur.paid_minor, eur.outstanding_minor, eur.credit_minor) == (max - 19, 9, 0)).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn an_invoice_may_not_total_less_than_zero() {
    let world = spawn().await;
    let agency = world.agency("Negative Agency").await;
    let client = world.client(&agency, "Refund Hunter").await;
    let line = pb::InvoiceLine {
        description: "Rebate".into(),
        quantity: "1".into(),
        unit_price: eur(-100),
        ..Default::default()
    };
    let request = pb::CreateInvoiceRequest {
        brand_id: agency.alpha.clone(),
        client_id: client.clone(),
        currency_code: "EUR".into(),
        lines: vec![line],
        payment_terms_days: 30,
        request_id: String::new(),
    };
    let status = expect_code(
        world.finance.clone().create_invoice(bearer(&agency.finance, request)).await,
        Code::InvalidArgument,
    );
    names(&status, "lines");
}
