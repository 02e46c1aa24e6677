//! Brands by host name: the same portal login on two domains, tokens used on foreign domains.

use sentra_proto::sentra::tenancy::v1 as pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn the_host_name_picks_the_brand_and_tokens_stay_on_their_domain() {
    let stack = Stack::start().await;
    let tenant = stack.tenant("White Label").await;
    let a = stack.brand(&tenant, "Alpha", "portal.alpha.example").await;
    let b = stack.brand(&tenant, "Beta", "portal.beta.example").await;
    // The same email is a portal client of both brands (two identities, one per brand).
    stack.portal_user(&tenant, &a.id, "client@customer.example").await;
    stack.portal_user(&tenant, &b.id, "client@customer.example").await;

    let on_a = stack.web_login("client@customer.example", "portal.alpha.example").await.expect("login on A");
    let on_b = stack.web_login("client@customer.example", "portal.beta.example").await.expect("login on B");
    assert_eq!(jwt_claims(&on_a)["portal_brand"], a.id.as_str());
    assert_eq!(jwt_claims(&on_b)["portal_brand"], b.id.as_str());
    // The gateway resolved each host and told Tenancy which brand the call came in on.
    let seen = stack.upstream.last("Login").expect("login forwarded");
    assert_eq!(seen.headers.get("x-sentra-brand-id").and_then(|v| v.to_str().ok()), Some(b.id.as_str()));
    assert_eq!(
        seen.headers.get("x-sentra-organization-id").and_then(|v| v.to_str().ok()),
        Some(tenant.org_id.as_str())
    );

    let get_brand = "/sentra.tenancy.v1.TenancyService/GetBrand";
    let own = stack
        .web(get_brand, &pb::GetBrandRequest { brand_id: a.id.clone() }, Some("portal.alpha.example"), Some(&on_a), &[])
        .await;
    assert_status(&own, Code::Ok);
    let answer: pb::GetBrandResponse = own.message().expect("brand");
    assert_eq!(answer.brand.expect("brand").id, a.id);

    // A's portal token on B's domain: refused at the edge, whatever the call.
    let (get_before, list_before) = (stack.upstream.count("/GetBrand"), stack.upstream.count("/ListBrands"));
    let foreign = stack
        .web(get_brand, &pb::GetBrandRequest { brand_id: a.id.clone() }, Some("portal.beta.example"), Some(&on_a), &[])
        .await;
    assert_status(&foreign, Code::PermissionDenied);
    let foreign = stack
        .web(
            "/sentra.tenancy.v1.TenancyService/ListBrands",
            &pb::ListBrandsRequest::default(),
            Some("portal.beta.example"),
            Some(&on_a),
            &[],
        )
        .await;
    assert_status(&foreign, Code::PermissionDenied);
    assert_eq!(stack.upstream.count("/GetBrand"), get_before, "not forwarded");
    assert_eq!(stack.upstream.count("/ListBrands"), list_before, "not forwarded");
}

#[tokio::test]
async fn a_staff_token_is_refused_on_another_organizations_domain() {
    let stack = Stack::start().await;
    let ours = stack.tenant("Our Agency").await;
    let theirs = stack.tenant("Their Agency").await;
    stack.brand(&ours, "Ours", "app.ours.example").await;
    stack.brand(&theirs, "Theirs", "app.theirs.example").await;

    let list = "/sentra.tenancy.v1.TenancyService/ListBrands";
    let home =
        stack.web(list, &pb::ListBrandsRequest::default(), Some("app.ours.example"), Some(&ours.token), &[]).await;
    assert_status(&home, Code::Ok);
    let away =
        stack.web(list, &pb::ListBrandsRequest::default(), Some("app.theirs.example"), Some(&ours.token), &[]).await;
    assert_status(&away, Code::PermissionDenied);
    // A domain no brand uses names no brand: the token works there as on a bare address.
    let unknown =
        stack.web(list, &pb::ListBrandsRequest::default(), Some("nobody.example"), Some(&ours.token), &[]).await;
    assert_status(&unknown, Code::Ok);
}
