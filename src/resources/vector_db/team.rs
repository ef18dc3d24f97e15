//! Per-team credentials for pgvector (`team_credentials = true`): one PostgreSQL login role per
//! team that may use the database, each with its own password in a Secret in that team's
//! namespace, so access follows the team at the credential layer and not only at the network
//! layer (a NetworkPolicy needs a CNI that enforces it; a password is checked by PostgreSQL).
//!
//! PostgreSQL never sees a team's password: paved sends a SCRAM-SHA-256 verifier (what
//! PostgreSQL itself stores), so neither the roles script, the database's namespace nor the
//! server log holds a password a team could log in with. The verifiers travel to the Job as
//! environment variables from the `<name>-team-roles` Secret and into SQL as psql variables,
//! never in the script text.

use super::spec::VectorDbSpec;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What a team's role may do on the collection tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The owning team: reads and writes the vectors it owns.
    ReadWrite,
    /// A team in `allowed_teams`: reads only, so a consumer cannot corrupt another team's index.
    ReadOnly,
}

impl Access {
    /// The table privileges the role is granted (and nothing else).
    pub fn privileges(self) -> &'static str {
        match self {
            Access::ReadWrite => "SELECT, INSERT, UPDATE, DELETE",
            Access::ReadOnly => "SELECT",
        }
    }
    fn code(self) -> &'static str {
        match self {
            Access::ReadWrite => "rw",
            Access::ReadOnly => "r",
        }
    }
}

/// One team's credential as paved issues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamCredential {
    pub team: String,
    pub access: Access,
}

impl TeamCredential {
    /// PostgreSQL role of the team; validation keeps it within PostgreSQL's 63 bytes.
    pub fn role(&self) -> String {
        role_name(&self.team)
    }
}

/// Annotation on a team's Secret: when its password was issued (RFC 3339, UTC).
pub const ISSUED_AT: &str = "paved.dev/issued-at";
/// Label on a team's Secret naming the team it is for.
pub const TEAM_LABEL: &str = "paved.dev/credential-team";
/// Label on a team's Secret naming the database's namespace (the Secret lives in the team's).
pub const DB_NAMESPACE_LABEL: &str = "paved.dev/vector-db-namespace";
/// Value of `paved.dev/role` on team Secrets and on the Job that sets the roles.
pub const SECRET_ROLE: &str = "team-credential";
pub const JOB_ROLE: &str = "team-roles";
/// PostgreSQL group every team role is a member of, so the roles script can find (and revoke)
/// roles of teams no longer listed without touching any other role.
pub const GROUP_ROLE: &str = "paved_teams";
/// Longest team name whose role (`team_<name>`) fits PostgreSQL's 63-byte identifiers.
pub const MAX_TEAM_LEN: usize = 63 - "team_".len();

pub fn role_name(team: &str) -> String {
    format!("team_{team}")
}

/// Teams that get a credential: the owner (read-write) first, then each allowed team once.
pub fn credentials(s: &VectorDbSpec) -> Vec<TeamCredential> {
    if !s.team_credentials || s.engine != super::engine::Engine::Pgvector {
        return vec![];
    }
    let mut out = vec![TeamCredential {
        team: s.team.clone(),
        access: Access::ReadWrite,
    }];
    for t in &s.allowed_teams {
        if !out.iter().any(|c| &c.team == t) {
            out.push(TeamCredential {
                team: t.clone(),
                access: Access::ReadOnly,
            });
        }
    }
    out
}

/// The namespace a team's Secret lives in. paved has no team → namespace directory, so a team's
/// namespace is the one named after it (documented; validation requires a DNS-label team name).
pub fn team_namespace(team: &str) -> &str {
    team
}

pub fn secret_name(db: &str, team: &str) -> String {
    format!("{db}-{team}-credentials")
}

/// `namespace/name` of every team's Secret, as the `team_secrets` attribute shows them.
pub fn secret_refs(s: &VectorDbSpec) -> Vec<(String, String)> {
    credentials(s)
        .iter()
        .map(|c| {
            let ns = team_namespace(&c.team);
            (
                c.team.clone(),
                format!("{ns}/{}", secret_name(&s.name, &c.team)),
            )
        })
        .collect()
}

/// Whether a credential issued at `issued` (RFC 3339) must be replaced at `now`: never without
/// `rotation_days`; always when the time is missing or unreadable (it cannot be shown fresh).
pub fn due(issued: Option<&str>, rotation_days: Option<i64>, now: OffsetDateTime) -> bool {
    let Some(days) = rotation_days else {
        return false;
    };
    match issued.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) {
        Some(at) => now - at >= time::Duration::days(days),
        None => true,
    }
}

