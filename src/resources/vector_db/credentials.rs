//! The Kubernetes side of per-team credentials ([`super::team`]): issuing, keeping, rotating
//! and revoking each team's Secret, and the roles Job that makes PostgreSQL agree. Passwords
//! only ever go into the teams' Secrets; they are never returned, logged or put in state.

use super::manifests::{self, DB_LABEL, ROLE_LABEL};
use super::spec::VectorDbSpec;
use super::team::{self, TeamCredential};
use crate::cloud::kube::{Kind, KubeApi};
use crate::context::Context;
use crate::cty::Value;
use crate::diag::AttrPath;
use crate::error::ResourceError;
use crate::resources::workload::{self, Progress};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// Why a team's Secret cannot be written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CredentialError {
    /// Another database of the same name (in another namespace) already issued the Secret.
    #[error("Secret {namespace}/{name} holds the credential of vector database {owner}, not of this one")]
    Taken {
        namespace: String,
        name: String,
        owner: String,
    },
}

impl From<CredentialError> for ResourceError {
    fn from(e: CredentialError) -> Self {
        ResourceError::invalid(
            AttrPath::attr("name"),
            "Team credential Secret belongs to another database",
            format!("{e}. Team Secrets are named <name>-<team>-credentials in the team's namespace, so two databases of one name cannot share a team; rename one of them."),
        )
    }
}

/// A team Secret as found in the cluster.
struct Found {
    password: Option<String>,
    issued_at: Option<String>,
}

fn found(secret: &Json) -> Found {
    Found {
        password: workload::secret_value(secret, "password").filter(|p| !p.is_empty()),
        issued_at: secret["metadata"]["annotations"][team::ISSUED_AT]
            .as_str()
            .map(str::to_string),
    }
}

/// The database (`namespace/name`) a team Secret was issued for, from its labels.
fn owner_of(secret: &Json) -> String {
    let l = &secret["metadata"]["labels"];
    format!(
        "{}/{}",
        l[team::DB_NAMESPACE_LABEL].as_str().unwrap_or("?"),
        l[DB_LABEL].as_str().unwrap_or("?")
    )
}

/// What one team gets from this apply: its password (kept or new), when it was issued and the
/// verifier PostgreSQL is to hold.
struct Issued {
    password: String,
    issued_at: String,
    verifier: String,
}

/// Keeps a team's current password unless it is missing, due for rotation or unknown to the
/// roles Secret; otherwise issues a new one.
fn keep_or_issue(
    s: &VectorDbSpec,
    existing: Option<Found>,
    known_verifier: Option<&String>,
    now: OffsetDateTime,
) -> Issued {
    if let Some(Found {
        password: Some(password),
        issued_at,
    }) = existing
    {
        if let Some(v) = known_verifier {
            if !team::due(issued_at.as_deref(), s.rotation_days, now) {
                return Issued {
                    password,
                    issued_at: issued_at.unwrap_or_else(|| team::now_rfc3339(now)),
                    verifier: v.clone(),
                };
            }
        }
    }
    let password = workload::random_secret();
    Issued {
        verifier: team::new_verifier(&password),
        password,
        issued_at: team::now_rfc3339(now),
    }
}

/// Role → verifier, as the roles Secret holds them.
async fn known_verifiers(
    kube: &dyn KubeApi,
    s: &VectorDbSpec,
) -> Result<Option<BTreeMap<String, String>>, ResourceError> {
    let Some(sec) = kube
        .get(Kind::Secret, &s.namespace, &s.team_roles_secret_name())
        .await?
    else {
        return Ok(None);
    };
    let keys = sec["data"]
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>());
    Ok(Some(
        keys.unwrap_or_default()
            .into_iter()
            .filter_map(|k| workload::secret_value(&sec, &k).map(|v| (k, v)))
            .collect(),
    ))
}

/// Issues, keeps or rotates every team's credential, writes the verifiers for the roles Job,
/// starts that Job and deletes the Secrets of teams no longer listed. The roles Job revokes
/// their PostgreSQL roles. A database that never had team credentials is left alone.
pub async fn apply(
    ctx: &Context,
    kube: &dyn KubeApi,
    s: &VectorDbSpec,
    now: OffsetDateTime,
) -> Result<(), ResourceError> {
    let teams = team::credentials(s);
    let known = known_verifiers(kube, s).await?;
    // Nothing was ever issued: no list across namespaces, which needs wider access.
    if teams.is_empty() && known.is_none() {
        return Ok(());
    }
    let known = known.unwrap_or_default();
    let mut verifiers = vec![];
    for c in &teams {
        let (ns, name) = (
            team::team_namespace(&c.team),
            team::secret_name(&s.name, &c.team),
        );
        let existing = kube.get(Kind::Secret, ns, &name).await?;
        if let Some(sec) = &existing {
            let owner = owner_of(sec);
            if owner != format!("{}/{}", s.namespace, s.name) {
                return Err(CredentialError::Taken {
                    namespace: ns.to_string(),
                    name,
                    owner,
                }
                .into());
            }
        }
        let issued = keep_or_issue(s, existing.as_ref().map(found), known.get(&c.role()), now);
        kube.apply(
            Kind::Secret,
            ns,
            &manifests::team_secret(s, c, &issued.password, &issued.issued_at),
        )
        .await?;
        verifiers.push((c.role(), issued.verifier));
    }
    kube.apply(
        Kind::Secret,
        &s.namespace,
        &manifests::team_roles_secret(s, &verifiers),
    )
    .await?;
    let v: Vec<String> = verifiers.into_iter().map(|(_, v)| v).collect();
    start_roles_job(ctx, kube, s, &teams, &team::job_name(&s.name, &teams, &v)).await?;
    revoke_secrets(kube, s, &teams).await
}

