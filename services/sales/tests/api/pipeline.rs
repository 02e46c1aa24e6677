//! The dashboard: the pipeline now, and as it stood at any past moment.

use sentra_proto::sentra::sales::v1 as pb;

use crate::helpers::{advance, bearer, create_lead, spawn};

#[tokio::test]
async fn a_summary_as_of_a_past_time_equals_the_summary_taken_then() {
    let world = spawn().await;
    let agency = world.agency("Pipeline Agency").await;
    let mut s = world.sales.clone();
    let token = &agency.agent.1;
    let summary = |as_of: Option<prost_types::Timestamp>| pb::GetPipelineSummaryRequest {
        brand_id: agency.alpha.clone(),
        period_start: None,
        as_of,
    };

    let a = create_lead(&world, token, &agency.alpha, "Lead A").await;
    let b = create_lead(&world, token, &agency.alpha, "Lead B").await;
    let _c = create_lead(&world, &agency.beta_agent.1, &agency.beta, "Lead C").await;
    let a = advance(&world, token, &a, pb::LeadStage::Qualified).await;
    s.mark_lead_lost(bearer(
        token,
        pb::MarkLeadLostRequest { lead_id: b.id.clone(), reason: "competitor".into(), etag: String::new() },
    ))
    .await
    .unwrap();

    let then = s.get_pipeline_summary(bearer(&agency.manager.1, summary(None))).await.unwrap().into_inner();
    let count = |s: &pb::GetPipelineSummaryResponse, stage: pb::LeadStage| {
        s.stages.iter().find(|x| x.stage == stage as i32).map(|x| x.count).unwrap_or(-1)
    };
    assert_eq!(count(&then, pb::LeadStage::Qualified), 1);
    assert_eq!(count(&then, pb::LeadStage::Lost), 1);
    assert_eq!((then.created, then.won, then.lost), (2, 0, 1), "brand Beta's lead is not counted");
    assert_eq!(then.lost_by_reason, [pb::OutcomeCount { key: "competitor".into(), won: 0, lost: 1 }]);
    let qualified_value = &then.stages.iter().find(|x| x.stage == pb::LeadStage::Qualified as i32).unwrap().value;
    assert_eq!(qualified_value[0].amount_minor, 1_250_000);

    // The pipeline moves on...
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    s.convert_lead(bearer(token, pb::ConvertLeadRequest { lead_id: a.id.clone(), ..Default::default() }))
        .await
        .unwrap();
    create_lead(&world, token, &agency.alpha, "Lead D").await;
    let now = s.get_pipeline_summary(bearer(&agency.manager.1, summary(None))).await.unwrap().into_inner();
    assert_eq!((now.created, now.won, now.lost), (3, 1, 1));
    assert!((now.conversion_rate - 0.5).abs() < 1e-9);
    assert_eq!(now.by_agent, [pb::OutcomeCount { key: agency.agent.0.clone(), won: 1, lost: 1 }]);

    // ...and the past is still exactly what it was.
    let past = s.get_pipeline_summary(bearer(&agency.manager.1, summary(then.as_of))).await.unwrap().into_inner();
    assert_eq!(past, then);
}

