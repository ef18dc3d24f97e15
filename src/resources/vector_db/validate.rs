//! Plan-time checks for `paved_vector_db`: everything that would otherwise fail inside the
//! cluster minutes later (a pgvector index over 2,000 dimensions, a PostgreSQL "cluster" of
//! independent primaries, an unknown engine version) fails at `terraform validate` instead.

use super::engine::{self, Engine, DISTANCES};
use super::team;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::resources::common::{
    check_count, check_names, check_size, check_team, validate_cron, validate_timeouts, TI,
};

/// Platform limits (documented in docs/resources/vector_db.md, "Limits").
pub const MAX_REPLICAS: i64 = 1000;
pub const MAX_VOLUME: u64 = 64 * TI;
pub const MAX_MEMORY: u64 = 4 * TI;
use crate::resources::workload::label_value;
use std::collections::HashSet;

pub fn validate(c: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_names(c, 40, "vector database", &mut d);
    let engine = match c.get("engine").as_str() {
        Some(e) => match Engine::parse(e) {
            Some(e) => Some(e),
            None => {
                let known: Vec<&str> = Engine::ALL.iter().map(|e| e.name()).collect();
                d.attr_error(
                    AttrPath::attr("engine"),
                    "Unknown engine",
                    format!(
                        "{e:?} is not an engine paved runs; use one of: {}.",
                        known.join(", ")
                    ),
                );
                None
            }
        },
        None => None,
    };
    if let (Some(e), Some(v)) = (engine, c.get("engine_version").as_str()) {
        if !e.versions().contains(&v) {
            d.attr_error(AttrPath::attr("engine_version"), "Unknown engine version", format!("paved has no pinned image for {} {v}; use one of: {} (or leave engine_version out for {}).", e.name(), e.versions().join(", "), e.default_version()));
        }
    }
    if let Some(r) = check_count(
        c.get("replicas"),
        AttrPath::attr("replicas"),
        1,
        MAX_REPLICAS,
        "replicas",
        &mut d,
    ) {
        if r > 1 && engine.is_some_and(|e| !e.clusters()) {
            d.attr_error(AttrPath::attr("replicas"), "Engine does not cluster", format!("{} runs a single PostgreSQL primary; {r} replicas would be independent databases with diverging data. Use replicas = 1, or engine = \"qdrant\", which clusters.", engine.map_or("", |e| e.name())));
        }
    }
    for t in c.get("allowed_teams").elements() {
        if let Some(t) = t.as_str().filter(|t| label_value(t).is_none()) {
            d.attr_error(AttrPath::attr("allowed_teams"), "Invalid team name", format!("{t:?} is not a valid label value (1-63 letters, digits, '-', '_' or '.'), so no pod could carry it."));
        }
    }
    let st = c.get("storage");
    check_size(
        st.get("size"),
        AttrPath::attr("storage").then("size"),
        MAX_VOLUME,
        "64Ti",
        "storage.size",
        &mut d,
    );
    check_size(
        c.get("resources").get("memory"),
        AttrPath::attr("resources").then("memory"),
        MAX_MEMORY,
        "4Ti",
        "resources.memory",
        &mut d,
    );
    let mut seen = HashSet::new();
    for (i, col) in c.get("collection").elements().iter().enumerate() {
        let at = |a: &str| AttrPath::attr("collection").index(i).then(a);
        if let Some(n) = col.get("name").as_str() {
            if !seen.insert(n.to_string()) {
                d.attr_error(
                    at("name"),
                    "Duplicate collection",
                    format!("Collection {n:?} is declared twice."),
                );
            }
            if let Some(e) = engine.filter(|e| !engine::valid_collection_name(*e, n)) {
                let rule = match e {
                    Engine::Pgvector => "a lowercase SQL identifier (letters, digits, '_', starting with a letter or '_', at most 50 characters)",
                    Engine::Qdrant => "letters, digits, '-', '_' or '.' (no '/')",
                };
                d.attr_error(
                    at("name"),
                    "Invalid collection name",
                    format!(
                        "{n:?} is not a valid {} collection name: use {rule}.",
                        e.name()
                    ),
                );
            }
        }
        // The bound is the largest any engine takes; the engine's own limit follows with its reason.
        let widest = Engine::ALL
            .iter()
            .map(|e| e.max_dimension())
            .max()
            .unwrap_or(65_536);
        if let Some(dim) = check_count(
            col.get("dimension"),
            at("dimension"),
            1,
            widest,
            "collection.dimension",
            &mut d,
        ) {
            if let Some(e) = engine.filter(|e| dim > e.max_dimension()) {
                let why = match e {
                    Engine::Pgvector => format!("pgvector's HNSW and IVFFlat indexes support at most 2,000 dimensions for the vector type, so a {dim}-dimension collection could not be indexed. Use an embedding model with at most 2,000 dimensions (or truncate Matryoshka embeddings), or engine = \"qdrant\"."),
                    Engine::Qdrant => format!("qdrant supports at most {} dimensions per vector.", e.max_dimension()),
                };
                d.attr_error(at("dimension"), "Dimension too large for the engine", why);
            }
        }
        if let Some(x) = col
            .get("distance")
            .as_str()
            .filter(|x| !DISTANCES.contains(x))
        {
            d.attr_error(
                at("distance"),
                "Unknown distance",
                format!("{x:?} is not a distance; use cosine, dot or euclid."),
            );
        }
    }
    let b = c.get("backup");
    validate_cron(
        b.get("schedule"),
        AttrPath::attr("backup").then("schedule"),
        &mut d,
    );
    if let Some(u) = b
        .get("destination")
        .as_str()
        .filter(|u| !u.starts_with("s3://") || u.len() <= 5)
    {
        d.attr_error(
            AttrPath::attr("backup").then("destination"),
            "Invalid backup destination",
            format!("{u:?} is not an S3 location; write it like s3://bucket/prefix."),
        );
    }
    let at = |a: &str| AttrPath::attr("backup").then(a);
    let (id, key, key_wo) = (
        b.get("access_key_id"),
        b.get("secret_access_key"),
        b.get("secret_access_key_wo"),
    );
    if !key.is_null() && !key_wo.is_null() {
        d.attr_error(
            at("secret_access_key_wo"),
            "Two secret access keys",
            "Set backup.secret_access_key or backup.secret_access_key_wo, not both.",
        );
    } else if !id.is_null() && key.is_null() && key_wo.is_null() {
        d.attr_error(
            at("access_key_id"),
            "Incomplete backup credentials",
            "backup.access_key_id needs backup.secret_access_key (or secret_access_key_wo); or remove it to use the pod's AWS identity.",
        );
    } else if id.is_null() && !(key.is_null() && key_wo.is_null()) {
        let which = if key.is_null() {
            "secret_access_key_wo"
        } else {
            "secret_access_key"
        };
        d.attr_error(
            at(which),
            "Incomplete backup credentials",
            format!("backup.{which} needs backup.access_key_id."),
        );
    }
    check_team(c.get("team"), &mut d);
    check_team_credentials(c, engine, &mut d);
    validate_timeouts(c, &mut d);
    d
}

