//! Compile-time check: the futures services spawn are `Send` for a concrete projection (sqlx
//! executors easily make them `Send` only for one lifetime, which breaks `tokio::spawn`).

use sentra_event_store::{Cursor, EventMetadata, EventStore, Feed, ProjectionRunner, save_checkpoint_in};
fn is_send<T: Send>(_: T) {}
#[allow(dead_code)]
fn checks(
    store: &'static EventStore,
    runner: &'static ProjectionRunner<crate::projection::Balances>,
    feed: &'static Feed,
    conn: &'static mut sqlx::PgConnection,
) {
    is_send(runner.try_activate());
    is_send(runner.lag());
    is_send(feed.try_lead("x"));
    is_send(feed.read_batch(Cursor::START, 1));
    is_send(store.append(uuid::Uuid::nil(), "", "", 0, vec![], &EventMetadata::default()));
    is_send(save_checkpoint_in(conn, "x", Cursor::START));
}
#[allow(dead_code)]
async fn checks_catch_up(runner: &'static ProjectionRunner<crate::projection::Balances>) {
    let mut a = runner.try_activate().await.unwrap().unwrap();
    is_send(a.catch_up());
}
#[allow(dead_code)]
async fn checks_rebuild(runner: &'static ProjectionRunner<crate::projection::Balances>) {
    let mut a = runner.try_activate().await.unwrap().unwrap();
    is_send(a.rebuild());
}
