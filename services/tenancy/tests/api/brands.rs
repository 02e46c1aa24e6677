//! Brands: domains, resolution and its cache, updates with etags, idempotent creates, paging.

use prost_types::FieldMask;
use sentra_proto::sentra::tenancy::v1 as pb;
use tonic::Code;

use crate::helpers::{bearer, brand, expect_code, spawn_app};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

async fn resolve(app: &crate::helpers::TestApp, host: &str) -> Result<pb::ResolveBrandByDomainResponse, tonic::Status> {
    app.tenancy
        .clone()
        .resolve_brand_by_domain(pb::ResolveBrandByDomainRequest { host: host.into() })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn two_tenants_cannot_claim_the_same_domain() {
    let app = spawn_app().await;
    let first = app.tenant("First").await;
    let second = app.tenant("Second").await;
    app.brand(&first.token, "Quill", "app.urbanquill.com").await;
    let taken = app
        .tenancy
        .clone()
        .create_brand(bearer(
            &second.token,
            pb::CreateBrandRequest { brand: Some(brand("Copycat", "APP.UrbanQuill.com")), request_id: String::new() },
        ))
        .await;
    let status = expect_code(taken, Code::AlreadyExists);
    assert!(status.message().contains("domain"), "{status:?}");
}

#[tokio::test]
async fn resolution_follows_updates_and_archiving() {
    let app = spawn_app().await;
    let tenant = app.tenant("Resolver").await;
    let created = app.brand(&tenant.token, "Pulp", "app.thepulphouse.com").await;

    // Resolve twice: the second answer comes from the Redis cache and must equal the first.
    let first = resolve(&app, "App.ThePulpHouse.com:8443").await.expect("resolves");
    assert_eq!(first.brand_id, created.id);
    assert_eq!(first.organization_id, tenant.org_id);
    assert_eq!(first.display_name, "Pulp Studio");
    assert_eq!(resolve(&app, "app.thepulphouse.com").await.unwrap(), first);
    let cached = app.redis_get(&format!("{}brand:domain:app.thepulphouse.com", app.redis_prefix)).await;
    assert!(cached.is_some_and(|json| json.contains(&created.id)), "the resolution is cached in Redis");

    // Moving the domain invalidates the cache: the old host is gone, the new one resolves.
    let updated = app
        .tenancy
        .clone()
        .update_brand(bearer(
            &tenant.token,
            pb::UpdateBrandRequest {
                brand: Some(pb::Brand {
                    id: created.id.clone(),
                    domain: "portal.thepulphouse.com".into(),
                    display_name: "The Pulp House".into(),
                    etag: created.etag.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["domain", "display_name"]),
            },
        ))
        .await
        .expect("update")
        .into_inner()
        .brand
        .unwrap();
    assert_eq!(updated.domain, "portal.thepulphouse.com");
    assert_eq!(updated.name, "Pulp", "fields outside the mask are kept");
    assert_ne!(updated.etag, created.etag);
    expect_code(resolve(&app, "app.thepulphouse.com").await, Code::NotFound);
    assert!(app.redis_get(&format!("{}brand:domain:app.thepulphouse.com", app.redis_prefix)).await.is_none());
    let moved = resolve(&app, "portal.thepulphouse.com").await.expect("new domain resolves");
    assert_eq!((moved.brand_id.as_str(), moved.display_name.as_str()), (created.id.as_str(), "The Pulp House"));

    // Archiving releases the domain: it no longer resolves, and another brand may take it.
    app.tenancy
        .clone()
        .archive_brand(bearer(
            &tenant.token,
            pb::ArchiveBrandRequest { brand_id: created.id.clone(), etag: updated.etag },
        ))
        .await
        .expect("archive");
    expect_code(resolve(&app, "portal.thepulphouse.com").await, Code::NotFound);
    app.brand(&tenant.token, "Pulp 2", "portal.thepulphouse.com").await;
}

#[tokio::test]
async fn a_stale_etag_is_aborted_and_loses_nothing() {
    let app = spawn_app().await;
    let tenant = app.tenant("Etags").await;
    let created = app.brand(&tenant.token, "Etag", "etag.example.com").await;
    let update = |name: &str, etag: &str| pb::UpdateBrandRequest {
        brand: Some(pb::Brand { id: created.id.clone(), name: name.into(), etag: etag.into(), ..Default::default() }),
        update_mask: mask(&["name"]),
    };
    let (mut client_a, mut client_b) = (app.tenancy.clone(), app.tenancy.clone());
    let (a, b) = tokio::join!(
        client_a.update_brand(bearer(&tenant.token, update("Winner A", &created.etag))),
        client_b.update_brand(bearer(&tenant.token, update("Winner B", &created.etag))),
    );
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won.into_inner().brand.unwrap(), lost),
        other => panic!("exactly one update must win: {other:?}"),
    };
    assert_eq!(lost.code(), Code::Aborted, "{lost:?}");
    let now = app
        .tenancy
        .clone()
        .get_brand(bearer(&tenant.token, pb::GetBrandRequest { brand_id: created.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .brand
        .unwrap();
    assert_eq!(now.name, won.name);
    assert_eq!(now.etag, won.etag);
}

#[tokio::test]
async fn a_retried_create_with_the_same_request_id_returns_the_same_brand() {
    let app = spawn_app().await;
    let tenant = app.tenant("Retry").await;
    let request =
        || pb::CreateBrandRequest { brand: Some(brand("Once", "once.example.com")), request_id: "req-42".into() };
    let first = app.tenancy.clone().create_brand(bearer(&tenant.token, request())).await.unwrap().into_inner();
    let again = app.tenancy.clone().create_brand(bearer(&tenant.token, request())).await.unwrap().into_inner();
    assert_eq!(first.brand.unwrap().id, again.brand.unwrap().id);
    let listed = app
        .tenancy
        .clone()
        .list_brands(bearer(&tenant.token, pb::ListBrandsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.brands.len(), 1);

    let pool = app.sql_pool().await;
    let created_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE routing_key = 'tenancy.brand.created'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(created_events, 1, "one creation, one outbox event");
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let app = spawn_app().await;
    let tenant = app.tenant("Validation").await;
    let sign_up = |name: &str, password: &str| pb::SignUpRequest {
        organization_name: name.into(),
        owner_email: "x@validation.example".into(),
        owner_display_name: "X".into(),
        password: password.into(),
        request_id: String::new(),
    };
    let empty =
        expect_code(app.tenancy.clone().sign_up(sign_up("  ", "correct horse 42")).await, Code::InvalidArgument);
    assert!(empty.message().starts_with("organization_name:"), "{empty:?}");
    let weak = expect_code(app.tenancy.clone().sign_up(sign_up("Fine", "short")).await, Code::InvalidArgument);
    assert!(weak.message().starts_with("password:"), "{weak:?}");
    let details = tonic_types::StatusExt::get_error_details(&weak);
    let violation = &details.bad_request().expect("field violations").field_violations[0];
    assert_eq!(violation.field, "password");

    let malformed = app
        .tenancy
        .clone()
        .create_brand(bearer(
            &tenant.token,
            pb::CreateBrandRequest { brand: Some(brand("Bad", "not a domain")), request_id: String::new() },
        ))
        .await;
    assert!(expect_code(malformed, Code::InvalidArgument).message().starts_with("brand.domain:"));
    let negative = app
        .tenancy
        .clone()
        .list_brands(bearer(&tenant.token, pb::ListBrandsRequest { page_size: -1, ..Default::default() }))
        .await;
    assert!(expect_code(negative, Code::InvalidArgument).message().starts_with("page_size:"));
    let junk_token = app
        .tenancy
        .clone()
        .list_brands(bearer(&tenant.token, pb::ListBrandsRequest { page_token: "%%%".into(), ..Default::default() }))
        .await;
    assert!(expect_code(junk_token, Code::InvalidArgument).message().starts_with("page_token:"));
    let bad_mask = app
        .tenancy
        .clone()
        .update_brand(bearer(
            &tenant.token,
            pb::UpdateBrandRequest {
                brand: Some(pb::Brand { id: uuid::Uuid::new_v4().to_string(), ..Default::default() }),
                update_mask: mask(&["organization_id"]),
            },
        ))
        .await;
    assert!(expect_code(bad_mask, Code::InvalidArgument).message().starts_with("update_mask:"));
}

#[tokio::test]
async fn brands_page_in_name_order() {
    let app = spawn_app().await;
    let tenant = app.tenant("Pages").await;
    for (i, name) in ["Echo", "Alpha", "Delta", "Bravo", "Charlie"].iter().enumerate() {
        app.brand(&tenant.token, name, &format!("b{i}.pages.example")).await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .tenancy
            .clone()
            .list_brands(bearer(
                &tenant.token,
                pb::ListBrandsRequest { page_size: 2, page_token: token, show_archived: false },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.brands.len() <= 2);
        names.extend(page.brands.into_iter().map(|b| b.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names, ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]);
}