/// `team_credentials` and `rotation_days`: what the credential layer can enforce.
fn check_team_credentials(c: &Value, engine: Option<Engine>, d: &mut Diagnostics) {
    let on = c.get("team_credentials").as_bool();
    if on == Some(true) && engine == Some(Engine::Qdrant) {
        d.attr_error(AttrPath::attr("team_credentials"), "Team credentials need pgvector", "Qdrant has one API key (and one read-only key) for the whole instance, so paved cannot give a team a credential of its own or revoke one team's access without changing everyone's key. Use engine = \"pgvector\" for per-team credentials; with qdrant, allowed_teams is enforced by the NetworkPolicy only.");
    }
    let rotation = c.get("rotation_days");
    if let Some(n) = rotation.as_f64() {
        if n < 1.0 || n.fract() != 0.0 {
            d.attr_error(
                AttrPath::attr("rotation_days"),
                "Invalid rotation_days",
                format!("rotation_days must be a whole number of days, at least 1; got {n}."),
            );
        }
    }
    let rotation_set = !rotation.is_null() && !rotation.is_unknown();
    let off = c.get("team_credentials").is_null() || on == Some(false);
    if rotation_set && off {
        d.attr_error(
            AttrPath::attr("rotation_days"),
            "rotation_days needs team_credentials",
            "Only team credentials are rotated; set team_credentials = true (pgvector) or remove rotation_days.",
        );
    }
    if on == Some(true) {
        check_credential_teams(c, d);
    }
}

