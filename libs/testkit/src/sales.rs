//! The Sales setup steps tests share: a client made the way agents make one (a lead, qualified,
//! converted).

use sentra_proto::sentra::sales::v1 as pb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use tonic::transport::Channel;

use crate::grpc::bearer;

/// A client of `brand_id` named `name`, converted from a qualified lead by `token`'s user.
///
/// # Panics
/// If Sales refuses any step.
pub async fn client(sales: &SalesServiceClient<Channel>, token: &str, brand_id: &str, name: &str) -> pb::Client {
    let mut sales = sales.clone();
    let lead = pb::Lead {
        brand_id: brand_id.into(),
        contact_name: name.into(),
        email: format!("{}@client.example", name.to_lowercase().replace(' ', ".")),
        ..Default::default()
    };
    let request = pb::CreateLeadRequest { lead: Some(lead), request_id: uuid::Uuid::new_v4().to_string() };
    let lead = sales.create_lead(bearer(token, request)).await.expect("lead").into_inner().lead.expect("lead");
    for stage in [pb::LeadStage::Contacted, pb::LeadStage::Qualified] {
        let request = pb::ChangeLeadStageRequest { lead_id: lead.id.clone(), stage: stage.into(), etag: String::new() };
        sales.change_lead_stage(bearer(token, request)).await.expect("stage");
    }
    let convert = pb::ConvertLeadRequest { lead_id: lead.id, ..Default::default() };
    sales.convert_lead(bearer(token, convert)).await.expect("convert").into_inner().client.expect("client")
}
