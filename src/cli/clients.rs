//! `latchkey clients create | list | show | update | disable | enable |
//! delete | rotate-secret`. Every change is audited with the actor `cli`.

use std::path::PathBuf;

use anyhow::Context;
use chrono::Duration;
use clap::{Subcommand, ValueEnum};

use super::print;
use crate::domain::client_lifecycle::{ClientChanges, MAX_PAGE};
use crate::domain::clients::NewClient;
use crate::domain::types::{ClientId, ClientKind, GrantType, Scope};
use crate::domain::Services;
use crate::store::{ClientRecord, KeySource};

/// The actor named in the audit records of these commands.
const ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client. Confidential clients get a secret, shown once.
    Create(CreateArgs),
    /// List every client, disabled ones too.
    List,
    /// Show one client (never its secret).
    Show {
        /// The client's id.
        id: String,
    },
    /// Change a client's settings; lists given replace the whole list.
    Update(UpdateArgs),
    /// Suspend a client: every grant, refresh, introspection and revocation
    /// call of it is refused and its access tokens are inactive until it is
    /// enabled again.
    Disable {
        /// The client's id.
        id: String,
    },
    /// Undo `disable`.
    Enable {
        /// The client's id.
        id: String,
    },
    /// Remove a client and every session of it.
    Delete {
        /// The client's id.
        id: String,
    },
    /// Give a confidential client a new secret (shown once); the old one
    /// keeps working for the overlap.
    RotateSecret {
        /// The client's id.
        id: String,
        /// How long the old secret keeps working: `0` (at once, after a
        /// leak), or a number with s, m, h or d (default:
        /// clients.secret_overlap_secs, 24h).
        #[arg(long)]
        overlap: Option<String>,
    },
}

/// Whether the client can keep a secret.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Mobile and browser apps.
    Public,
    /// Server-side apps that can keep a secret or a private key.
    Confidential,
}

/// `clients create` arguments.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The name users see on the login, consent and logout pages.
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
    /// May call the admin API: obtains the latchkey:admin scope through
    /// client_credentials (a confidential client; only this flag grants it).
    #[arg(long)]
    pub admin: bool,
    /// How a confidential client authenticates: client_secret (a secret,
    /// shown once) or private_key_jwt (an assertion signed with its own key,
    /// RFC 7523; needs --jwks-uri or --jwk, and gets no secret).
    #[arg(long, value_enum, default_value = "client_secret")]
    pub auth_method: AuthMethod,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// How a confidential client authenticates at the token, introspection and
/// revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A secret, in the Basic header or the body.
    ClientSecret,
    /// A JWT signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
}

/// Where a `private_key_jwt` client's public keys come from.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// The client's JWKS URL, fetched by latchkey (https; http only to a
    /// loopback host). Only an operator registers one: latchkey will send
    /// requests to it.
    #[arg(long, conflicts_with = "jwk")]
    pub jwks_uri: Option<String>,
    /// A file holding the client's public JWK or JWKS (never a private key).
    #[arg(long)]
    pub jwk: Option<PathBuf>,
}

/// `clients update` arguments: only what is given changes.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The client's id.
    pub id: String,
    /// The name users see on the login, consent and logout pages.
    #[arg(long)]
    pub name: Option<String>,
    /// Allowed grants, comma-separated (replaces the list).
    #[arg(long, value_delimiter = ',')]
    pub grants: Option<Vec<String>>,
    /// Allowed scopes, comma-separated (replaces the list).
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// `aud` of its access tokens; an empty value returns to
    /// tokens.default_audience.
    #[arg(long)]
    pub audience: Option<String>,
    /// Deliver tokens in HttpOnly cookies.
    #[arg(long)]
    pub cookie_mode: Option<bool>,
    /// Allowed browser origin (repeatable; replaces the list).
    #[arg(long = "origin")]
    pub origins: Option<Vec<String>>,
    /// Remove every allowed origin.
    #[arg(long, conflicts_with = "origins")]
    pub no_origins: bool,
    /// Redirect URI (repeatable; replaces the list).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Option<Vec<String>>,
    /// Post-logout redirect URI (repeatable; replaces the list).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Skip the consent page (true or false).
    #[arg(long)]
    pub first_party: Option<bool>,
    /// May introspect every token (true or false).
    #[arg(long)]
    pub introspect: Option<bool>,
    /// Refuse token requests without a DPoP proof (true or false).
    #[arg(long)]
    pub require_dpop: Option<bool>,
    /// A private_key_jwt client's new keys.
    #[command(flatten)]
    pub keys: KeyArgs,
}

