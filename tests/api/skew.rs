//! Grace replay and reuse do not depend on which instance answers: two
//! instances on one database whose clocks disagree by more than the grace
//! period still forgive two racing tabs, and still refuse a late replay.
//! Grace is measured by the database's clock, which stamps each rotation.

use std::time::Duration as StdDuration;

use chrono::Duration;
use latchkey::clock::TestClock;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{new_shared, spawn_instance_with_clock, str_field, Backend, TestApp};

/// How far the second instance's clock is off; the default grace is 10 s.
const SKEW_SECS: i64 = 20;

/// Two instances on one database, the second one's clock `skew` away.
async fn skewed_pair(
    backend: Backend,
    skew: Duration,
    grace_secs: i64,
) -> Option<(TestApp, TestApp)> {
    let shared = new_shared(backend).await?;
    let off = TestClock::new();
    off.advance(skew);
    let grace =
        move |s: &mut latchkey::config::RawSettings| s.tokens.refresh_grace_secs = grace_secs;
    let a = spawn_instance_with_clock(&shared, TestClock::new(), grace).await;
    let b = spawn_instance_with_clock(&shared, off, grace).await;
    Some((a, b))
}

async fn refreshed(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200, "refresh refused");
    res.json().await.expect("json")
}

async fn racing_tabs_on_skewed_instances_share_one_rotation(backend: Backend) {
    let Some((a, b)) = skewed_pair(backend, Duration::seconds(SKEW_SECS), 10).await else {
        return;
    };
    let (client, _, login) = a.logged_in_user(None).await;
    let rt0 = str_field(&login, "refresh_token").to_owned();

    // One tab refreshes on A; the other, a moment later, on B, whose clock
    // is ahead by twice the grace period.
    let first = refreshed(a.refresh(&client, &rt0).await).await;
    let replay = refreshed(b.refresh(&client, &rt0).await).await;
    assert_eq!(replay["refresh_token"], first["refresh_token"]);

    // And the other way round, the rotation on the instance ahead.
    let rt1 = str_field(&first, "refresh_token").to_owned();
    let second = refreshed(b.refresh(&client, &rt1).await).await;
    let replay = refreshed(a.refresh(&client, &rt1).await).await;
    assert_eq!(replay["refresh_token"], second["refresh_token"]);

    // Tabs racing on both instances at once all get the same new token.
    let rt2 = str_field(&second, "refresh_token").to_owned();
    let racing = (0..8).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.refresh(&client, &rt2)
    });
    let answers = futures_util::future::join_all(racing).await;
    let mut tokens = Vec::new();
    for res in answers {
        tokens.push(str_field(&refreshed(res).await, "refresh_token").to_owned());
    }
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "{tokens:?}");

    // The session lives on.
    refreshed(a.refresh(&client, &tokens[0]).await).await;
}
both_backends!(racing_tabs_on_skewed_instances_share_one_rotation);

async fn a_late_replay_is_reuse_on_an_instance_whose_clock_lags(backend: Backend) {
    let Some((a, b)) = skewed_pair(backend, Duration::seconds(-SKEW_SECS), 1).await else {
        return;
    };
    let (client, _, login) = a.logged_in_user(None).await;
    let rt0 = str_field(&login, "refresh_token");
    let first = refreshed(a.refresh(&client, rt0).await).await;

    // Grace is measured by the database's clock, which no test clock moves:
    // this waits out a one-second grace period in real time.
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    let res = b.refresh(&client, rt0).await;

    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.expect("json");
    assert!(
        str_field(&err, "error_description").contains("already used"),
        "{err}"
    );
    let res = a.refresh(&client, str_field(&first, "refresh_token")).await;
    assert_eq!(res.status(), 400, "reuse revoked the session");
}
both_backends!(a_late_replay_is_reuse_on_an_instance_whose_clock_lags);
