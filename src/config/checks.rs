//! Validation helpers: ranges, syntax, and the checks of whole sections.

use super::*;

pub(super) fn parse_metrics_listen(raw: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse() {
        Ok(addr) => Ok(Some(addr)),
        Err(_) => invalid(
            "metrics.listen",
            "must be empty or an IP address and port, e.g. 127.0.0.1:9090",
        ),
    }
}

pub(super) fn invalid<T>(key: &'static str, problem: &str) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid {
        key,
        problem: problem.to_owned(),
    })
}

/// Parses `text` as TOML first, because the `config` crate reports some
/// syntax errors (an integer beyond 64 bits) without saying where. The error
/// names the line and its key but never echoes a value, which may be a
/// database password.
pub(super) fn check_syntax(text: &str) -> Result<(), ConfigError> {
    let Err(err) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let at = err.span().map_or(0, |s| s.start);
    let line_no = text.get(..at).unwrap_or(text).matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let place = match line.split_once('=').map(|(k, _)| k.trim()) {
        Some(key) if !key.is_empty() && key.len() <= 64 => {
            format!("line {line_no}, key `{key}`")
        }
        _ => format!("line {line_no}"),
    };
    Err(ConfigError::Syntax(format!(
        "TOML syntax error at {place}: {}",
        err.message()
    )))
}

/// The largest count or duration any setting takes: ten years in seconds.
/// Bounding every setting keeps `now + setting` and `Duration::seconds` far
/// from overflow, so no accepted configuration can make a request panic.
pub const MAX_SETTING: i64 = 315_360_000;

pub(super) fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(super) fn check_range(
    key: &'static str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        invalid(key, &format!("must be between {min} and {max}"))
    }
}

pub(super) fn check_positive(key: &'static str, value: i64) -> Result<(), ConfigError> {
    check_range(key, value, 1, MAX_SETTING)
}

pub(super) fn check_non_negative(key: &'static str, value: i64) -> Result<(), ConfigError> {
    check_range(key, value, 0, MAX_SETTING)
}

/// argon2id at least at OWASP's minimum (m=19456 KiB, t=2, p=1), and at most
/// 1 GiB per hash, so a typo cannot make start-up allocate the machine away.
pub(super) fn check_passwords(p: &PasswordSettings) -> Result<(), ConfigError> {
    check_range(
        "passwords.memory_kib",
        i64::from(p.memory_kib),
        19456,
        i64::from(crate::domain::passwords::MAX_MEMORY_KIB),
    )?;
    check_range("passwords.iterations", i64::from(p.iterations), 2, 64)?;
    check_range("passwords.parallelism", i64::from(p.parallelism), 1, 64)?;
    check_range(
        "passwords.max_concurrent_hashes",
        saturate(p.max_concurrent_hashes as u64),
        0,
        1024,
    )?;
    check_positive("passwords.queue_timeout_ms", saturate(p.queue_timeout_ms))
}

pub(super) fn check_throttle(t: &ThrottleSettings) -> Result<(), ConfigError> {
    check_positive("throttle.account_max_failures", t.account_max_failures)?;
    check_positive("throttle.account_window_secs", t.account_window_secs)?;
    check_positive("throttle.address_max_failures", t.address_max_failures)?;
    check_positive("throttle.address_window_secs", t.address_window_secs)?;
    check_positive("throttle.signup_max_per_address", t.signup_max_per_address)?;
    check_positive("throttle.signup_window_secs", t.signup_window_secs)?;
    check_positive(
        "throttle.account_max_lockout_secs",
        t.account_max_lockout_secs,
    )?;
    if t.account_max_lockout_secs < t.account_window_secs {
        return invalid(
            "throttle.account_max_lockout_secs",
            "must be at least throttle.account_window_secs",
        );
    }
    Ok(())
}

/// The `[email]` section: the From address parses, plain-text SMTP only to a
/// loopback host (credentials and reset links must not cross a network in
/// clear), and every duration and count in range.
pub(super) fn check_email(m: &EmailSettings) -> Result<(), ConfigError> {
    if m.from.parse::<lettre::message::Mailbox>().is_err() {
        return invalid(
            "email.from",
            "must be an address such as \"Name <no-reply@example.com>\"",
        );
    }
    if m.transport == MailTransport::Smtp {
        if m.smtp_host.trim().is_empty() {
            return invalid("email.smtp_host", "must name the SMTP server");
        }
        if m.smtp_tls == SmtpTls::None && !is_loopback_host(&m.smtp_host) {
            return invalid(
                "email.smtp_tls",
                "\"none\" is allowed only when email.smtp_host is a loopback address",
            );
        }
    }
    if m.product_name.trim().is_empty() {
        return invalid("email.product_name", "must not be empty");
    }
    check_range(
        "email.smtp_timeout_secs",
        saturate(m.smtp_timeout_secs),
        1,
        600,
    )?;
    check_positive("email.verify_ttl_secs", m.verify_ttl_secs)?;
    check_positive("email.reset_ttl_secs", m.reset_ttl_secs)?;
    check_range(
        "email.poll_interval_ms",
        saturate(m.poll_interval_ms),
        10,
        3_600_000,
    )?;
    check_positive("email.retry_base_secs", m.retry_base_secs)?;
    check_positive("email.retry_max_secs", m.retry_max_secs)?;
    check_range("email.max_attempts", m.max_attempts, 1, 100)?;
    check_positive("email.max_requests_per_email", m.max_requests_per_email)?;
    check_positive("email.max_requests_per_client", m.max_requests_per_client)?;
    check_positive("email.request_window_secs", m.request_window_secs)
}

/// `localhost`, or an IP address in 127.0.0.0/8 or `::1`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
