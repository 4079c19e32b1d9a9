//! `latchkey clients create`.

use clap::{Subcommand, ValueEnum};

use crate::domain::clients::NewClient;
use crate::domain::types::{ClientKind, GrantType, Scope};
use crate::domain::Services;

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client. Confidential clients get a secret, shown once.
    Create(CreateArgs),
}

/// Whether the client can keep a secret.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Mobile and browser apps.
    Public,
    /// Servers.
    Confidential,
}

/// `clients create` arguments.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// public or confidential.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Allowed grants, comma-separated: authorization_code, password, refresh_token,
    /// client_credentials.
    #[arg(long, value_delimiter = ',', required = true)]
    pub grants: Vec<String>,
    /// Allowed scopes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "openid,email")]
    pub scopes: Vec<String>,
    /// `aud` of this client's access tokens (default: tokens.default_audience).
    #[arg(long)]
    pub audience: Option<String>,
    /// Deliver tokens in HttpOnly cookies (browser apps).
    #[arg(long)]
    pub cookie_mode: bool,
    /// Allowed browser origin (repeatable).
    #[arg(long = "origin")]
    pub origins: Vec<String>,
    /// Redirect URI for the authorization code flow (repeatable): https,
    /// loopback http (127.0.0.1 or [::1], any port), or a private-use scheme
    /// such as com.example.app:/callback.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return the browser (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// The operator's own app: skips the consent page.
    #[arg(long)]
    pub first_party: bool,
    /// May introspect every token, not only its own and those for its
    /// audience (confidential clients only).
    #[arg(long)]
    pub introspect: bool,
    /// Refuse every token request without a DPoP proof (RFC 9449), so every
    /// access token is bound to the client's key.
    #[arg(long)]
    pub require_dpop: bool,
}

/// Runs a client command.
///
/// # Errors
/// Invalid arguments or store failures.
pub async fn run(cmd: ClientsCommand, services: &Services, json: bool) -> anyhow::Result<()> {
    let ClientsCommand::Create(args) = cmd;
    let grants = args
        .grants
        .iter()
        .map(|g| GrantType::parse(g.trim()).ok_or_else(|| anyhow::anyhow!("unknown grant {g:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scopes =
        Scope::parse(&args.scopes.join(" ")).ok_or_else(|| anyhow::anyhow!("invalid scope"))?;
    let kind = match args.kind {
        Kind::Public => ClientKind::Public,
        Kind::Confidential => ClientKind::Confidential,
    };
    let created = services
        .create_client(NewClient {
            name: args.name,
            kind,
            grants,
            scopes,
            audience: args.audience,
            cookie_mode: args.cookie_mode,
            origins: args.origins,
            redirect_uris: args.redirect_uris,
            post_logout_redirect_uris: args.post_logout_redirect_uris,
            first_party: args.first_party,
            introspect: args.introspect,
            require_dpop: args.require_dpop,
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = &created.client;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "client_id": c.id.to_string(),
                "client_secret": created.secret,
                "name": c.name,
                "kind": c.kind.as_str(),
                "grants": c.grants,
                "scopes": c.scopes,
                "audience": services.audience_for(c),
                "cookie_mode": c.cookie_mode,
                "origins": c.origins,
                "redirect_uris": c.redirect_uris,
                "post_logout_redirect_uris": c.post_logout_redirect_uris,
                "first_party": c.first_party,
                "introspect": c.introspect,
                "require_dpop": c.require_dpop,
            })
        );
    } else {
        println!("client_id:     {}", c.id);
        if let Some(secret) = &created.secret {
            println!("client_secret: {secret}");
            println!("(the secret is shown once; store it now)");
        }
    }
    Ok(())
}