/// One step of a random lead history (illegal ones are refused by Sales and leave no event).
#[derive(Clone, Debug)]
enum Op {
    Create { beta: bool, value: Option<(&'static str, i64)> },
    Update { lead: usize, value: Option<(&'static str, i64)> },
    Stage { lead: usize, to: pb::LeadStage },
    Lose { lead: usize, reason: &'static str },
    Convert { lead: usize },
    Reopen { lead: usize },
    Assign { lead: usize, second: bool },
    Note { lead: usize },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let value = prop_oneof![Just(None), (prop_oneof![Just("EUR"), Just("USD")], 0i64..5_000_000).prop_map(Some)];
    let stage = prop_oneof![
        Just(pb::LeadStage::Contacted),
        Just(pb::LeadStage::Qualified),
        Just(pb::LeadStage::Proposal),
        Just(pb::LeadStage::Negotiation),
    ];
    prop_oneof![
        3 => (any::<bool>(), value.clone()).prop_map(|(beta, value)| Op::Create { beta, value }),
        1 => (any::<usize>(), value).prop_map(|(lead, value)| Op::Update { lead, value }),
        4 => (any::<usize>(), stage).prop_map(|(lead, to)| Op::Stage { lead, to }),
        1 => (any::<usize>(), prop_oneof![Just("budget"), Just("competitor")]).prop_map(|(lead, reason)| Op::Lose { lead, reason }),
        1 => any::<usize>().prop_map(|lead| Op::Convert { lead }),
        1 => any::<usize>().prop_map(|lead| Op::Reopen { lead }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(lead, second)| Op::Assign { lead, second }),
        1 => any::<usize>().prop_map(|lead| Op::Note { lead }),
    ]
}

/// Plays `ops` against Sales as the agency's manager (Alpha) and owner (Beta).
async fn play(world: &crate::helpers::World, agency: &crate::helpers::Agency, ops: &[Op]) {
    use prost_types::FieldMask;
    let mut s = world.sales.clone();
    let mut leads: Vec<String> = Vec::new();
    let money = |value: Option<(&str, i64)>| {
        value.map(|(currency_code, amount_minor)| sentra_proto::sentra::r#type::v1::Money {
            currency_code: currency_code.into(),
            amount_minor,
        })
    };
    for op in ops {
        let pick = |i: usize| leads.get(i % leads.len().max(1)).cloned();
        let token = &agency.owner;
        // Refusals (illegal moves) are part of a random history; only the successes leave events.
        let _ = match op.clone() {
            Op::Create { beta, value } => {
                let brand = if beta { &agency.beta } else { &agency.alpha };
                let mut lead = crate::helpers::new_lead(brand, &format!("Lead {}", leads.len()));
                lead.estimated_value = money(value);
                let created = s
                    .create_lead(bearer(token, pb::CreateLeadRequest { lead: Some(lead), request_id: String::new() }))
                    .await
                    .unwrap();
                leads.push(created.into_inner().lead.unwrap().id);
                continue;
            }
            Op::Update { lead, value } => {
                let Some(id) = pick(lead) else { continue };
                let lead = pb::Lead { id, estimated_value: money(value), ..Default::default() };
                let mask = FieldMask { paths: vec!["estimated_value".into()] };
                s.update_lead(bearer(token, pb::UpdateLeadRequest { lead: Some(lead), update_mask: Some(mask) }))
                    .await
                    .map(|_| ())
            }
            Op::Stage { lead, to } => {
                let Some(lead_id) = pick(lead) else { continue };
                let request = pb::ChangeLeadStageRequest { lead_id, stage: to as i32, etag: String::new() };
                s.change_lead_stage(bearer(token, request)).await.map(|_| ())
            }
            Op::Lose { lead, reason } => {
                let Some(lead_id) = pick(lead) else { continue };
                let request = pb::MarkLeadLostRequest { lead_id, reason: reason.into(), etag: String::new() };
                s.mark_lead_lost(bearer(token, request)).await.map(|_| ())
            }
            Op::Convert { lead } => {
                let Some(lead_id) = pick(lead) else { continue };
                s.convert_lead(bearer(token, pb::ConvertLeadRequest { lead_id, ..Default::default() }))
                    .await
                    .map(|_| ())
            }
            Op::Reopen { lead } => {
                let Some(lead_id) = pick(lead) else { continue };
                s.reopen_lead(bearer(token, pb::ReopenLeadRequest { lead_id, etag: String::new() })).await.map(|_| ())
            }
            Op::Assign { lead, second } => {
                let Some(lead_id) = pick(lead) else { continue };
                let assignee_id = if second { agency.agent2.0.clone() } else { agency.agent.0.clone() };
                let request = pb::AssignLeadRequest { lead_id, assignee_id, etag: String::new() };
                s.assign_lead(bearer(token, request)).await.map(|_| ())
            }
            Op::Note { lead } => {
                let Some(lead_id) = pick(lead) else { continue };
                s.add_lead_note(bearer(token, pb::AddLeadNoteRequest { lead_id, text: "called".into() }))
                    .await
                    .map(|_| ())
            }
        };
    }
}

/// Both summaries agree: counts, values and outcomes exactly, average days to a microsecond-ish.
fn assert_same(sql: &sentra_sales::queries::Summary, fold: &sentra_sales::queries::Summary, context: &str) {
    assert_eq!((sql.created, sql.won, sql.lost), (fold.created, fold.won, fold.lost), "{context}");
    assert_eq!(sql.lost_by_reason, fold.lost_by_reason, "{context}");
    assert_eq!(sql.by_agent, fold.by_agent, "{context}");
    assert_eq!(sql.stages.len(), fold.stages.len(), "{context}");
    for (a, b) in sql.stages.iter().zip(&fold.stages) {
        assert_eq!((a.0, a.1, &a.2), (b.0, b.1, &b.2), "{context}: stage {:?}", a.0);
        assert!((a.3 - b.3).abs() < 1e-7, "{context}: average days in {:?}: {} vs {}", a.0, a.3, b.3);
    }
}

#[test]
fn the_timeline_projection_equals_the_fold_of_the_events_at_every_instant() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let world = rt.block_on(spawn());
    let pool = rt.block_on(async {
        let options: sqlx::postgres::PgConnectOptions = world.db_url().parse().unwrap();
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options.options([("search_path", "sales")]))
            .await
            .unwrap()
    });
    let store = sentra_event_store::EventStore::new(pool.clone());
    let mut runner = TestRunner::new(Config { cases: 6, failure_persistence: None, ..Config::default() });
    let case = std::sync::atomic::AtomicUsize::new(0);
    // Every history starts with a lead, so there is an instant before the first event.
    let first = Op::Create { beta: false, value: Some(("EUR", 100)) };
    let ops = proptest::strategy::Strategy::prop_map(proptest::collection::vec(op(), 5..40), move |mut ops| {
        ops.insert(0, first.clone());
        ops
    });
    runner
        .run(&ops, |ops| {
            let case = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            rt.block_on(async {
                let agency = world.agency(&format!("Property Agency {case}")).await;
                play(&world, &agency, &ops).await;
                // Through the API once: it waits for the projection to catch up.
                let mut s = world.sales.clone();
                s.get_pipeline_summary(bearer(&agency.owner, pb::GetPipelineSummaryRequest::default())).await.unwrap();

                // This case's agency made the newest lead event.
                let tenant: uuid::Uuid = sqlx::query_scalar(
                    "SELECT tenant_id FROM events WHERE aggregate_type = 'lead' ORDER BY position DESC LIMIT 1",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                let alpha: uuid::Uuid = agency.alpha.parse().unwrap();
                let times: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
                    "SELECT DISTINCT recorded_at FROM events WHERE tenant_id = $1 AND aggregate_type = 'lead' ORDER BY 1",
                )
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .unwrap();
                // Every event's own instant, the instants between, one before anything and now.
                let mut instants = sentra_testkit::time::around(&times);
                instants.push(chrono::Utc::now());
                let middle = times[times.len() / 2];
                for as_of in instants {
                    let as_of = sentra_runtime::wire::micros(as_of);
                    for brands in [None, Some(vec![alpha])] {
                        for period in [None, Some(middle)] {
                            let sql = sentra_sales::queries::pipeline_summary(&pool, tenant, &brands, period, as_of)
                                .await
                                .unwrap();
                            let fold =
                                sentra_sales::queries::pipeline_summary_fold(&store, tenant, &brands, period, as_of)
                                    .await
                                    .unwrap();
                            assert_same(&sql, &fold, &format!("as of {as_of}, brands {brands:?}, period {period:?}"));
                        }
                    }
                }
            });
            Ok(())
        })
        .unwrap();
}