/// Runs the roles Job for the current teams and verifiers unless it completed (a failed one
/// runs again from scratch), and removes the Jobs of earlier sets.
async fn start_roles_job(
    ctx: &Context,
    kube: &dyn KubeApi,
    s: &VectorDbSpec,
    teams: &[TeamCredential],
    job: &str,
) -> Result<(), ResourceError> {
    let ns = &s.namespace;
    let existing = kube
        .get(Kind::Job, ns, job)
        .await?
        .map(|j| workload::job_progress(&j));
    if let Some(Progress::Failed { .. }) = existing {
        kube.delete(Kind::Job, ns, job).await?;
        let gone = crate::resources::common::deadline(Duration::from_secs(60));
        workload::wait_gone(kube, Kind::Job, ns, job, gone, &ctx.cancel).await?;
    }
    if existing != Some(Progress::Complete) {
        kube.apply(Kind::Job, ns, &manifests::team_roles_job(s, job, teams))
            .await?;
    }
    let selector = format!("{DB_LABEL}={},{ROLE_LABEL}={}", s.name, team::JOB_ROLE);
    for old in kube.list(Kind::Job, ns, &selector).await? {
        if let Some(n) = old["metadata"]["name"].as_str().filter(|n| *n != job) {
            kube.delete(Kind::Job, ns, n).await?;
        }
    }
    Ok(())
}

/// Every team Secret of the database, in any namespace: (namespace, name, team, secret).
async fn team_secrets(
    kube: &dyn KubeApi,
    s: &VectorDbSpec,
) -> Result<Vec<(String, String, String, Json)>, ResourceError> {
    let list = kube
        .list(Kind::Secret, "", &manifests::team_secret_selector(s))
        .await?;
    Ok(list
        .into_iter()
        .filter_map(|o| {
            let m = &o["metadata"];
            let (ns, name) = (m["namespace"].as_str()?, m["name"].as_str()?);
            let t = m["labels"][team::TEAM_LABEL].as_str()?;
            Some((ns.to_string(), name.to_string(), t.to_string(), o.clone()))
        })
        .collect())
}

/// Deletes the Secrets of teams not in `teams` (removed from `allowed_teams`, or all of them
/// when team credentials were turned off).
async fn revoke_secrets(
    kube: &dyn KubeApi,
    s: &VectorDbSpec,
    teams: &[TeamCredential],
) -> Result<(), ResourceError> {
    for (ns, name, t, _) in team_secrets(kube, s).await? {
        let wanted = teams.iter().any(|c| {
            c.team == t
                && ns == team::team_namespace(&c.team)
                && name == team::secret_name(&s.name, &c.team)
        });
        if !wanted {
            tracing::info!(namespace = %ns, secret = %name, team = %t, "revoking a team credential");
            kube.delete(Kind::Secret, &ns, &name).await?;
        }
    }
    Ok(())
}

/// Deletes every team Secret of the database (destroy).
pub async fn delete_all(kube: &dyn KubeApi, s: &VectorDbSpec) -> Result<(), ResourceError> {
    revoke_secrets(kube, s, &[]).await
}

/// What a read learns about team credentials.
pub struct Observation {
    /// `team_secrets` as found: teams whose Secret exists with a password that is not due for
    /// rotation, and teams whose Secret still exists though they are no longer listed.
    pub team_secrets: Value,
    pub problems: Vec<String>,
    /// The roles Job, once its name is known.
    pub job: Option<(String, Progress)>,
}