fn client_id(raw: &str) -> anyhow::Result<ClientId> {
    ClientId::parse(raw).context("a client id is a UUID")
}

fn grants(raw: &[String]) -> anyhow::Result<Vec<GrantType>> {
    raw.iter()
        .map(|g| GrantType::parse(g.trim()).ok_or_else(|| anyhow::anyhow!("unknown grant {g:?}")))
        .collect()
}

fn scopes(raw: &[String]) -> anyhow::Result<Scope> {
    Scope::parse(&raw.join(" ")).ok_or_else(|| anyhow::anyhow!("invalid scope"))
}

/// `0`, or a whole number followed by `s`, `m`, `h` or `d`.
///
/// # Errors
/// Anything else, or more than 365 days.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, ""),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| "a duration is 0 or a number with s, m, h or d, e.g. 24h".to_owned())?;
    let secs = match unit {
        "" if n == 0 => 0,
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err("a duration is 0 or a number with s, m, h or d, e.g. 24h".to_owned()),
    };
    if secs > 365 * 86_400 {
        return Err("a duration is at most 365d".to_owned());
    }
    Ok(Duration::seconds(secs))
}

/// A client as the CLI (and scripts) see it: never a secret or a digest.
pub fn client_json(services: &Services, c: &ClientRecord) -> serde_json::Value {
    serde_json::json!({
        "client_id": c.id.to_string(),
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
        "admin": c.admin,
        "created_at": c.created_at.to_rfc3339(),
        "disabled": c.disabled_at.is_some(),
        "disabled_at": c.disabled_at.map(|t| t.to_rfc3339()),
        "previous_secret_valid_until": c.previous_secret_expires_at.map(|t| t.to_rfc3339()),
        "auth_method": c.auth_method(),
        "jwks_uri": match &c.key_source {
            Some(KeySource::JwksUri(u)) => Some(u.as_str()),
            _ => None,
        },
        // Public keys only: registration refuses anything else.
        "jwks": match &c.key_source {
            Some(KeySource::Jwks(j)) => serde_json::from_str::<serde_json::Value>(j).ok(),
            _ => None,
        },
    })
}

fn client_text(c: &ClientRecord) -> String {
    format!(
        "{}  {:<12}  {}{}",
        c.id,
        c.kind.as_str(),
        c.name,
        if c.disabled_at.is_some() {
            "  (disabled)"
        } else {
            ""
        }
    )
}

/// Runs a client command and prints its result, as JSON with `json`.
///
/// # Errors
/// Invalid arguments or store failures.
pub async fn run(cmd: ClientsCommand, services: &Services, json: bool) -> anyhow::Result<()> {
    match cmd {
        ClientsCommand::Create(args) => create(args, services, json).await,
        ClientsCommand::List => list(services, json).await,
        ClientsCommand::Show { id } => {
            let c = services.get_client(client_id(&id)?).await?;
            let value = client_json(services, &c);
            let text = serde_json::to_string_pretty(&value)?;
            print(json, &value, &text);
            Ok(())
        }
        ClientsCommand::Update(args) => update(args, services, json).await,
        ClientsCommand::Disable { id } => set_disabled(services, &id, true, json).await,
        ClientsCommand::Enable { id } => set_disabled(services, &id, false, json).await,
        ClientsCommand::Delete { id } => {
            let ended = services.delete_client(client_id(&id)?, ACTOR).await?;
            print(
                json,
                &serde_json::json!({ "client_id": id, "deleted": true, "sessions_ended": ended }),
                &format!("deleted client {id}; {ended} live sessions ended"),
            );
            Ok(())
        }
        ClientsCommand::RotateSecret { id, overlap } => {
            // Parsed here, not by clap, so a bad value is one line on stderr.
            let overlap = match overlap {
                Some(raw) => parse_duration(&raw).map_err(|e| anyhow::anyhow!("--overlap: {e}"))?,
                None => services.default_secret_overlap(),
            };
            let rotated = services
                .rotate_client_secret(client_id(&id)?, overlap, ACTOR)
                .await?;
            let until = rotated.previous_valid_until.map(|t| t.to_rfc3339());
            let text = format!(
                "client_secret: {}\n(the secret is shown once; store it now)\nprevious secret: {}",
                rotated.secret,
                until
                    .as_deref()
                    .map_or("ended now".to_owned(), |t| format!("works until {t}"))
            );
            print(
                json,
                &serde_json::json!({
                    "client_id": id,
                    "client_secret": rotated.secret,
                    "previous_secret_valid_until": until,
                }),
                &text,
            );
            Ok(())
        }
    }
}

