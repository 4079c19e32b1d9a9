//! The admin API's rules: who may call it, and keyset paging of clients and
//! users. Changes themselves go through the same lifecycle and account
//! methods the CLI calls, with the admin client as the actor.
//!
//! Only a client created with `--admin` can obtain `latchkey:admin`, and
//! only through client_credentials: a user's token can never carry it, so
//! phishing a user or stealing a browser session never yields the admin API.

use super::clients::{CreatedClient, NewClient};
use super::error::DomainError;
use super::types::{ClientId, ClientKind, GrantType, Scope, UserId};
use super::verify::VerifiedAccess;
use super::Services;
use crate::store::{ClientRecord, PageAfter, UserRecord};

/// The scope the admin API requires.
pub const ADMIN_SCOPE: &str = "latchkey:admin";

/// Rows per page when the caller names no limit.
pub const DEFAULT_PAGE: i64 = 50;

/// The most rows one page holds: bounds the work one request can ask for.
pub const MAX_PAGE: i64 = 200;

/// The longest email search accepted (RFC 5321 caps an address at 254).
const MAX_EMAIL_SEARCH: usize = 254;

/// The admin client behind a request, once its token has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminCaller {
    pub client_id: ClientId,
}

impl AdminCaller {
    /// The actor named in audit records (`cli` for the command line).
    pub fn actor(&self) -> String {
        format!("admin:{}", self.client_id)
    }
}

/// One page of a listing, and where the next one starts (`None` on the
/// last page).
#[derive(Debug, Clone)]
pub struct Page<T, I> {
    /// The rows, in `(created_at, id)` order.
    pub items: Vec<T>,
    /// The sort key of the last row, when more rows follow.
    pub next: Option<PageAfter<I>>,
}

/// Registration's rule for `--admin` and the admin scope: an admin client
/// is a confidential server using client_credentials, and no other client
/// may list `latchkey:admin` among its scopes.
///
/// # Errors
/// `InvalidRequest` for either combination.
pub(crate) fn check_admin(new: &NewClient) -> Result<(), DomainError> {
    if new.admin
        && (new.kind != ClientKind::Confidential
            || !new.grants.contains(&GrantType::ClientCredentials))
    {
        return Err(DomainError::InvalidRequest(
            "--admin needs a confidential client with the client_credentials grant",
        ));
    }
    if !new.admin && new.scopes.has(ADMIN_SCOPE) {
        return Err(DomainError::InvalidRequest(
            "the latchkey:admin scope needs a client created with --admin",
        ));
    }
    Ok(())
}

/// `new` with the admin scope added when it is an admin client, so
/// `--admin` alone is enough at registration.
pub(crate) fn with_admin_scope(mut new: NewClient) -> NewClient {
    if new.admin && !new.scopes.has(ADMIN_SCOPE) {
        let mut tokens = new.scopes.tokens().to_vec();
        tokens.push(ADMIN_SCOPE.to_owned());
        new.scopes = Scope::from_tokens(tokens);
    }
    new
}

/// What `client` may ask for at the token endpoint: its scopes, without
/// the admin scope unless this is client_credentials of an admin client.
/// Checked here again, not only at registration, so a row edited by hand
/// still cannot hand a user token the admin scope.
pub(crate) fn allowed_scope(client: &ClientRecord, client_credentials: bool) -> Scope {
    let admin = client_credentials && client.admin;
    Scope::from_tokens(
        client
            .scopes
            .iter()
            .filter(|s| admin || s.as_str() != ADMIN_SCOPE)
            .cloned()
            .collect(),
    )
}

/// The page size asked for, checked against the bounds.
///
/// # Errors
/// `InvalidRequest` outside 1..=`MAX_PAGE`.
pub fn page_limit(requested: Option<i64>) -> Result<i64, DomainError> {
    match requested {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(DomainError::InvalidRequest(
            "limit must be between 1 and 200",
        )),
    }
}

/// Cuts the `limit + 1` rows read down to `limit`, noting where the next
/// page starts when the extra row proved there is one.
fn paged<T, I>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> PageAfter<I>) -> Page<T, I> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(key) } else { None };
    Page { items: rows, next }
}