/// Each team that gets a credential needs a namespace of its name and a PostgreSQL role that
/// fits in 63 bytes. Also run at plan time, where the provider's default team is known.
pub fn check_credential_teams(c: &Value, d: &mut Diagnostics) {
    if c.get("team_credentials").as_bool() != Some(true) {
        return;
    }
    let rule = |t: &str| {
        (!crate::resources::common::is_dns_label(t) || t.len() > team::MAX_TEAM_LEN).then(|| {
            format!("{t:?} cannot get a team credential: its Secret goes in the namespace named after the team and its PostgreSQL role is team_<name>, so the name must be 1-{} lowercase letters, digits and dashes, starting and ending with a letter or digit.", team::MAX_TEAM_LEN)
        })
    };
    if let Some(why) = c.get("team").as_str().and_then(rule) {
        d.attr_error(AttrPath::attr("team"), "Invalid team name", why);
    }
    for (i, t) in c.get("allowed_teams").elements().iter().enumerate() {
        if let Some(why) = t.as_str().and_then(rule) {
            d.attr_error(
                AttrPath::attr("allowed_teams").index(i),
                "Invalid team name",
                why,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(engine: &str, dims: &[i64]) -> Value {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("docs"));
        v.set_attr("engine", Value::string(engine));
        let cols = dims
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Value::object([
                    ("name", Value::string(format!("c{i}"))),
                    ("dimension", Value::int(*d)),
                    ("distance", Value::string("cosine")),
                ])
            })
            .collect();
        v.set_attr("collection", Value::List(cols));
        v
    }

    fn paths(d: &Diagnostics) -> Vec<String> {
        d.iter()
            .map(|x| x.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn backup_credentials_come_in_pairs_and_in_one_form() {
        let b = |id: Option<&str>, key: Option<&str>, wo: Option<&str>| {
            let mut c = cfg("pgvector", &[]);
            c.set_attr(
                "backup",
                Value::object([
                    ("schedule", Value::string("0 3 * * *")),
                    ("destination", Value::string("s3://b/p")),
                    ("access_key_id", id.map_or(Value::Null, Value::string)),
                    ("secret_access_key", key.map_or(Value::Null, Value::string)),
                    (
                        "secret_access_key_wo",
                        wo.map_or(Value::Null, Value::string),
                    ),
                    ("secret_access_key_wo_version", Value::Null),
                ]),
            );
            paths(&validate(&c))
        };
        assert!(b(Some("AK"), Some("k"), None).is_empty());
        assert!(b(Some("AK"), None, Some("k")).is_empty());
        assert!(b(None, None, None).is_empty());
        assert_eq!(b(Some("AK"), None, None), vec!["backup.access_key_id"]);
        assert_eq!(
            b(None, None, Some("k")),
            vec!["backup.secret_access_key_wo"]
        );
        assert_eq!(
            b(Some("AK"), Some("k"), Some("k")),
            vec!["backup.secret_access_key_wo"]
        );
    }

    #[test]
    fn pgvector_dimensions_stop_at_two_thousand() {
        assert!(validate(&cfg("pgvector", &[2000])).is_empty());
        let d = validate(&cfg("pgvector", &[768, 2001]));
        assert_eq!(paths(&d), vec!["collection[1].dimension"]);
        assert!(d.0[0].detail.contains("2,000"));
        assert!(validate(&cfg("qdrant", &[3072])).is_empty());
        assert_eq!(
            paths(&validate(&cfg("qdrant", &[0]))),
            vec!["collection[0].dimension"]
        );
    }

    #[test]
    fn only_clustering_engines_take_several_replicas() {
        let mut v = cfg("pgvector", &[]);
        v.set_attr("replicas", Value::int(3));
        assert_eq!(paths(&validate(&v)), vec!["replicas"]);
        v.set_attr("engine", Value::string("qdrant"));
        assert!(validate(&v).is_empty());
    }

    #[test]
    fn engine_and_version_must_be_known() {
        let mut v = cfg("milvus", &[]);
        assert_eq!(paths(&validate(&v)), vec!["engine"]);
        v.set_attr("engine", Value::string("qdrant"));
        v.set_attr("engine_version", Value::string("0.1"));
        assert_eq!(paths(&validate(&v)), vec!["engine_version"]);
    }

    #[test]
    fn team_credentials_need_pgvector_dns_label_teams_and_a_rotation_of_a_day_or_more() {
        let mut v = cfg("pgvector", &[]);
        v.set_attr("team", Value::string("search"));
        v.set_attr("team_credentials", Value::Bool(true));
        v.set_attr(
            "allowed_teams",
            Value::string_list(["ranking", "Ranking.EU"]),
        );
        v.set_attr("rotation_days", Value::int(0));
        assert_eq!(
            paths(&validate(&v)),
            vec!["rotation_days", "allowed_teams[1]"]
        );
        v.set_attr("allowed_teams", Value::string_list(["ranking"]));
        v.set_attr("rotation_days", Value::int(30));
        assert!(validate(&v).is_empty());
        v.set_attr("team", Value::string("x".repeat(team::MAX_TEAM_LEN + 1)));
        assert_eq!(paths(&validate(&v)), vec!["team"]);
        v.set_attr("team", Value::string("search"));
        v.set_attr("engine", Value::string("qdrant"));
        assert_eq!(paths(&validate(&v)), vec!["team_credentials"]);
        v.set_attr("engine", Value::string("pgvector"));
        v.set_attr("team_credentials", Value::Null);
        let d = validate(&v);
        assert_eq!(paths(&d), vec!["rotation_days"]);
        assert_eq!(d.0[0].summary, "rotation_days needs team_credentials");
        v.set_attr("rotation_days", Value::Unknown);
        assert!(validate(&v).is_empty());
    }

    #[test]
    fn unknown_values_are_skipped() {
        let mut v = cfg("pgvector", &[]);
        v.set_attr("engine", Value::Unknown);
        v.set_attr("replicas", Value::int(3));
        assert!(validate(&v).is_empty());
    }
}
