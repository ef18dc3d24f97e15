//! The vector database's collection bootstrap, run for real: the exact script and SQL that
//! paved puts in the bootstrap Job's ConfigMap, executed with psql against a local PostgreSQL
//! with pgvector (Debian's pgvector source, built by `acceptance-tests/postgres.sh`, which
//! `.ci/run` starts). Needs PAVED_TEST_PG_URL (postgresql://user:pass@host:port/db), so the tests
//! are `#[ignore]`d: run them with `cargo test -- --include-ignored` (acceptance-tests/run.sh
//! does). Run without the variable they fail rather than pass silently.

use paved::resources::vector_db::engine::{self, Engine};
use paved::resources::vector_db::spec::Collection;
use paved::resources::vector_db::team;
use std::path::Path;
use std::process::{Command, Output};

struct Pg {
    host: String,
    port: String,
    user: String,
    password: String,
    admin_db: String,
}

fn pg() -> Option<Pg> {
    let url = std::env::var("PAVED_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("PAVED_TEST_PG_URL must name PostgreSQL with pgvector (acceptance-tests/postgres.sh) for this ignored test");
    let rest = url
        .strip_prefix("postgresql://")
        .expect("postgresql:// URL");
    let (cred, hostpart) = rest.split_once('@').expect("user:pass@host");
    let (user, password) = cred.split_once(':').expect("user:pass");
    let (hostport, db) = hostpart.split_once('/').expect("host:port/db");
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    Some(Pg {
        host: host.into(),
        port: port.into(),
        user: user.into(),
        password: password.into(),
        admin_db: db.into(),
    })
}

impl Pg {
    fn cmd(&self, program: &str, db: &str) -> Command {
        let mut c = Command::new(program);
        c.env("PGHOST", &self.host)
            .env("PGPORT", &self.port)
            .env("PGUSER", &self.user)
            .env("PGPASSWORD", &self.password)
            .env("PGDATABASE", db);
        c
    }
    fn sql(&self, db: &str, sql: &str) -> Output {
        self.cmd("psql", db)
            .args(["-v", "ON_ERROR_STOP=1", "-qtAc", sql])
            .output()
            .expect("psql runs")
    }
    fn ok(&self, db: &str, sql: &str) -> String {
        let o = self.sql(db, sql);
        assert!(
            o.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
    /// A fresh database per test, so runs never see each other's tables.
    fn fresh_db(&self, name: &str) -> String {
        let db = format!("{name}_{}", std::process::id());
        self.ok(&self.admin_db, &format!("DROP DATABASE IF EXISTS {db}"));
        self.ok(&self.admin_db, &format!("CREATE DATABASE {db}"));
        db
    }
    /// Runs the bootstrap Job's script exactly as the Job does, from a directory laid out like
    /// the mounted ConfigMap.
    fn bootstrap(&self, db: &str, dir: &Path, collections: &[Collection]) -> Output {
        std::fs::write(
            dir.join("bootstrap.sh"),
            engine::bootstrap_script(Engine::Pgvector, collections),
        )
        .unwrap();
        std::fs::write(dir.join("bootstrap.sql"), engine::pgvector_sql(collections)).unwrap();
        self.cmd("sh", db)
            .arg(dir.join("bootstrap.sh"))
            .env("BOOTSTRAP_DIR", dir)
            .output()
            .expect("sh runs")
    }
}

fn col(name: &str, dimension: i64, distance: &str) -> Collection {
    Collection {
        name: name.into(),
        dimension,
        distance: distance.into(),
    }
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("paved-pg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
#[ignore = "needs PAVED_TEST_PG_URL (PostgreSQL with pgvector)"]
fn bootstrap_creates_collections_idempotently_and_refuses_a_new_dimension() {
    let Some(pg) = pg() else { return };
    let db = pg.fresh_db("paved_bootstrap");
    let dir = tempdir("idem");
    let cols = [col("docs", 3, "cosine"), col("faq", 4, "euclid")];

    let out = pg.bootstrap(&db, &dir, &cols);
    assert!(
        out.status.success(),
        "first run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(pg.ok(&db, "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'docs'::regclass AND attname = 'embedding'"), "3");
    let idx = pg.ok(&db, "SELECT indexdef FROM pg_indexes WHERE tablename = 'faq'  AND indexname = 'faq_embedding_idx'");
    assert!(
        idx.contains("USING hnsw") && idx.contains("vector_l2_ops"),
        "{idx}"
    );
    // The collection works: nearest-neighbour search with the cosine operator.
    pg.ok(
        &db,
        "INSERT INTO docs (id, embedding) VALUES ('a', '[1,0,0]'), ('b', '[0,1,0]')",
    );
    assert_eq!(
        pg.ok(
            &db,
            "SELECT id FROM docs ORDER BY embedding <=> '[0.9,0.1,0]' LIMIT 1"
        ),
        "a"
    );

    // Second run (a retried Job, or a new Job after adding a collection): existing collections
    // and their data are left alone.
    let more = [cols[0].clone(), cols[1].clone(), col("notes", 2, "dot")];
    let out = pg.bootstrap(&db, &dir, &more);
    assert!(
        out.status.success(),
        "second run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(pg.ok(&db, "SELECT count(*) FROM docs"), "2");
    let idx = pg.ok(
        &db,
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'notes'",
    );
    assert!(idx.contains("vector_ip_ops"), "{idx}");

    // A collection that exists with another dimension stops the Job with a clear error.
    let out = pg.bootstrap(&db, &dir, &[col("docs", 5, "cosine")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("collection docs already exists with dimension 3, not 5"),
        "{err}"
    );
    assert_eq!(
        pg.ok(&db, "SELECT count(*) FROM docs"),
        "2",
        "nothing was changed"
    );

    pg.ok(&pg.admin_db, &format!("DROP DATABASE {db}"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[ignore = "needs PAVED_TEST_PG_URL (PostgreSQL with pgvector)"]
fn pgvector_index_limit_is_the_one_paved_validates() {
    let Some(pg) = pg() else { return };
    let db = pg.fresh_db("paved_limit");
    let dir = tempdir("limit");
    let max = Engine::Pgvector.max_dimension();
    let out = pg.bootstrap(&db, &dir, &[col("at_limit", max, "cosine")]);
    assert!(
        out.status.success(),
        "{max} dimensions: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One more and pgvector itself refuses the index: plan-time validation stops it earlier.
    let out = pg.bootstrap(&db, &dir, &[col("over_limit", max + 1, "cosine")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2000 dimensions"), "{err}");
    pg.ok(&pg.admin_db, &format!("DROP DATABASE {db}"));
    let _ = std::fs::remove_dir_all(dir);
}

/// One team's login as a client would make it: the role and password of its Secret.
fn as_team(pg: &Pg, db: &str, role: &str, password: &str, sql: &str) -> Output {
    let mut c = pg.cmd("psql", db);
    c.env("PGUSER", role).env("PGPASSWORD", password);
    c.args(["-v", "ON_ERROR_STOP=1", "-qtAc", sql])
        .output()
        .expect("psql runs")
}

/// Runs the roles Job's script exactly as the Job does: verifiers in the environment, the
/// script and SQL from a directory laid out like the mounted ConfigMap.
fn set_roles(
    pg: &Pg,
    db: &str,
    dir: &Path,
    teams: &[team::TeamCredential],
    passwords: &[&str],
) -> Output {
    std::fs::write(dir.join("roles.sh"), team::roles_script(teams)).unwrap();
    let sql = team::roles_sql(teams);
    for p in passwords {
        assert!(!sql.contains(p), "a password is in the SQL");
    }
    std::fs::write(dir.join("roles.sql"), sql).unwrap();
    let mut c = pg.cmd("sh", db);
    c.arg(dir.join("roles.sh")).env("BOOTSTRAP_DIR", dir);
    for (i, p) in passwords.iter().enumerate() {
        c.env(team::verifier_env(i), team::new_verifier(p));
    }
    c.output().expect("sh runs")
}

fn ok_out(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn refused(o: &Output, what: &str, why: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{what} should fail");
    assert!(err.contains(why), "{what}: {err}");
}

#[test]
#[ignore = "needs PAVED_TEST_PG_URL (PostgreSQL with pgvector)"]
fn team_roles_read_as_granted_and_revocation_and_rotation_lock_out_old_passwords() {
    let Some(pg) = pg() else { return };
    let db = pg.fresh_db("paved_teams");
    let dir = tempdir("teams");
    let id = std::process::id();
    let (owner, reader, outsider) = (format!("own{id}"), format!("read{id}"), format!("out{id}"));
    let cred = |t: &str, access| team::TeamCredential {
        team: t.to_string(),
        access,
    };
    let (ow, rd) = (
        cred(&owner, team::Access::ReadWrite),
        cred(&reader, team::Access::ReadOnly),
    );
    let out = pg.bootstrap(&db, &dir, &[col("docs", 3, "cosine")]);
    ok_out(&out, "bootstrap");
    pg.ok(
        &db,
        "INSERT INTO docs (id, embedding) VALUES ('a', '[1,0,0]')",
    );

    let (pw_owner, pw_reader) = ("owner-pass-1", "reader-pass-1");
    let out = set_roles(
        &pg,
        &db,
        &dir,
        &[ow.clone(), rd.clone()],
        &[pw_owner, pw_reader],
    );
    ok_out(&out, "roles");
    // The owner team reads and writes; the allowed team reads only.
    let q = "SELECT id FROM docs ORDER BY embedding <=> '[1,0,0]' LIMIT 1";
    assert_eq!(
        ok_out(&as_team(&pg, &db, &ow.role(), pw_owner, q), "owner reads"),
        "a"
    );
    ok_out(
        &as_team(
            &pg,
            &db,
            &ow.role(),
            pw_owner,
            "INSERT INTO docs (id, embedding) VALUES ('b', '[0,1,0]')",
        ),
        "owner writes",
    );
    assert_eq!(
        ok_out(
            &as_team(&pg, &db, &rd.role(), pw_reader, "SELECT count(*) FROM docs"),
            "reader reads"
        ),
        "2"
    );
    refused(
        &as_team(&pg, &db, &rd.role(), pw_reader, "DELETE FROM docs"),
        "reader deletes",
        "permission denied",
    );
    // A wrong password and a team that was never allowed are refused by PostgreSQL itself.
    refused(
        &as_team(&pg, &db, &rd.role(), "guess", "SELECT 1"),
        "wrong password",
        "password authentication failed",
    );
    refused(
        &as_team(&pg, &db, &team::role_name(&outsider), pw_reader, "SELECT 1"),
        "team not allowed",
        "password authentication failed",
    );
    // Collections created later are granted too (default privileges).
    ok_out(
        &pg.bootstrap(
            &db,
            &dir,
            &[col("docs", 3, "cosine"), col("notes", 2, "dot")],
        ),
        "new collection",
    );
    assert_eq!(
        ok_out(
            &as_team(
                &pg,
                &db,
                &rd.role(),
                pw_reader,
                "SELECT count(*) FROM notes"
            ),
            "reader reads a new collection"
        ),
        "0"
    );
    // Running again with the same set changes nothing for the teams.
    ok_out(
        &set_roles(
            &pg,
            &db,
            &dir,
            &[ow.clone(), rd.clone()],
            &[pw_owner, pw_reader],
        ),
        "roles again",
    );
    assert_eq!(
        ok_out(
            &as_team(&pg, &db, &rd.role(), pw_reader, "SELECT count(*) FROM docs"),
            "reader reads again"
        ),
        "2"
    );

    // Removed from allowed_teams: the old password no longer works and the role is gone.
    ok_out(
        &set_roles(&pg, &db, &dir, std::slice::from_ref(&ow), &[pw_owner]),
        "revoke",
    );
    refused(
        &as_team(&pg, &db, &rd.role(), pw_reader, "SELECT 1"),
        "revoked team",
        "password authentication failed",
    );
    assert_eq!(
        pg.ok(
            &db,
            &format!(
                "SELECT count(*) FROM pg_roles WHERE rolname = '{}'",
                rd.role()
            )
        ),
        "0"
    );
    assert_eq!(
        ok_out(
            &as_team(&pg, &db, &ow.role(), pw_owner, "SELECT count(*) FROM docs"),
            "owner keeps access"
        ),
        "2"
    );

    // Rotation: the new password works and the old one fails.
    let pw_new = "owner-pass-2";
    ok_out(
        &set_roles(&pg, &db, &dir, std::slice::from_ref(&ow), &[pw_new]),
        "rotate",
    );
    refused(
        &as_team(&pg, &db, &ow.role(), pw_owner, "SELECT 1"),
        "rotated-out password",
        "password authentication failed",
    );
    assert_eq!(
        ok_out(
            &as_team(&pg, &db, &ow.role(), pw_new, "SELECT count(*) FROM docs"),
            "rotated password"
        ),
        "2"
    );

    // No team left: every team role of this database goes.
    ok_out(&set_roles(&pg, &db, &dir, &[], &[]), "revoke all");
    assert_eq!(
        pg.ok(
            &db,
            &format!(
                "SELECT count(*) FROM pg_roles WHERE rolname IN ('{}', '{}')",
                ow.role(),
                rd.role()
            )
        ),
        "0"
    );
    pg.ok(&pg.admin_db, &format!("DROP DATABASE {db}"));
    let _ = std::fs::remove_dir_all(dir);
}
