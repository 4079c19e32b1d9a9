//! `latchkey audit list [--user ID] [--since T] [--limit N]`: the audit log,
//! newest first, as text or `--json`.

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use clap::Subcommand;

use crate::domain::types::UserId;
use crate::domain::Services;
use crate::store::AuditEvent;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List security events, newest first.
    List {
        /// Only events about this user (a UUID).
        #[arg(long)]
        user: Option<String>,
        /// Only events at or after T: an RFC 3339 time
        /// (2026-11-26T09:00:00Z), a date (2026-11-26, midnight UTC), or an
        /// age such as 30m, 24h or 7d.
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// How many of the newest events to show (at least 1).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

/// Parses `--since`: RFC 3339, a date, or an age before `now`.
///
/// # Errors
/// None of the three forms.
pub fn parse_since(raw: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let age = parse_age(raw).with_context(|| {
        format!(
            "--since {raw:?}: expected an RFC 3339 time, a date (YYYY-MM-DD) or an age like 24h"
        )
    })?;
    Ok(now - age)
}

fn parse_age(raw: &str) -> Option<Duration> {
    let unit = raw.chars().last()?;
    let n: i64 = raw[..raw.len() - unit.len_utf8()].parse().ok()?;
    if n < 0 {
        return None;
    }
    match unit {
        's' => Some(Duration::seconds(n)),
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        _ => None,
    }
}

fn event_json(e: &AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "at": e.at,
        "kind": e.kind,
        "user_id": e.user_id.map(|u| u.to_string()),
        "client_id": e.client_id.map(|c| c.to_string()),
        "session_id": e.session_id.map(|s| s.to_string()),
        "address": e.address,
        "reason": e.reason,
    })
}

fn event_line(e: &AuditEvent) -> String {
    let mut line = format!(
        "{}  {:<22}",
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        e.kind
    );
    let fields = [
        ("user", e.user_id.map(|u| u.to_string())),
        ("client", e.client_id.map(|c| c.to_string())),
        ("session", e.session_id.map(|s| s.to_string())),
        ("address", e.address.clone()),
        ("reason", e.reason.as_ref().map(|r| format!("{r:?}"))),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            line.push_str(&format!(" {name}={v}"));
        }
    }
    line
}

/// Runs an audit command, printing one line per event, or one JSON object
/// with `json`.
///
/// # Errors
/// Invalid arguments or store failures.
pub async fn run(cmd: AuditCommand, services: &Services, json: bool) -> anyhow::Result<()> {
    let AuditCommand::List { user, since, limit } = cmd;
    let user = user
        .as_deref()
        .map(|u| UserId::parse(u).context("--user is a user id (a UUID)"))
        .transpose()?;
    let since = since
        .as_deref()
        .map(|t| parse_since(t, services.now()))
        .transpose()?;
    let events = services
        .list_audit(user, since, limit)
        .await
        .context("reading the audit log")?;
    if json {
        let list: Vec<_> = events.iter().map(event_json).collect();
        println!("{}", serde_json::json!({ "events": list }));
    } else {
        for e in &events {
            println!("{}", event_line(e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time")
    }

    #[test]
    fn since_accepts_a_time_a_date_and_an_age() {
        let t = parse_since("2026-11-26T09:30:00+01:00", now()).expect("rfc3339");
        assert_eq!(t.to_rfc3339(), "2026-11-26T08:30:00+00:00");
        let d = parse_since("2026-11-26", now()).expect("date");
        assert_eq!(d.to_rfc3339(), "2026-11-26T00:00:00+00:00");
        assert_eq!(
            parse_since("24h", now()).expect("age"),
            now() - Duration::hours(24)
        );
        assert_eq!(
            parse_since("7d", now()).expect("age"),
            now() - Duration::days(7)
        );
        assert_eq!(
            parse_since("90s", now()).expect("age"),
            now() - Duration::seconds(90)
        );
    }

    #[test]
    fn since_refuses_anything_else() {
        for bad in ["", "yesterday", "-5m", "5w", "h", "99999999999999999d", "é"] {
            assert!(parse_since(bad, now()).is_err(), "{bad:?}");
        }
    }
}
