//! Who is calling the admin API: an access token in the `Authorization`
//! header (Bearer, or DPoP with its proof for a bound token), verified as
//! the account API verifies one, of an admin client, carrying
//! `latchkey:admin`.

use actix_web::HttpRequest;

use crate::domain::admin::AdminCaller;
use crate::domain::error::DomainError;
use crate::domain::Services;
use crate::http::error::ApiError;
use crate::http::extract::presented_token;
use crate::http::userinfo::authenticate;

/// The admin client behind `req`.
///
/// Cookies never authenticate here: only a header a page on another origin
/// cannot attach, so no browser can be ridden into the admin API.
///
/// # Errors
/// 401 without a token or with a bad, expired or revoked one (or one of a
/// disabled client); 403 `insufficient_scope` without the admin scope.
pub async fn admin_caller(req: &HttpRequest, services: &Services) -> Result<AdminCaller, ApiError> {
    if presented_token(req).is_none() {
        return Err(DomainError::MissingToken.into());
    }
    let access = authenticate(req, services).await?;
    Ok(services.admin_caller(&access).await?)
}
