//! Where the Compute client's Google credentials come from, and the `Authorization` header
//! they give each request.
//!
//! The order follows what users of gcloud and the Google Terraform provider already rely on,
//! so a pool needs no paved-specific setup:
//! 1. the provider's `gcp.credentials` (or the ProviderConfig's Secret): a service-account key
//!    or any other Google credentials JSON (inline, or a path to the file), else an OAuth 2
//!    access token;
//! 2. `GOOGLE_OAUTH_ACCESS_TOKEN`, then `GOOGLE_CREDENTIALS` (JSON or a path);
//! 3. application default credentials: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
//!    `application_default_credentials.json`, then the metadata server (GKE workload identity,
//!    a VM's service account).
//!
//! A loopback endpoint (the local Compute API) with none of 1–2 sends no credentials, unless
//! `GOOGLE_APPLICATION_CREDENTIALS` or `GCE_METADATA_HOST` is set: a developer's gcloud login
//! must not leak into tests, and tests of ADC must still be able to use it.
//!
//! Credentials are built on first use, inside the runtime: google-cloud-auth's token cache
//! starts a refresh task when it is built, and the provider's configure step must stay offline.

use super::gce::{is_loopback, GceError, GceErrorKind};
use google_cloud_auth::credentials::{
    self as gauth, external_account, impersonated, service_account, user_account, Credentials,
};

/// The scope every token asks for: Compute's IAM permissions decide the rest.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The credential kinds a JSON document may hold (its `type`).
const JSON_KINDS: [&str; 4] = [
    "service_account",
    "authorized_user",
    "impersonated_service_account",
    "external_account",
];

/// What a client authenticates with, decided without network access.
#[derive(Clone, PartialEq)]
pub enum Source {
    /// Loopback endpoint, no credentials: no `Authorization` header.
    None,
    /// A ready OAuth 2 access token.
    Token(String),
    /// A Google credentials document; `kind` is its `type`, `email` its principal if it names one.
    Json {
        kind: String,
        email: Option<String>,
        doc: serde_json::Value,
    },
    /// Application default credentials (file from the environment, gcloud's file, metadata server).
    Adc,
}

impl std::fmt::Debug for Source {
    /// Never prints a token or a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::None => f.write_str("None"),
            Source::Token(_) => f.write_str("Token(<sensitive>)"),
            Source::Json { kind, email, .. } => write!(f, "Json({kind}, {email:?})"),
            Source::Adc => f.write_str("Adc"),
        }
    }
}

impl Source {
    /// A short description for logs and errors (no secrets).
    pub fn describe(&self) -> String {
        match self {
            Source::None => "no credentials".into(),
            Source::Token(_) => "an OAuth access token".into(),
            Source::Json {
                kind,
                email: Some(e),
                ..
            } => format!("{kind} credentials for {e}"),
            Source::Json { kind, .. } => format!("{kind} credentials"),
            Source::Adc => "application default credentials".into(),
        }
    }
}

fn unauthenticated(message: String) -> GceError {
    GceError::new("Credentials", 0, "noCredentials", &message)
        .with_kind(GceErrorKind::Unauthenticated)
}

/// Reads a credentials value: JSON text, a path to a JSON file, or an access token.
/// `what` names where it came from, for the error (never the value itself).
pub fn parse_value(value: &str, what: &str) -> Result<Source, String> {
    let v = value.trim();
    let text = if v.starts_with('{') {
        v.to_string()
    } else if !v.contains(char::is_whitespace)
        && (v.contains('/') || v.ends_with(".json"))
        && std::path::Path::new(v).is_file()
    {
        std::fs::read_to_string(v).map_err(|e| format!("{what}: cannot read the file {v}: {e}"))?
    } else if v.ends_with(".json") {
        return Err(format!(
            "{what} looks like a path to a credentials file, but {v} does not exist. Give the JSON itself (file(\"…\") in HCL) or a path that exists on the machine running the provider."
        ));
    } else {
        return Ok(Source::Token(v.to_string()));
    };
    let doc: serde_json::Value = serde_json::from_str(text.trim()).map_err(|e| {
        format!("{what} is not valid JSON ({e}); give a service-account key or other Google credentials file, or an OAuth access token")
    })?;
    let kind = doc["type"].as_str().unwrap_or_default().to_string();
    if !JSON_KINDS.contains(&kind.as_str()) {
        return Err(format!(
            "{what} has type {:?}; supported credential types are {}",
            kind,
            JSON_KINDS.join(", ")
        ));
    }
    if kind == "service_account" {
        for field in ["client_email", "private_key", "private_key_id"] {
            if doc[field].as_str().is_none_or(str::is_empty) {
                return Err(format!(
                    "{what} is a service-account key without {field}; download a new key (JSON) for the service account"
                ));
            }
        }
    }
    let email = doc["client_email"]
        .as_str()
        .or_else(|| {
            doc["service_account_impersonation_url"]
                .as_str()
                .and_then(|u| u.rsplit('/').next())
                .and_then(|s| s.split(':').next())
        })
        .map(String::from);
    Ok(Source::Json { kind, email, doc })
}

