//! Receivables from the invoice timeline projection equal the fold of the invoice events.

use chrono::{Days, Utc};
use sentra_proto::sentra::finance::v1 as pb;

use crate::helpers::{bearer, date, eur, spawn};

/// One step of a random invoice history (illegal ones are refused and leave no event).
#[derive(Clone, Debug)]
enum Op {
    Draft { amount: i64, terms: i32 },
    Issue { invoice: usize, days_ago: u64 },
    Pay { invoice: usize, amount: i64 },
    Credit { invoice: usize, amount: i64 },
    Void { invoice: usize },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        2 => (1i64..100_000, 0i32..60).prop_map(|(amount, terms)| Op::Draft { amount, terms }),
        3 => (any::<usize>(), 0u64..150).prop_map(|(invoice, days_ago)| Op::Issue { invoice, days_ago }),
        2 => (any::<usize>(), 1i64..80_000).prop_map(|(invoice, amount)| Op::Pay { invoice, amount }),
        1 => (any::<usize>(), 1i64..50_000).prop_map(|(invoice, amount)| Op::Credit { invoice, amount }),
        1 => any::<usize>().prop_map(|invoice| Op::Void { invoice }),
    ]
}

async fn play(world: &crate::helpers::World, agency: &crate::helpers::Agency, client: &str, ops: &[Op]) {
    let mut f = world.finance.clone();
    let tok = &agency.finance;
    let mut invoices: Vec<String> = Vec::new();
    let today = Utc::now().date_naive();
    for op in ops {
        let pick = |i: usize| invoices.get(i % invoices.len().max(1)).cloned();
        // Refusals (paying a draft, voiding twice) are part of a random history.
        let _ = match op.clone() {
            Op::Draft { amount, terms } => {
                invoices.push(world.draft(tok, agency, client, amount, terms).await.id);
                continue;
            }
            Op::Issue { invoice, days_ago } => {
                let Some(invoice_id) = pick(invoice) else { continue };
                let issue_date = date(today - Days::new(days_ago));
                f.issue_invoice(bearer(tok, pb::IssueInvoiceRequest { invoice_id, issue_date, etag: String::new() }))
                    .await
                    .map(|_| ())
            }
            Op::Pay { invoice, amount } => {
                let Some(invoice_id) = pick(invoice) else { continue };
                let payment = pb::RecordPaymentRequest {
                    invoice_id,
                    amount: eur(amount),
                    method: pb::PaymentMethod::BankTransfer.into(),
                    ..Default::default()
                };
                f.record_payment(bearer(tok, payment)).await.map(|_| ())
            }
            Op::Credit { invoice, amount } => {
                let Some(invoice_id) = pick(invoice) else { continue };
                let credit = pb::IssueCreditNoteRequest {
                    invoice_id,
                    amount: eur(amount),
                    reason: "goodwill".into(),
                    request_id: String::new(),
                };
                f.issue_credit_note(bearer(tok, credit)).await.map(|_| ())
            }
            Op::Void { invoice } => {
                let Some(invoice_id) = pick(invoice) else { continue };
                let void = pb::VoidInvoiceRequest { invoice_id, reason: "mistake".into(), etag: String::new() };
                f.void_invoice(bearer(tok, void)).await.map(|_| ())
            }
        };
    }
}

#[test]
fn the_invoice_timeline_equals_the_fold_of_the_events_at_every_instant() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let world = rt.block_on(spawn());
    let pool = rt.block_on(async {
        let options: sqlx::postgres::PgConnectOptions = world.db.url().parse().unwrap();
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options.options([("search_path", "finance")]))
            .await
            .unwrap()
    });
    let store = sentra_event_store::EventStore::new(pool.clone());
    let case = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config { cases: 5, failure_persistence: None, ..Config::default() });
    let first = Op::Draft { amount: 10_000, terms: 14 };
    let ops = proptest::strategy::Strategy::prop_map(proptest::collection::vec(op(), 5..35), move |mut ops| {
        ops.insert(0, first.clone());
        ops
    });
    runner
        .run(&ops, |ops| {
            let case = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            rt.block_on(async {
                let agency = world.agency(&format!("Receivables Agency {case}")).await;
                let client = world.client(&agency, "Random Client").await;
                play(&world, &agency, &client, &ops).await;
                // Through the API once: it waits for the projection to catch up.
                let mut f = world.finance.clone();
                let request = pb::GetReceivablesSummaryRequest { brand_id: String::new(), as_of: None };
                f.get_receivables_summary(bearer(&agency.finance, request)).await.unwrap();

                let tenant: uuid::Uuid = sqlx::query_scalar(
                    "SELECT tenant_id FROM events WHERE aggregate_type = 'invoice' ORDER BY position DESC LIMIT 1",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                let times: Vec<chrono::DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT DISTINCT recorded_at FROM events WHERE tenant_id = $1 AND aggregate_type = 'invoice' ORDER BY 1",
                )
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .unwrap();
                // Every event's own instant, the instants between, one before anything, and later
                // days that move the open balances through the aging buckets.
                let now = Utc::now();
                let mut instants = sentra_testkit::time::around(&times);
                for days in [0, 15, 31, 45, 61, 75, 91, 200] {
                    instants.push(now + chrono::Duration::days(days));
                }
                let alpha: uuid::Uuid = agency.alpha.parse().unwrap();
                for as_of in instants {
                    let as_of = sentra_runtime::wire::micros(as_of);
                    for brands in [None, Some(vec![alpha]), Some(vec![uuid::Uuid::nil()])] {
                        let sql = sentra_finance::queries::receivables(&pool, tenant, &brands, as_of).await.unwrap();
                        let fold =
                            sentra_finance::queries::receivables_fold(&store, tenant, &brands, as_of).await.unwrap();
                        assert_eq!(sql, fold, "as of {as_of}, brands {brands:?}");
                    }
                }
            });
            Ok(())
        })
        .unwrap();
}