pub fn now_rfc3339(now: OffsetDateTime) -> String {
    now.format(&Rfc3339).unwrap_or_default()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// PBKDF2-HMAC-SHA-256 with one 32-byte block, the "Hi" function of SCRAM (RFC 5802).
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac_sha256(password, &[salt, &1u32.to_be_bytes()].concat());
    let mut out = u;
    for _ in 1..iterations {
        u = hmac_sha256(password, &u);
        out.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (the format of `pg_authid`),
/// which `ALTER ROLE … PASSWORD` accepts as-is: the server never learns the password.
pub fn scram_verifier(password: &str, salt: &[u8]) -> String {
    use base64::Engine as _;
    const ITERATIONS: u32 = 4096;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let salted = salted_password(password.as_bytes(), salt, ITERATIONS);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac_sha256(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        b64(salt),
        b64(&stored_key),
        b64(&server_key)
    )
}

/// A verifier with a fresh random 16-byte salt.
pub fn new_verifier(password: &str) -> String {
    use rand::RngCore;
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    scram_verifier(password, &salt)
}

/// A SQL string literal (standard_conforming_strings), for role names and access codes, which
/// are not secret; verifiers come in as psql variables instead.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Environment variable the roles Job passes the `i`-th verifier in.
pub fn verifier_env(i: usize) -> String {
    format!("PAVED_VERIFIER_{i}")
}

/// The roles script's SQL. It makes the set of `paved_teams` members exactly `teams`: revoked
/// teams lose LOGIN and their password (and their sessions) first, then their privileges and
/// the role itself; listed teams get LOGIN with their verifier and exactly the privileges of
/// their access, on every table in `public` (the collections) and on tables created later.
pub fn roles_sql(teams: &[TeamCredential]) -> String {
    let mut sql = String::from(
        "CREATE TEMP TABLE paved_wanted (role text PRIMARY KEY, access text NOT NULL, verifier text NOT NULL);\n",
    );
    for (i, c) in teams.iter().enumerate() {
        sql.push_str(&format!(
            "INSERT INTO paved_wanted VALUES ({}, {}, :'verifier_{i}');\n",
            literal(&c.role()),
            literal(c.access.code())
        ));
    }
    sql.push_str(&format!(
        "DO $$\n\
DECLARE r record; privs text;\n\
BEGIN\n\
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{GROUP_ROLE}') THEN\n\
    CREATE ROLE {GROUP_ROLE} NOLOGIN;\n\
  END IF;\n\
  FOR r IN SELECT m.rolname FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.member JOIN pg_roles g ON g.oid = a.roleid\n\
           WHERE g.rolname = '{GROUP_ROLE}' AND m.rolname NOT IN (SELECT role FROM paved_wanted) LOOP\n\
    EXECUTE format('ALTER ROLE %I NOLOGIN PASSWORD NULL', r.rolname);\n\
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = r.rolname;\n\
    EXECUTE format('DROP OWNED BY %I', r.rolname);\n\
    BEGIN\n\
      EXECUTE format('DROP ROLE %I', r.rolname);\n\
    EXCEPTION WHEN dependent_objects_still_exist THEN\n\
      RAISE NOTICE 'role % keeps privileges in another database; it stays without LOGIN and password', r.rolname;\n\
    END;\n\
    RAISE NOTICE 'revoked %', r.rolname;\n\
  END LOOP;\n\
  FOR r IN SELECT * FROM paved_wanted LOOP\n\
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.role) THEN\n\
      EXECUTE format('CREATE ROLE %I', r.role);\n\
    END IF;\n\
    EXECUTE format('GRANT {GROUP_ROLE} TO %I', r.role);\n\
    EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD %L', r.role, r.verifier);\n\
    privs := CASE r.access WHEN 'rw' THEN '{rw}' ELSE '{ro}' END;\n\
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r.role);\n\
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r.role);\n\
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', r.role);\n\
    EXECUTE format('GRANT %s ON ALL TABLES IN SCHEMA public TO %I', privs, r.role);\n\
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public REVOKE ALL ON TABLES FROM %I', current_user, r.role);\n\
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT %s ON TABLES TO %I', current_user, privs, r.role);\n\
  END LOOP;\n\
END $$;\n",
        rw = Access::ReadWrite.privileges(),
        ro = Access::ReadOnly.privileges(),
    ));
    sql
}

/// The roles Job's shell script: waits for PostgreSQL, then runs `roles.sql` with each verifier
/// handed from the environment to a psql variable (`-v verifier_i=…`), so no credential is in
/// the script, the ConfigMap or the Job's command line as written.
pub fn roles_script(teams: &[TeamCredential]) -> String {
    let mut vars = String::new();
    for i in 0..teams.len() {
        vars.push_str(&format!(" -v verifier_{i}=\"${}\"", verifier_env(i)));
    }
    format!(
        "set -eu\n\
dir=\"${{BOOTSTRAP_DIR:-/bootstrap}}\"\n\
i=0\n\
until pg_isready -q; do\n  i=$((i+1)); [ \"$i\" -lt 120 ] || {{ echo 'PostgreSQL did not become ready' >&2; exit 1; }}; sleep 1\ndone\n\
psql -v ON_ERROR_STOP=1 -q{vars} -f \"$dir/roles.sql\"\n\
echo 'team roles ready'\n"
    )
}

/// Name of the Job that sets the roles: it changes with the team list and with any verifier (a
/// hash of the verifiers, which reveals nothing), so a rotation or a new team runs a new Job
/// and an unchanged set is not run again.
pub fn job_name(db: &str, teams: &[TeamCredential], verifiers: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(roles_script(teams));
    h.update(roles_sql(teams));
    for v in verifiers {
        h.update(v);
        h.update([0]);
    }
    format!("{db}-team-roles-{}", &hex::encode(h.finalize())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Value;

    fn spec(engine: &str, on: bool, allowed: &[&str]) -> VectorDbSpec {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("faq"));
        v.set_attr("team", Value::string("search"));
        v.set_attr("engine", Value::string(engine));
        v.set_attr("team_credentials", Value::Bool(on));
        v.set_attr("allowed_teams", Value::string_list(allowed.iter().copied()));
        VectorDbSpec::from_value(&v)
    }

    #[test]
    fn the_owner_writes_and_allowed_teams_read_each_once() {
        let c = credentials(&spec("pgvector", true, &["ranking", "search", "ranking"]));
        let got: Vec<(&str, Access)> = c.iter().map(|c| (c.team.as_str(), c.access)).collect();
        assert_eq!(
            got,
            vec![("search", Access::ReadWrite), ("ranking", Access::ReadOnly)]
        );
        assert_eq!(c[1].role(), "team_ranking");
        assert!(credentials(&spec("pgvector", false, &["ranking"])).is_empty());
        assert!(credentials(&spec("qdrant", true, &["ranking"])).is_empty());
        assert_eq!(
            secret_refs(&spec("pgvector", true, &["ranking"]))[1],
            (
                "ranking".to_string(),
                "ranking/faq-ranking-credentials".to_string()
            )
        );
    }

    #[test]
    fn scram_verifier_matches_the_rfc_7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==.
        use base64::Engine as _;
        let salt = base64::engine::general_purpose::STANDARD
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap();
        let v = scram_verifier("pencil", &salt);
        let salted = salted_password(b"pencil", &salt, 4096);
        let server_key = hmac_sha256(&salted, b"Server Key");
        let client_key = hmac_sha256(&salted, b"Client Key");
        assert!(
            v.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"),
            "{v}"
        );
        // The server signature of the RFC's exchange proves ServerKey (and so the PBKDF2 step).
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let sig = hmac_sha256(&server_key, auth.as_bytes());
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(sig),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let proof: Vec<u8> = client_key
            .iter()
            .zip(hmac_sha256(&Sha256::digest(client_key), auth.as_bytes()))
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(!v.contains("pencil"));
    }

    #[test]
    fn no_credential_is_in_the_script_or_the_sql() {
        let teams = credentials(&spec("pgvector", true, &["ranking"]));
        let sql = roles_sql(&teams);
        assert!(
            sql.contains("INSERT INTO paved_wanted VALUES ('team_search', 'rw', :'verifier_0');")
        );
        assert!(sql.contains("VALUES ('team_ranking', 'r', :'verifier_1');"));
        assert!(!sql.contains("SCRAM-SHA-256$"));
        let sh = roles_script(&teams);
        assert!(sh.contains("-v verifier_1=\"$PAVED_VERIFIER_1\""), "{sh}");
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn the_job_changes_with_a_verifier_and_not_without() {
        let teams = credentials(&spec("pgvector", true, &["ranking"]));
        let a = vec!["v0".to_string(), "v1".to_string()];
        let b = vec!["v0".to_string(), "v2".to_string()];
        assert_eq!(job_name("faq", &teams, &a), job_name("faq", &teams, &a));
        assert_ne!(job_name("faq", &teams, &a), job_name("faq", &teams, &b));
        assert!(job_name("faq", &teams, &a).starts_with("faq-team-roles-"));
    }

    #[test]
    fn rotation_is_due_after_rotation_days_or_without_a_readable_time() {
        let now = OffsetDateTime::parse("2026-12-04T12:00:00Z", &Rfc3339).unwrap();
        assert!(!due(Some("2026-12-01T12:00:00Z"), None, now));
        assert!(!due(None, None, now));
        assert!(!due(Some("2026-12-01T12:00:01Z"), Some(3), now));
        assert!(due(Some("2026-12-01T12:00:00Z"), Some(3), now));
        assert!(due(Some("yesterday"), Some(3), now));
        assert!(due(None, Some(3), now));
        assert_eq!(now_rfc3339(now), "2026-12-04T12:00:00Z");
    }
}
