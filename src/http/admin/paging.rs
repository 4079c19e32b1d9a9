//! Listing parameters on the wire: the strict query string (`limit`,
//! `cursor`, and the filters each listing names) and opaque cursors.
//!
//! A cursor is base64url of `<kind>1.<created_at in µs>.<id>`: the sort key
//! of the last row served. It carries no secret and grants nothing (the
//! caller is an admin either way); it is opaque so that clients do not build
//! one, and a cursor that does not decode, or belongs to the other listing,
//! is refused rather than read as the first page.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::DateTime;
use uuid::Uuid;

use crate::domain::admin::page_limit;
use crate::domain::error::DomainError;
use crate::domain::records::PageAfter;
use crate::http::extract::parse_form;

/// Longer than any cursor this server hands out.
const MAX_CURSOR: usize = 128;

/// Which listing a cursor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `/admin/v1/clients`.
    Clients,
    /// `/admin/v1/users`.
    Users,
}

impl Listing {
    fn tag(self) -> &'static str {
        match self {
            Self::Clients => "c1",
            Self::Users => "u1",
        }
    }
}

/// A listing's query, parsed strictly.
#[derive(Debug)]
pub struct ListQuery {
    /// Rows per page, within the bounds.
    pub limit: i64,
    /// From `cursor`: the sort key of the previous page's last row; `None`
    /// for the first page.
    pub after: Option<PageAfter<Uuid>>,
    /// The listing's filters (`email` for users), by name.
    pub filters: HashMap<String, String>,
}

/// Parses `query` for `listing`, which accepts the filters named in
/// `filters` besides `limit` and `cursor`.
///
/// # Errors
/// `InvalidRequest` for a repeated or unknown parameter, a bad limit or a
/// bad cursor.
pub fn parse_query(
    query: &str,
    listing: Listing,
    filters: &[&str],
) -> Result<ListQuery, DomainError> {
    let mut params = parse_form(query.as_bytes())
        .map_err(|_| DomainError::InvalidRequest("the query string is malformed"))?;
    let limit = params
        .remove("limit")
        .map(|raw| {
            raw.parse::<i64>()
                .map_err(|_| DomainError::InvalidRequest("limit must be between 1 and 200"))
        })
        .transpose()?;
    let limit = page_limit(limit)?;
    let after = params
        .remove("cursor")
        .map(|c| decode_cursor(&c, listing))
        .transpose()?;
    if params.keys().any(|k| !filters.contains(&k.as_str())) {
        return Err(DomainError::InvalidRequest("unknown query parameter"));
    }
    Ok(ListQuery {
        limit,
        after,
        filters: params,
    })
}

/// The cursor that continues `listing` after `key`.
pub fn encode_cursor(listing: Listing, key: PageAfter<Uuid>) -> String {
    let raw = format!(
        "{}.{}.{}",
        listing.tag(),
        key.created_at.timestamp_micros(),
        key.id
    );
    URL_SAFE_NO_PAD.encode(raw)
}

/// Reads a cursor of `listing`.
///
/// # Errors
/// `InvalidRequest` for anything this server did not hand out.
pub fn decode_cursor(cursor: &str, listing: Listing) -> Result<PageAfter<Uuid>, DomainError> {
    const BAD: DomainError = DomainError::InvalidRequest("the cursor is not valid");
    if cursor.len() > MAX_CURSOR {
        return Err(BAD);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| BAD)?;
    let text = String::from_utf8(bytes).map_err(|_| BAD)?;
    let mut parts = text.split('.');
    let (Some(tag), Some(micros), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };
    if tag != listing.tag() {
        return Err(BAD);
    }
    let created_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or(BAD)?;
    // Only the hyphenated form handed out: a cursor has one spelling.
    let id = Uuid::try_parse(id).map_err(|_| BAD)?;
    if id.hyphenated().to_string() != id_text(&text) {
        return Err(BAD);
    }
    Ok(PageAfter { created_at, id })
}

fn id_text(text: &str) -> &str {
    text.rsplit('.').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PageAfter<Uuid> {
        PageAfter {
            created_at: DateTime::from_timestamp_micros(1_800_000_000_123_456).expect("time"),
            id: Uuid::new_v4(),
        }
    }

    #[test]
    fn a_cursor_round_trips_within_its_listing_only() {
        let k = key();
        let c = encode_cursor(Listing::Users, k);
        assert_eq!(decode_cursor(&c, Listing::Users).ok(), Some(k));
        assert!(decode_cursor(&c, Listing::Clients).is_err());
    }

    #[test]
    fn anything_else_is_refused() {
        let good = encode_cursor(Listing::Clients, key());
        let bad = [
            String::new(),
            "not base64!".to_owned(),
            good[..good.len() - 3].to_owned(),
            format!("{good}AA"),
            URL_SAFE_NO_PAD.encode("c1.12.not-a-uuid"),
            URL_SAFE_NO_PAD.encode(format!("c1.x.{}", Uuid::new_v4())),
            URL_SAFE_NO_PAD.encode(format!("c1.1.{}.extra", Uuid::new_v4())),
            URL_SAFE_NO_PAD.encode(format!("c1.{}.{}", i64::MAX, Uuid::new_v4())),
            URL_SAFE_NO_PAD.encode(format!("c1.1.{}", Uuid::new_v4().simple())),
            "A".repeat(MAX_CURSOR + 1),
        ];
        for c in bad {
            assert!(decode_cursor(&c, Listing::Clients).is_err(), "{c}");
        }
    }

    #[test]
    fn queries_are_strict() {
        assert_eq!(
            parse_query("", Listing::Users, &["email"])
                .ok()
                .map(|q| q.limit),
            Some(50)
        );
        let q = parse_query("limit=3&email=Ab", Listing::Users, &["email"]).expect("ok");
        assert_eq!((q.limit, q.filters["email"].as_str()), (3, "Ab"));
        for bad in [
            "limit=0",
            "limit=201",
            "limit=x",
            "limit=1&limit=2",
            "email=a",
            "cursor=zz",
            "%ff=1",
        ] {
            assert!(parse_query(bad, Listing::Clients, &[]).is_err(), "{bad}");
        }
    }
}