impl Services {
    /// The admin client behind `access`: a client_credentials token of an
    /// enabled admin client carrying `latchkey:admin`.
    ///
    /// # Errors
    /// `InsufficientScope` otherwise (RFC 6750 §3.1); store failures.
    pub async fn admin_caller(&self, access: &VerifiedAccess) -> Result<AdminCaller, DomainError> {
        const LACKS: &str = "the access token lacks the latchkey:admin scope";
        let has_scope = access.has_scope(ADMIN_SCOPE);
        if access.user_id.is_some() || !has_scope {
            return Err(DomainError::InsufficientScope(LACKS));
        }
        // The client as it is now (verification already refused a disabled
        // or deleted one), so the flag cannot be outlived by a token.
        match self.find_client(access.client_id).await? {
            Some(c) if c.admin => Ok(AdminCaller {
                client_id: access.client_id,
            }),
            _ => Err(DomainError::InsufficientScope(LACKS)),
        }
    }

    /// Registers a client on an admin's behalf; the audit record names them.
    /// The admin API cannot create admin clients: only the command line
    /// can, so a leaked admin token cannot mint lasting admin credentials.
    ///
    /// # Errors
    /// As `create_client`; `InvalidRequest` for `admin`.
    pub async fn create_client_by(
        &self,
        new: NewClient,
        by: &str,
    ) -> Result<CreatedClient, DomainError> {
        if new.admin {
            return Err(DomainError::InvalidRequest(
                "admin clients are created with the command line only",
            ));
        }
        let created = self.new_client_record(new, ClientId::new_random())?;
        self.store.insert_client(&created.client).await?;
        self.client_registered_by(&created.client, Some(by)).await?;
        Ok(created)
    }

    /// A page of clients (disabled ones too) in `(created_at, id)` order.
    ///
    /// # Errors
    /// Store failures.
    pub async fn page_clients(
        &self,
        after: Option<PageAfter<ClientId>>,
        limit: i64,
    ) -> Result<Page<ClientRecord, ClientId>, DomainError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = self.store.page_clients(after, limit + 1).await?;
        Ok(paged(rows, limit, |c| PageAfter {
            created_at: c.created_at,
            id: c.id,
        }))
    }

    /// A page of users in `(created_at, id)` order, only those whose email
    /// starts with `email_prefix` when given (compared as emails are
    /// stored: lower case).
    ///
    /// # Errors
    /// `InvalidRequest` for an over-long search; store failures.
    pub async fn page_users(
        &self,
        after: Option<PageAfter<UserId>>,
        email_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Page<UserRecord, UserId>, DomainError> {
        let prefix = email_prefix.map(|p| p.trim().to_lowercase());
        if prefix.as_ref().is_some_and(|p| p.len() > MAX_EMAIL_SEARCH) {
            return Err(DomainError::InvalidRequest("the email search is too long"));
        }
        let prefix = prefix.filter(|p| !p.is_empty());
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = self
            .store
            .page_users(after, prefix.as_deref(), limit + 1)
            .await?;
        Ok(paged(rows, limit, |u| PageAfter {
            created_at: u.created_at,
            id: u.id,
        }))
    }

    /// The user `id`, disabled or not.
    ///
    /// # Errors
    /// `NotFound`; store failures.
    pub async fn get_user(&self, id: UserId) -> Result<UserRecord, DomainError> {
        self.store.find_user(id).await?.ok_or(DomainError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_bounds_are_refused() {
        assert_eq!(page_limit(None).ok(), Some(DEFAULT_PAGE));
        assert_eq!(page_limit(Some(1)).ok(), Some(1));
        assert_eq!(page_limit(Some(MAX_PAGE)).ok(), Some(MAX_PAGE));
        for bad in [0, -1, MAX_PAGE + 1, i64::MAX, i64::MIN] {
            assert!(page_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_page_notes_the_next_start_only_when_more_rows_follow() {
        let key = |n: &i64| PageAfter {
            created_at: chrono::DateTime::from_timestamp(*n, 0).unwrap_or_default(),
            id: *n,
        };
        let full = paged(vec![1, 2, 3], 2, key);
        assert_eq!(full.items, vec![1, 2]);
        assert_eq!(full.next.map(|k| k.id), Some(2));
        let last = paged(vec![1, 2], 2, key);
        assert_eq!(last.items, vec![1, 2]);
        assert!(last.next.is_none());
    }
}
