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
