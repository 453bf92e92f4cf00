//! The session loop's core on PostgreSQL: the same tests as on SQLite (prompt and events in
//! order, two clients and a reconnect, stop and queue, pause and resume, den killed mid-turn),
//! each on a fresh database of the server `DEN_TEST_DATABASE_URL` names. The rest of the e2e
//! suite runs on SQLite only, to keep the suite's time in bounds: what differs between the
//! databases is the store, which its own contract suite covers on both.

use crate::harness::Database;
use crate::{lifecycle, turns};

#[tokio::test]
async fn a_prompt_writes_a_file_and_its_events_arrive_in_order() {
    turns::prompt_writes_a_file(Database::Postgres).await;
}

#[tokio::test]
async fn two_clients_see_the_same_events_and_a_reconnecting_client_gets_exactly_the_rest() {
    turns::two_clients_and_a_reconnect(Database::Postgres).await;
}

#[tokio::test]
async fn a_running_turn_can_be_stopped_and_a_queued_prompt_runs_after_it() {
    turns::stop_then_queued_prompt(Database::Postgres).await;
}

#[tokio::test]
async fn pause_and_resume_continue_the_same_conversation() {
    lifecycle::pause_and_resume(Database::Postgres).await;
}

#[tokio::test]
async fn den_killed_mid_turn_keeps_history_and_the_next_prompt_works() {
    lifecycle::den_killed_mid_turn(Database::Postgres).await;
}
