//! The service starts on a real PostgreSQL, migrates it once however many instances start,
//! and serves its OpenAPI document.

mod common;

use common::Cloud;

#[tokio::test]
async fn openapi_document_is_served_and_lists_the_routes() {
    let cloud = Cloud::start().await;
    let doc = cloud
        .api
        .get("/api/v1/openapi.json", None)
        .await
        .expect(200);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/signup",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/tenants/{tenant_id}/users/{user_id}",
        "/api/v1/tenants/{tenant_id}/venues/{venue_id}",
        "/api/v1/tenants/{tenant_id}/venues/{venue_id}/enrolment-codes",
        "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players/{player_id}",
        "/api/v1/tenants/{tenant_id}/nodes",
        "/api/v1/releases",
        "/api/v1/players",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the document");
    }
    cloud.stop().await;
}

#[tokio::test]
async fn health_reports_the_database_and_unknown_routes_answer_in_the_error_shape() {
    let cloud = Cloud::start().await;
    let health = cloud.api.get("/healthz", None).await.expect(200);
    assert_eq!(health["database"], true);
    cloud
        .api
        .get("/api/v1/no-such-thing", None)
        .await
        .expect_error(404, "not_found");
    cloud.stop().await;
}

#[tokio::test]
async fn instances_starting_together_apply_each_migration_once() {
    let pg = tokio::task::spawn_blocking(pvm_testpeers::Postgres::start)
        .await
        .unwrap()
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..4 {
        let url = pg.url();
        runs.push(tokio::spawn(async move {
            let pool = pvm_cloud::db::pool(&url, 1).unwrap();
            pvm_cloud::db::migrate(&pool).await.unwrap()
        }));
    }
    let mut applied = Vec::new();
    for run in runs {
        applied.extend(run.await.unwrap());
    }
    applied.sort();
    let expected: Vec<i64> = pvm_cloud::db::all_migrations()
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(
        applied, expected,
        "each migration applied by exactly one instance"
    );
    let recorded = pg
        .psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations")
        .unwrap();
    let expected: Vec<String> = expected.iter().map(i64::to_string).collect();
    assert_eq!(recorded, expected.join(","));
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
