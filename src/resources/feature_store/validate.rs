//! Plan-time checks for `paved_feature_store`.

use super::schema::DATA_DIR;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::resources::common::{
    check_count, check_names, check_size, check_team, validate_cron, validate_timeouts, TI,
};

fn location_error(uri: &str) -> Option<String> {
    if let Some(path) = uri.strip_prefix("file://") {
        let ok = path.starts_with(&format!("{DATA_DIR}/")) && !path.contains("..");
        return (!ok).then(|| format!("{uri:?} is outside the feature store's volume; file locations must be under file://{DATA_DIR}/."));
    }
    if uri
        .strip_prefix("s3://")
        .is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
    {
        return None;
    }
    Some(format!(
        "{uri:?} is neither file://{DATA_DIR}/… nor s3://bucket/…."
    ))
}

pub fn validate(c: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_names(c, 40, "feature store", &mut d);
    if let Some(p) = c
        .get("feast_project")
        .as_str()
        .filter(|p| p.is_empty() || !p.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
    {
        d.attr_error(
            AttrPath::attr("feast_project"),
            "Invalid Feast project",
            format!("{p:?}: Feast project names take letters, digits and underscores only."),
        );
    }
    for attr in ["offline_store", "registry"] {
        if let Some(e) = c.get(attr).as_str().and_then(location_error) {
            d.attr_error(AttrPath::attr(attr), "Invalid location", e);
        }
    }
    let o = c.get("online_store");
    let at = |a: &str| AttrPath::attr("online_store").then(a);
    let (vdb, conn, conn_wo) = (
        o.get("vector_db_id"),
        o.get("connection_string"),
        o.get("connection_string_wo"),
    );
    if !conn.is_null() && !conn_wo.is_null() {
        d.attr_error(
            at("connection_string_wo"),
            "Two connection strings",
            "Set online_store.connection_string or online_store.connection_string_wo, not both.",
        );
    }
    match o.get("kind").as_str() {
        Some("redis") | None if !o.get("kind").is_unknown() => {
            for (v, a) in [
                (vdb, "vector_db_id"),
                (conn, "connection_string"),
                (conn_wo, "connection_string_wo"),
            ] {
                if !v.is_null() {
                    d.attr_error(
                        at(a),
                        "Argument not used by a managed Redis",
                        format!(
                            "online_store.{a} is only used with kind = {}; remove it or set kind.",
                            if a == "vector_db_id" {
                                "\"vector_db\""
                            } else {
                                "\"external\""
                            }
                        ),
                    );
                }
            }
        }
        Some("vector_db") => {
            if vdb.is_null() {
                d.attr_error(at("vector_db_id"), "Missing vector database", "kind = \"vector_db\" needs online_store.vector_db_id, e.g. paved_vector_db.docs.id.");
            }
            if let Some(id) = vdb
                .as_str()
                .filter(|id| id.split('/').count() != 2 || id.starts_with('/') || id.ends_with('/'))
            {
                d.attr_error(
                    at("vector_db_id"),
                    "Invalid vector database ID",
                    format!("{id:?} is not NAMESPACE/NAME (use paved_vector_db.<name>.id)."),
                );
            }
            if let (Some(id), Some(ns)) = (
                vdb.as_str(),
                Some(c.get("namespace").as_str().unwrap_or("default"))
                    .filter(|_| !c.get("namespace").is_unknown()),
            ) {
                if let Some((vns, _)) = id.split_once('/').filter(|(vns, _)| *vns != ns) {
                    d.attr_error(at("vector_db_id"), "Vector database in another namespace", format!("The vector database is in namespace {vns:?} but the feature store is in {ns:?}; pods can only use Secrets of their own namespace. Put both in the same namespace."));
                }
            }
        }
        Some("external") if conn.is_null() && conn_wo.is_null() => {
            d.attr_error(
                at("connection_string"),
                "Missing connection string",
                "kind = \"external\" needs online_store.connection_string or, on Terraform/OpenTofu >= 1.11, connection_string_wo (host:port,password=…).",
            );
        }
        Some("external") => {}
        Some(k) => d.attr_error(
            at("kind"),
            "Unknown online store kind",
            format!("{k:?} is not an online store kind; use redis, vector_db or external."),
        ),
        None => {}
    }
    // Limits: documented in docs/resources/feature_store.md, "Limits".
    check_size(
        o.get("storage_size"),
        at("storage_size"),
        64 * TI,
        "64Ti",
        "online_store.storage_size",
        &mut d,
    );
    if let Some(r) = check_count(
        c.get("feature_server").get("replicas"),
        AttrPath::attr("feature_server").then("replicas"),
        1,
        1000,
        "feature_server.replicas",
        &mut d,
    ) {
        let file_backed: Vec<&str> = ["registry", "offline_store"]
            .into_iter()
            .filter(|a| match c.get(a) {
                Value::Null => true,
                v => v.as_str().is_some_and(|u| u.starts_with("file://")),
            })
            .collect();
        if r > 1 && !file_backed.is_empty() {
            d.attr_error(
                AttrPath::attr("feature_server").then("replicas"),
                "File persistence allows one feature server",
                format!("{} on the feature store's ReadWriteOnce volume, which only one pod can mount; {r} replicas would not start. Use s3:// locations for the registry and offline store, or feature_server.replicas = 1.", file_backed.iter().map(|a| format!("{a} is a file location (the default when unset)")).collect::<Vec<_>>().join(" and ")),
            );
        }
    }
    validate_cron(
        c.get("materialization").get("schedule"),
        AttrPath::attr("materialization").then("schedule"),
        &mut d,
    );
    check_team(c.get("team"), &mut d);
    for (i, t) in c.get("allowed_teams").elements().iter().enumerate() {
        if let Some(t) = t
            .as_str()
            .filter(|t| crate::resources::workload::label_value(t).is_none())
        {
            d.attr_error(AttrPath::attr("allowed_teams").index(i), "Invalid team name", format!("{t:?} is not a valid label value (1-63 letters, digits, '-', '_' or '.'), so no pod could carry it."));
        }
    }
    validate_timeouts(c, &mut d);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: &str) -> Value {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("drivers"));
        v.set_attr(
            "online_store",
            Value::object([
                ("kind", Value::string(kind)),
                ("vector_db_id", Value::Null),
                ("connection_string", Value::Null),
                ("storage_size", Value::Null),
            ]),
        );
        v
    }

    fn paths(d: &Diagnostics) -> Vec<String> {
        d.iter()
            .map(|x| x.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn allowed_teams_must_be_label_values_named_by_index() {
        let mut v = cfg("redis");
        v.set_attr(
            "allowed_teams",
            Value::string_list(["fraud", "no such team"]),
        );
        let d = validate(&v);
        assert_eq!(paths(&d), vec!["allowed_teams[1]"]);
        assert_eq!(d.0[0].summary, "Invalid team name");
        v.set_attr("allowed_teams", Value::string_list(["fraud"]));
        assert!(validate(&v).is_empty());
    }

    #[test]
    fn file_persistence_refuses_several_servers() {
        let mut v = cfg("redis");
        v.set_attr(
            "feature_server",
            Value::object([("replicas", Value::int(2)), ("image", Value::Null)]),
        );
        let d = validate(&v);
        assert_eq!(paths(&d), vec!["feature_server.replicas"]);
        assert!(
            d.0[0].detail.contains("registry") && d.0[0].detail.contains("offline_store"),
            "{}",
            d.0[0].detail
        );
        v.set_attr("registry", Value::string("s3://feast/registry.db"));
        v.set_attr("offline_store", Value::string("s3://feast/offline"));
        assert!(validate(&v).is_empty());
    }

    #[test]
    fn online_store_kinds_need_their_arguments() {
        assert_eq!(
            paths(&validate(&cfg("vector_db"))),
            vec!["online_store.vector_db_id"]
        );
        assert_eq!(
            paths(&validate(&cfg("external"))),
            vec!["online_store.connection_string"]
        );
        assert_eq!(
            paths(&validate(&cfg("memcached"))),
            vec!["online_store.kind"]
        );
        let mut v = cfg("vector_db");
        v.get_mut("online_store")
            .unwrap()
            .set_attr("vector_db_id", Value::string("other/docs"));
        assert_eq!(paths(&validate(&v)), vec!["online_store.vector_db_id"]);
        v.get_mut("online_store")
            .unwrap()
            .set_attr("vector_db_id", Value::string("default/docs"));
        assert!(validate(&v).is_empty());
    }

    #[test]
    fn locations_are_the_volume_or_s3() {
        assert!(location_error("file:///feast/data/registry.db").is_none());
        assert!(location_error("s3://b/k").is_none());
        assert!(location_error("file:///etc/passwd").is_some());
        assert!(location_error("file:///feast/data/../x").is_some());
        assert!(location_error("gs://b/k").is_some());
    }
}