/// Reads every team Secret and the roles Job. A Secret that is missing, has no password or
/// is due for rotation is left out of `team_secrets`, so the plan (which lists every team)
/// differs and the next apply or reconcile issues it again.
pub async fn observe(
    kube: &dyn KubeApi,
    s: &VectorDbSpec,
    now: OffsetDateTime,
) -> Result<Observation, ResourceError> {
    let teams = team::credentials(s);
    let mut out = Observation {
        team_secrets: Value::Null,
        problems: vec![],
        job: None,
    };
    let found = if teams.is_empty() {
        vec![]
    } else {
        team_secrets(kube, s).await?
    };
    let mut map = BTreeMap::new();
    for (ns, name, t, sec) in &found {
        let listed = teams.iter().find(|c| &c.team == t);
        let f = self::found(sec);
        let fresh =
            f.password.is_some() && !team::due(f.issued_at.as_deref(), s.rotation_days, now);
        if listed.is_none() || fresh {
            map.insert(t.clone(), format!("{ns}/{name}"));
        }
    }
    for c in &teams {
        if !found.iter().any(|(_, _, t, _)| *t == c.team) {
            out.problems.push(format!(
                "Secret {}/{} is missing",
                team::team_namespace(&c.team),
                team::secret_name(&s.name, &c.team)
            ));
        }
    }
    if teams.is_empty() {
        return Ok(out);
    }
    out.team_secrets = Value::string_map(map);
    let Some(known) = known_verifiers(kube, s).await? else {
        out.problems
            .push(format!("Secret {} is missing", s.team_roles_secret_name()));
        return Ok(out);
    };
    let verifiers: Option<Vec<String>> = teams
        .iter()
        .map(|c| known.get(&c.role()).cloned())
        .collect();
    let Some(verifiers) = verifiers else {
        out.problems.push(format!(
            "Secret {} lacks a team's verifier",
            s.team_roles_secret_name()
        ));
        return Ok(out);
    };
    let job = team::job_name(&s.name, &teams, &verifiers);
    match kube.get(Kind::Job, &s.namespace, &job).await? {
        None => out
            .problems
            .push(format!("the team roles Job {job} is missing")),
        Some(j) => {
            let p = workload::job_progress(&j);
            if let Progress::Failed { condition, .. } = &p {
                out.problems
                    .push(format!("team roles Job {job} failed ({condition})"));
            }
            out.job = Some((job, p));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rotation: Option<i64>) -> VectorDbSpec {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("faq"));
        v.set_attr("team", Value::string("search"));
        v.set_attr("engine", Value::string("pgvector"));
        v.set_attr("team_credentials", Value::Bool(true));
        if let Some(r) = rotation {
            v.set_attr("rotation_days", Value::int(r));
        }
        VectorDbSpec::from_value(&v)
    }

    fn at(t: &str) -> OffsetDateTime {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
    }

    fn existing(pw: &str, issued: &str) -> Option<Found> {
        Some(Found {
            password: Some(pw.into()),
            issued_at: Some(issued.into()),
        })
    }

    #[test]
    fn a_fresh_password_is_kept_and_a_due_one_rotated() {
        let now = at("2026-12-04T12:00:00Z");
        let v = "SCRAM-SHA-256$4096:x".to_string();
        let kept = keep_or_issue(
            &spec(Some(7)),
            existing("old", "2026-12-01T00:00:00Z"),
            Some(&v),
            now,
        );
        assert_eq!(
            (kept.password.as_str(), kept.verifier.as_str()),
            ("old", v.as_str())
        );
        assert_eq!(kept.issued_at, "2026-12-01T00:00:00Z");
        let rotated = keep_or_issue(
            &spec(Some(2)),
            existing("old", "2026-12-01T00:00:00Z"),
            Some(&v),
            now,
        );
        assert_ne!(rotated.password, "old");
        assert_eq!(rotated.password.len(), 32);
        assert!(rotated.verifier.starts_with("SCRAM-SHA-256$4096:") && rotated.verifier != v);
        assert_eq!(rotated.issued_at, "2026-12-04T12:00:00Z");
        // Without rotation_days a password is kept however old it is.
        let kept = keep_or_issue(
            &spec(None),
            existing("old", "2020-01-01T00:00:00Z"),
            Some(&v),
            now,
        );
        assert_eq!(kept.password, "old");
        // A password PostgreSQL may not know (no verifier recorded) is replaced.
        let renewed = keep_or_issue(
            &spec(None),
            existing("old", "2026-12-01T00:00:00Z"),
            None,
            now,
        );
        assert_ne!(renewed.password, "old");
        assert_ne!(
            keep_or_issue(&spec(None), None, Some(&v), now).password,
            "old"
        );
    }

    #[test]
    fn a_secret_of_another_database_is_a_clear_error_on_name() {
        let e: ResourceError = CredentialError::Taken {
            namespace: "ranking".into(),
            name: "faq-ranking-credentials".into(),
            owner: "other/faq".into(),
        }
        .into();
        match e {
            ResourceError::Invalid { path, detail, .. } => {
                assert_eq!(path, Some(AttrPath::attr("name")));
                assert!(detail.contains("vector database other/faq"), "{detail}");
            }
            e => panic!("{e:?}"),
        }
    }
}
