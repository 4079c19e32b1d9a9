//! Consent: first-party clients skip it; for any other client the user
//! allows the requested scopes once, and the grant is remembered per user,
//! client and scopes until the user withdraws it through the account API.

use super::AuthorizationRequest;
use crate::domain::error::DomainError;
use crate::domain::types::{ClientId, Scope, UserId};
use crate::domain::Services;
use crate::store::AuditKind;
use crate::store::{AuditEvent, BrowserSessionRecord, ConsentRecord, UserRecord};

impl Services {
    /// Whether `user` already allowed everything `req` asks for (and the
    /// request does not insist on asking again with `prompt=consent`).
    ///
    /// # Errors
    /// Store failures.
    pub async fn has_consent(
        &self,
        req: &AuthorizationRequest,
        user: &UserRecord,
    ) -> Result<bool, DomainError> {
        if req.client.first_party {
            return Ok(true);
        }
        if req.prompt.consent {
            return Ok(false);
        }
        let Some(c) = self.store.find_consent(user.id, req.client.id).await? else {
            return Ok(false);
        };
        Ok(Scope::parse(&c.scope).is_some_and(|granted| req.scope.is_subset_of(&granted)))
    }

    /// Remembers that `user` allowed `req`'s scopes (together with what they
    /// allowed this client before).
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_consent(
        &self,
        req: &AuthorizationRequest,
        user: &UserRecord,
    ) -> Result<(), DomainError> {
        let mut tokens = req.scope.tokens().to_vec();
        if let Some(prev) = self.store.find_consent(user.id, req.client.id).await? {
            tokens.extend(prev.scope.split(' ').map(str::to_owned));
        }
        let now = self.now();
        self.store
            .upsert_consent(&ConsentRecord {
                user_id: user.id,
                client_id: req.client.id,
                scope: Scope::parse(&tokens.join(" "))
                    .unwrap_or_else(|| req.scope.clone())
                    .to_string(),
                granted_at: now,
            })
            .await
            .map_err(super::client_gone)?;
        let ev = AuditEvent::new(AuditKind::ConsentGranted, now)
            .user(user.id)
            .client(req.client.id)
            .reason(req.scope.to_string());
        self.insert_audit(&ev).await?;
        Ok(())
    }

    /// The user allowed `req` on the consent page: remember it and issue
    /// the code. `None` when the session's user is gone or disabled.
    ///
    /// # Errors
    /// Store failures; no randomness.
    pub async fn consent_and_issue(
        &self,
        req: &AuthorizationRequest,
        session: &BrowserSessionRecord,
    ) -> Result<Option<String>, DomainError> {
        let Some(user) = self
            .store
            .find_user(session.user_id)
            .await?
            .filter(|u| !u.disabled)
        else {
            return Ok(None);
        };
        self.record_consent(req, &user).await?;
        Ok(Some(self.issue_code(req, &user, session).await?))
    }

    /// The user's remembered consents.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_consents(&self, user: UserId) -> Result<Vec<ConsentRecord>, DomainError> {
        Ok(self.store.list_consents(user).await?)
    }

    /// Withdraws the user's consent to `client` and ends the user's sessions
    /// of that client, in one transaction.
    ///
    /// # Errors
    /// `NotFound` when there was no consent; store failures.
    pub async fn withdraw_consent(
        &self,
        user: UserId,
        client: ClientId,
    ) -> Result<(), DomainError> {
        let ev = AuditEvent::new(AuditKind::ConsentWithdrawn, self.now())
            .user(user)
            .client(client)
            .reason("by the user, through the account API");
        if self.store.delete_consent(user, client, &ev).await? {
            Ok(())
        } else {
            Err(DomainError::NotFound)
        }
    }
}