/// Decides the source for `endpoint` from the configured value and the environment (`env`
/// reads a variable; the real one is `std::env::var`).
pub fn resolve(
    configured: Option<&str>,
    endpoint: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Source, GceError> {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if let Some(c) = configured.filter(|c| !c.trim().is_empty()) {
        return parse_value(c, "gcp.credentials").map_err(unauthenticated);
    }
    if let Some(t) = env("GOOGLE_OAUTH_ACCESS_TOKEN") {
        return Ok(Source::Token(t.trim().to_string()));
    }
    if let Some(c) = env("GOOGLE_CREDENTIALS") {
        return parse_value(&c, "GOOGLE_CREDENTIALS").map_err(unauthenticated);
    }
    if is_loopback(endpoint)
        && env("GOOGLE_APPLICATION_CREDENTIALS").is_none()
        && env("GCE_METADATA_HOST").is_none()
    {
        return Ok(Source::None);
    }
    Ok(Source::Adc)
}

/// Builds the google-cloud-auth credentials for a source (inside a Tokio runtime).
fn build(source: &Source) -> Result<Option<Credentials>, GceError> {
    let scopes = [CLOUD_PLATFORM];
    let built = match source {
        Source::None | Source::Token(_) => return Ok(None),
        Source::Json { kind, doc, .. } => match kind.as_str() {
            "service_account" => service_account::Builder::new(doc.clone())
                .with_access_specifier(service_account::AccessSpecifier::from_scopes(scopes))
                .build(),
            "authorized_user" => user_account::Builder::new(doc.clone())
                .with_scopes(scopes)
                .build(),
            "impersonated_service_account" => impersonated::Builder::new(doc.clone())
                .with_scopes(scopes)
                .build(),
            _ => external_account::Builder::new(doc.clone())
                .with_scopes(scopes)
                .build(),
        },
        Source::Adc => gauth::Builder::default().with_scopes(scopes).build(),
    };
    built.map(Some).map_err(|e| {
        unauthenticated(format!(
            "cannot use {}: {}",
            source.describe(),
            crate::error::chain(&e)
        ))
    })
}

/// The `Authorization` header source of one client: built once, tokens cached and refreshed
/// by google-cloud-auth.
pub struct Authenticator {
    source: Source,
    built: tokio::sync::OnceCell<Option<Credentials>>,
}

impl Authenticator {
    pub fn new(source: Source) -> Authenticator {
        Authenticator {
            source,
            built: tokio::sync::OnceCell::new(),
        }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Headers to add to a request (none for [`Source::None`]). Blocking: at most one token
    /// fetch (metadata server, token endpoint) when the cached token is stale. An error is
    /// `Transient` when google-cloud-auth says a retry may succeed, else `Unauthenticated`.
    pub async fn headers(&self) -> Result<Vec<(String, String)>, GceError> {
        if let Source::Token(t) = &self.source {
            return Ok(vec![("authorization".into(), format!("Bearer {t}"))]);
        }
        let creds = self
            .built
            .get_or_try_init(|| async { build(&self.source) })
            .await?;
        let Some(creds) = creds else {
            return Ok(Vec::new());
        };
        match creds.headers(http::Extensions::new()).await {
            Ok(gauth::CacheableResource::New { data, .. }) => Ok(data
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect()),
            Ok(gauth::CacheableResource::NotModified) => Err(unauthenticated(
                "google-cloud-auth returned no headers".into(),
            )),
            Err(e) => {
                let transient = e.is_transient();
                let msg = format!(
                    "cannot get a token from {}: {}{}",
                    self.source.describe(),
                    crate::error::chain(&e),
                    if matches!(self.source, Source::Adc) {
                        ". Set gcp.credentials (a service-account key), GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`"
                    } else {
                        ""
                    }
                );
                let err = unauthenticated(msg);
                Err(if transient {
                    err.with_kind(GceErrorKind::Transient)
                } else {
                    err
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    const LOCAL: &str = "http://127.0.0.1:18090";
    const GOOGLE: &str = "https://compute.googleapis.com";

    #[test]
    fn order_of_sources() {
        let sa = r#"{"type":"service_account","client_email":"ci@p.iam.gserviceaccount.com","private_key":"k","private_key_id":"1"}"#;
        assert_eq!(resolve(None, LOCAL, env(&[])).unwrap(), Source::None);
        assert_eq!(resolve(None, GOOGLE, env(&[])).unwrap(), Source::Adc);
        assert_eq!(
            resolve(
                Some("ya29.x"),
                GOOGLE,
                env(&[("GOOGLE_OAUTH_ACCESS_TOKEN", "other")])
            )
            .unwrap(),
            Source::Token("ya29.x".into())
        );
        assert_eq!(
            resolve(
                None,
                LOCAL,
                env(&[
                    ("GOOGLE_OAUTH_ACCESS_TOKEN", "t"),
                    ("GOOGLE_CREDENTIALS", sa)
                ])
            )
            .unwrap(),
            Source::Token("t".into())
        );
        match resolve(None, GOOGLE, env(&[("GOOGLE_CREDENTIALS", sa)])).unwrap() {
            Source::Json { kind, email, .. } => {
                assert_eq!(kind, "service_account");
                assert_eq!(email.as_deref(), Some("ci@p.iam.gserviceaccount.com"));
            }
            other => panic!("{other:?}"),
        }
        // Loopback uses ADC only when the environment points at it.
        assert_eq!(
            resolve(
                None,
                LOCAL,
                env(&[("GOOGLE_APPLICATION_CREDENTIALS", "/x.json")])
            )
            .unwrap(),
            Source::Adc
        );
        assert_eq!(
            resolve(None, LOCAL, env(&[("GCE_METADATA_HOST", "127.0.0.1:1")])).unwrap(),
            Source::Adc
        );
        assert_eq!(resolve(Some("  "), LOCAL, env(&[])).unwrap(), Source::None);
    }

    #[test]
    fn bad_documents_say_what_to_do_without_echoing_the_secret() {
        let e = parse_value(
            "{\"type\": \"service_account\", \"private_key\": \"SECRET\"}",
            "gcp.credentials",
        )
        .unwrap_err();
        assert!(
            e.contains("without client_email") && !e.contains("SECRET"),
            "{e}"
        );
        let e = parse_value("{not json SECRET", "gcp.credentials").unwrap_err();
        assert!(e.contains("not valid JSON") && !e.contains("SECRET"), "{e}");
        let e = parse_value(r#"{"type":"api_key","key":"SECRET"}"#, "gcp.credentials").unwrap_err();
        assert!(
            e.contains("supported credential types") && !e.contains("SECRET"),
            "{e}"
        );
        let e = parse_value("/nonexistent/key.json", "gcp.credentials").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        assert!(format!("{:?}", Source::Token("SECRET".into()))
            .find("SECRET")
            .is_none());
    }

    #[test]
    fn a_path_is_read() {
        let dir = std::env::temp_dir().join(format!("paved-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("user.json");
        std::fs::write(
            &p,
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}"#,
        )
        .unwrap();
        match parse_value(p.to_str().unwrap(), "gcp.credentials").unwrap() {
            Source::Json { kind, email, .. } => {
                assert!(kind == "authorized_user" && email.is_none())
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