async fn create(args: CreateArgs, services: &Services, json: bool) -> anyhow::Result<()> {
    let kind = match args.kind {
        Kind::Public => ClientKind::Public,
        Kind::Confidential => ClientKind::Confidential,
    };
    let key_source = match args.auth_method {
        AuthMethod::PrivateKeyJwt => Some(
            key_source(&args.keys)?
                .context("private_key_jwt needs --jwks-uri URL or --jwk FILE")?,
        ),
        AuthMethod::ClientSecret if key_source(&args.keys)?.is_some() => {
            anyhow::bail!("--jwks-uri and --jwk need --auth-method private_key_jwt")
        }
        AuthMethod::ClientSecret => None,
    };
    let created = services
        .create_client(NewClient {
            name: args.name,
            kind,
            grants: grants(&args.grants)?,
            scopes: scopes(&args.scopes)?,
            audience: args.audience,
            cookie_mode: args.cookie_mode,
            origins: args.origins,
            redirect_uris: args.redirect_uris,
            post_logout_redirect_uris: args.post_logout_redirect_uris,
            first_party: args.first_party,
            introspect: args.introspect,
            require_dpop: args.require_dpop,
            admin: args.admin,
            key_source,
        })
        .await
        .context("registering the client")?;
    let c = &created.client;
    if json {
        let mut value = client_json(services, c);
        value["client_secret"] = serde_json::json!(created.secret);
        println!("{value}");
    } else {
        println!("client_id:     {}", c.id);
        if let Some(secret) = &created.secret {
            println!("client_secret: {secret}");
            println!("(the secret is shown once; store it now)");
        }
    }
    Ok(())
}

async fn list(services: &Services, json: bool) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = services.list_clients(after, MAX_PAGE).await?;
        after = page.last().map(|c| c.id);
        let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= MAX_PAGE;
        all.extend(page);
        if !full {
            break;
        }
    }
    let value = serde_json::Value::Array(all.iter().map(|c| client_json(services, c)).collect());
    let text = all.iter().map(client_text).collect::<Vec<_>>().join("\n");
    print(json, &value, &text);
    Ok(())
}

async fn update(args: UpdateArgs, services: &Services, json: bool) -> anyhow::Result<()> {
    let id = client_id(&args.id)?;
    let changes = ClientChanges {
        name: args.name,
        grants: args.grants.as_deref().map(grants).transpose()?,
        scopes: args.scopes.as_deref().map(scopes).transpose()?,
        audience: args.audience.map(|a| Some(a).filter(|a| !a.is_empty())),
        cookie_mode: args.cookie_mode,
        origins: if args.no_origins {
            Some(Vec::new())
        } else {
            args.origins
        },
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        first_party: args.first_party,
        introspect: args.introspect,
        require_dpop: args.require_dpop,
        key_source: key_source(&args.keys)?,
    };
    let c = services.update_client(id, changes, ACTOR).await?;
    let value = client_json(services, &c);
    let text = format!("updated client {}", c.id);
    print(json, &value, &text);
    Ok(())
}

async fn set_disabled(
    services: &Services,
    id: &str,
    disabled: bool,
    json: bool,
) -> anyhow::Result<()> {
    services
        .set_client_disabled(client_id(id)?, disabled, ACTOR)
        .await?;
    let word = if disabled { "disabled" } else { "enabled" };
    print(
        json,
        &serde_json::json!({ "client_id": id, "disabled": disabled }),
        &format!("{word} client {id}"),
    );
    Ok(())
}

/// The key source the arguments name, if any; a `--jwk` file is read here.
fn key_source(args: &KeyArgs) -> anyhow::Result<Option<KeySource>> {
    match (&args.jwks_uri, &args.jwk) {
        (Some(uri), _) => Ok(Some(KeySource::JwksUri(uri.clone()))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --jwk {}", path.display()))?;
            Ok(Some(KeySource::Jwks(text)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_zero_or_a_unit() {
        assert_eq!(parse_duration("0"), Ok(Duration::zero()));
        assert_eq!(parse_duration("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::minutes(15)));
        assert_eq!(parse_duration("24h"), Ok(Duration::hours(24)));
        assert_eq!(parse_duration("2d"), Ok(Duration::days(2)));
        for bad in [
            "",
            "h",
            "5",
            "-1h",
            "1.5h",
            "1w",
            "400d",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
