//! The request message of every method, decoded as tonic decodes it and converted as the
//! handler converts it.

use prost::Message;
use sentra_finance::boundary as fin;
use sentra_proto::sentra::finance::v1 as fpb;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_sales::commands::{self as sales, CreateLead, UpdateLead};
use sentra_sales::domain::lead::{Contact, Value};
use sentra_tenancy::commands as tenancy;
use sentra_tenancy::validate;

/// An error a boundary conversion may return: it must name the field at fault.
trait NamesField {
    fn field(&self) -> Option<&'static str>;
}

/// Sales' and Finance's error (one type, the kernel's).
impl NamesField for sentra_sales::error::SalesError {
    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl NamesField for sentra_tenancy::error::TenancyError {
    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

fn named<T, E: NamesField + std::fmt::Debug>(result: Result<T, E>) {
    if let Err(error) = result {
        assert!(error.field().is_some_and(|f| !f.is_empty()), "a boundary error must name its field: {error:?}");
    }
}

/// Decodes `bytes` as `M`; `None` when tonic would refuse it (the guard turns that into
/// INVALID_ARGUMENT, see [`crate::guarded_call`]).
fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

macro_rules! methods {
    ($($name:literal => $ty:ty => |$m:ident| $body:expr;)*) => {
        &[$(($name, |bytes: &[u8]| {
            if let Some($m) = decode::<$ty>(bytes) {
                $body
            }
        })),*]
    };
}

/// Every method: its name and what its handler does with the message before touching state.
const METHODS: &[(&str, crate::Target)] = methods! {
    // Tenancy
    "SignUp" => tpb::SignUpRequest => |m| named(tenancy::SignUp::try_from(m));
    "GetOrganization" => tpb::GetOrganizationRequest => |m| named(validate::id("organization_id", &m.organization_id));
    "UpdateOrganization" => tpb::UpdateOrganizationRequest => |m| named(tenancy::UpdateOrganization::try_from(m));
    "CreateBrand" => tpb::CreateBrandRequest => |m| named(tenancy::CreateBrand::try_from(m));
    "GetBrand" => tpb::GetBrandRequest => |m| named(validate::id("brand_id", &m.brand_id));
    "ListBrands" => tpb::ListBrandsRequest => |m| { named(validate::page_size(m.page_size)); named(validate::page_token(&m.page_token)); };
    "UpdateBrand" => tpb::UpdateBrandRequest => |m| named(tenancy::UpdateBrand::try_from(m));
    "ArchiveBrand" => tpb::ArchiveBrandRequest => |m| named(validate::id("brand_id", &m.brand_id));
    "ResolveBrandByDomain" => tpb::ResolveBrandByDomainRequest => |m| named(validate::domain("host", validate::strip_port(&m.host)));
    "InviteUser" => tpb::InviteUserRequest => |m| named(tenancy::NewUser::try_from(m));
    "AcceptInvite" => tpb::AcceptInviteRequest => |m| named(validate::password("password", &m.password));
    "CreateUser" => tpb::CreateUserRequest => |m| named(tenancy::NewUser::try_from(m));
    "GetUser" => tpb::GetUserRequest => |m| named(validate::id("user_id", &m.user_id));
    "ListUsers" => tpb::ListUsersRequest => |m| { named(validate::page_size(m.page_size)); named(validate::page_token(&m.page_token)); };
    "DeactivateUser" => tpb::DeactivateUserRequest => |m| named(validate::id("user_id", &m.user_id));
    "GrantBrandAccess" => tpb::GrantBrandAccessRequest => |m| named(tenancy::GrantAccess::try_from(m));
    "RevokeBrandAccess" => tpb::RevokeBrandAccessRequest => |m| { named(validate::id("brand_id", &m.brand_id)); named(validate::id("user_id", &m.user_id)); };
    "ListUserBrandAccess" => tpb::ListUserBrandAccessRequest => |m| named(validate::id("user_id", &m.user_id));
    "ListBrandMembers" => tpb::ListBrandMembersRequest => |m| named(validate::id("brand_id", &m.brand_id));
    "CreatePortalUser" => tpb::CreatePortalUserRequest => |m| named(tenancy::NewPortalUser::try_from(m));
    "Login" => tpb::LoginRequest => |m| named(tenancy::Login::try_from(m));
    "Refresh" => tpb::RefreshRequest => |m| { let _ = m.refresh_token.len(); };
    "Logout" => tpb::LogoutRequest => |m| { let _ = m.refresh_token.len(); };
    "GetSigningKeys" => tpb::GetSigningKeysRequest => |_m| {};
    "GetSession" => tpb::GetSessionRequest => |_m| {};
    // Sales
    "CreateLead" => spb::CreateLeadRequest => |m| named(CreateLead::try_from(m));
    "GetLead" => spb::GetLeadRequest => |m| named(sales::id("lead_id", &m.lead_id));
    "ListLeads" => spb::ListLeadsRequest => |m| {
        named(sales::optional_id("brand_id", &m.brand_id));
        named(sales::optional_id("assignee_id", &m.assignee_id));
        for s in &m.stages { named(sales::stage("stages", *s)); }
        named(sales::timestamp("created_after", m.created_after.as_ref()));
        named(sales::timestamp("created_before", m.created_before.as_ref()));
        named(sales::text("query", &m.query, 200));
        named(sales::page_size(m.page_size));
        named(sales::page_token(&m.page_token));
    };
    "UpdateLead" => spb::UpdateLeadRequest => |m| {
        match UpdateLead::try_from(m) {
            Ok(update) => named(update.merge(&Contact::default(), "", &Value::default(), "")),
            Err(error) => named::<(), _>(Err(error)),
        }
    };
    "AssignLead" => spb::AssignLeadRequest => |m| { named(sales::id("lead_id", &m.lead_id)); named(sales::optional_id("assignee_id", &m.assignee_id)); named(sales::etag("etag", &m.etag)); };
    "ChangeLeadStage" => spb::ChangeLeadStageRequest => |m| { named(sales::stage("stage", m.stage)); named(sales::etag("etag", &m.etag)); };
    "AddLeadNote" => spb::AddLeadNoteRequest => |m| named(sales::required("text", &m.text, 10_000));
    "MarkLeadLost" => spb::MarkLeadLostRequest => |m| { named(sales::text("reason", &m.reason, 500)); named(sales::etag("etag", &m.etag)); };
    "ReopenLead" => spb::ReopenLeadRequest => |m| named(sales::etag("etag", &m.etag));
    "ConvertLead" => spb::ConvertLeadRequest => |m| { named(sales::optional_id("existing_client_id", &m.existing_client_id)); named(sales::etag("etag", &m.etag)); };
    "GetLeadHistory" => spb::GetLeadHistoryRequest => |m| named(sales::id("lead_id", &m.lead_id));
    "GetClient" => spb::GetClientRequest => |m| named(sales::id("client_id", &m.client_id));
    "ListClients" => spb::ListClientsRequest => |m| { named(sales::page_size(m.page_size)); named(sales::page_token(&m.page_token)); };
    "UpdateClient" => spb::UpdateClientRequest => |m| {
        let client = m.client.unwrap_or_default();
        match sales::update_paths(m.update_mask.as_ref(), &["contact_name", "email", "phone", "company"]) {
            Ok(paths) => named(sales::client_contact(&Contact::default(), &client, &paths)),
            Err(error) => named::<(), _>(Err(error)),
        }
    };
    "ArchiveClient" => spb::ArchiveClientRequest => |m| named(sales::etag("etag", &m.etag));
    "CreateOrder" => spb::CreateOrderRequest => |m| { named(sales::order_lines(&m.currency_code, &m.lines)); named(sales::request_id(&m.request_id)); };
    "GetOrder" => spb::GetOrderRequest => |m| named(sales::id("order_id", &m.order_id));
    "ListOrders" => spb::ListOrdersRequest => |m| { for s in &m.states { named(sales::order_state("states", *s)); } named(sales::page_token(&m.page_token)); };
    "UpdateOrderLines" => spb::UpdateOrderLinesRequest => |m| { named(sales::order_lines("EUR", &m.lines)); named(sales::etag("etag", &m.etag)); };
    "ConfirmOrder" => spb::ConfirmOrderRequest => |m| named(sales::etag("etag", &m.etag));
    "FulfillOrder" => spb::FulfillOrderRequest => |m| named(sales::etag("etag", &m.etag));
    "CancelOrder" => spb::CancelOrderRequest => |m| { named(sales::text("reason", &m.reason, 500)); named(sales::etag("etag", &m.etag)); };
    "GetPipelineSummary" => spb::GetPipelineSummaryRequest => |m| { named(sales::timestamp("period_start", m.period_start.as_ref())); named(sales::timestamp("as_of", m.as_of.as_ref())); };
    // Finance
    "CreateInvoice" => fpb::CreateInvoiceRequest => |m| { named(fin::lines(&m.currency_code, &m.lines)); named(fin::request_id(&m.request_id)); };
    "GetInvoice" => fpb::GetInvoiceRequest => |m| named(fin::id("invoice_id", &m.invoice_id));
    "ListInvoices" => fpb::ListInvoicesRequest => |m| {
        named(fin::date("issued_from", m.issued_from.as_ref()));
        named(fin::date("issued_to", m.issued_to.as_ref()));
        named(fin::date("due_from", m.due_from.as_ref()));
        named(fin::date("due_to", m.due_to.as_ref()));
        named(fin::page_size(m.page_size));
        named(fin::page_token(&m.page_token));
    };
    "UpdateInvoiceLines" => fpb::UpdateInvoiceLinesRequest => |m| { named(fin::lines("", &m.lines)); named(fin::etag(&m.etag)); };
    "IssueInvoice" => fpb::IssueInvoiceRequest => |m| { named(fin::date("issue_date", m.issue_date.as_ref())); named(fin::etag(&m.etag)); };
    "VoidInvoice" => fpb::VoidInvoiceRequest => |m| named(fin::text("reason", &m.reason, 500, true));
    "RecordPayment" => fpb::RecordPaymentRequest => |m| {
        named(fin::amount("amount", m.amount.as_ref(), "EUR"));
        named(fin::method_name(m.method));
        named(fin::date("paid_on", m.paid_on.as_ref()));
    };
    "IssueCreditNote" => fpb::IssueCreditNoteRequest => |m| { named(fin::amount("amount", m.amount.as_ref(), "EUR")); named(fin::text("reason", &m.reason, 500, true)); };
    "GetClientBalance" => fpb::GetClientBalanceRequest => |m| named(fin::id("client_id", &m.client_id));
    "GetReceivablesSummary" => fpb::GetReceivablesSummaryRequest => |m| named(fin::optional_id("brand_id", &m.brand_id));
};

/// The names of all methods, in selector order.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    METHODS.iter().map(|(name, _)| *name)
}

/// The selector byte of `method`.
pub(crate) fn index_of(method: &str) -> u8 {
    let index = METHODS.iter().position(|(name, _)| *name == method).expect("a known method");
    u8::try_from(index).expect("fewer than 256 methods")
}

/// The first byte picks a method, the rest is its request message.
pub fn requests(data: &[u8]) {
    let Some((&pick, message)) = data.split_first() else { return };
    let (_, method) = METHODS[usize::from(pick) % METHODS.len()];
    method(message);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_method_is_covered() {
        assert_eq!(super::METHODS.len(), 58, "one entry per RPC of the Tenancy, Auth, Sales and Finance services");
    }
}
