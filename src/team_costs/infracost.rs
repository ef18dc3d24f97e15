//! `costs --plan plan.json --format infracost`: paved's plan-time costs in Infracost's JSON
//! format, so `infracost output --path paved.json --path infracost.json` shows paved's
//! resources beside the rest of a team's infrastructure (Infracost itself lists every
//! `paved_*` resource as unsupported).
//!
//! Input is `terraform show -json PLANFILE` (or `tofu show -json`). Each `paved_*` resource
//! change becomes one Infracost resource priced at its `monthly_cost_usd.max` — the bound a
//! budget is checked against — with the minimum in the component's name; the state before
//! the change is the "past" breakdown, so Infracost's diff shows what the plan adds.

use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// Infracost's output format version this writes (`version` in its schema).
pub const FORMAT_VERSION: &str = "0.2";

fn money(x: f64) -> String {
    // Infracost writes decimals as strings; keep cents and the hourly figure's precision.
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// One resource's monthly range from a `before` / `after` object: None when the resource has no
/// known cost there (unknown until apply, or no price).
fn range(v: &Json) -> Option<(f64, f64)> {
    let m = &v["monthly_cost_usd"];
    Some((m["min"].as_f64()?, m["max"].as_f64()?))
}

fn resource(address: &str, rtype: &str, r: Option<(f64, f64)>) -> Json {
    let Some((min, max)) = r else {
        return json!({
            "name": address,
            "metadata": {"paved": {"resourceType": rtype, "reason": "cost unknown until apply"}},
            "hourlyCost": null,
            "monthlyCost": null,
            "costComponents": [],
            "subresources": [],
        });
    };
    let hourly = max / crate::resources::cost::HOURS_PER_MONTH;
    json!({
        "name": address,
        "metadata": {"paved": {"resourceType": rtype, "monthlyMinUSD": money(min), "monthlyMaxUSD": money(max)}},
        "hourlyCost": money(hourly),
        "monthlyCost": money(max),
        "costComponents": [{
            "name": format!("At the resource's bounds, maximum (minimum {} USD/month; paved estimate)", money(min)),
            "unit": "months",
            "hourlyQuantity": money(1.0 / crate::resources::cost::HOURS_PER_MONTH),
            "monthlyQuantity": "1",
            "price": money(max),
            "hourlyCost": money(hourly),
            "monthlyCost": money(max),
        }],
        "subresources": [],
    })
}

fn breakdown(resources: Vec<Json>) -> Json {
    let sum = |k: &str| -> f64 {
        resources
            .iter()
            .filter_map(|r| r[k].as_str().and_then(|s| s.parse::<f64>().ok()))
            .sum()
    };
    let (h, m) = (sum("hourlyCost"), sum("monthlyCost"));
    json!({"resources": resources, "totalHourlyCost": money(h), "totalMonthlyCost": money(m)})
}

/// Converts a plan in `terraform show -json` form. `path` names the project; `now` is the
/// RFC 3339 time written as `timeGenerated`. Errors say what is wrong with the input.
pub fn convert(plan: &Json, path: &str, now: &str) -> Result<Json, String> {
    let changes = plan["resource_changes"].as_array().ok_or(
        "not a plan in JSON form: no resource_changes (write it with `terraform show -json PLANFILE`)",
    )?;
    let mut now_res = vec![];
    let mut past_res = vec![];
    let mut diff_res = vec![];
    let mut supported: BTreeMap<String, i64> = BTreeMap::new();
    let mut no_price: BTreeMap<String, i64> = BTreeMap::new();
    let mut detected = 0;
    for c in changes {
        let (Some(address), Some(rtype)) = (c["address"].as_str(), c["type"].as_str()) else {
            continue;
        };
        if !rtype.starts_with("paved_") || c["mode"].as_str() == Some("data") {
            continue;
        }
        detected += 1;
        let change = &c["change"];
        let before = (!change["before"].is_null()).then(|| range(&change["before"]));
        let after = (!change["after"].is_null()).then(|| range(&change["after"]));
        if let Some(a) = after {
            if a.is_some() {
                *supported.entry(rtype.into()).or_default() += 1;
            } else {
                *no_price.entry(rtype.into()).or_default() += 1;
            }
            now_res.push(resource(address, rtype, a));
        }
        if let Some(b) = before {
            past_res.push(resource(address, rtype, b));
        }
        let diff = match (before.flatten(), after.flatten()) {
            (b, a) if b == a && before.is_some() == after.is_some() => None,
            (b, a) => {
                let b = b.unwrap_or((0.0, 0.0));
                let a = a.unwrap_or((0.0, 0.0));
                Some((a.0 - b.0, a.1 - b.1))
            }
        };
        if let Some(d) = diff {
            diff_res.push(resource(address, rtype, Some(d)));
        }
    }
    let now_b = breakdown(now_res);
    let past_b = breakdown(past_res);
    let diff_b = breakdown(diff_res);
    let total = |b: &Json, k: &str| b[k].clone();
    let priced: i64 = supported.values().sum();
    let unpriced: i64 = no_price.values().sum();
    let summary = json!({
        "totalResources": detected,
        "totalDetectedResources": detected,
        "totalSupportedResources": priced,
        "totalUnsupportedResources": 0,
        "totalUsageBasedResources": 0,
        "totalNoPriceResources": unpriced,
        "supportedResourceCounts": supported,
        "unsupportedResourceCounts": {},
        "noPriceResourceCounts": no_price,
    });
    Ok(json!({
        "version": FORMAT_VERSION,
        "currency": "USD",
        "projects": [{
            "name": path,
            "metadata": {"path": path, "type": "terraform_plan_json"},
            "pastBreakdown": past_b,
            "breakdown": now_b,
            "diff": diff_b,
            "summary": summary,
        }],
        "totalHourlyCost": total(&now_b, "totalHourlyCost"),
        "totalMonthlyCost": total(&now_b, "totalMonthlyCost"),
        "pastTotalHourlyCost": total(&past_b, "totalHourlyCost"),
        "pastTotalMonthlyCost": total(&past_b, "totalMonthlyCost"),
        "diffTotalHourlyCost": total(&diff_b, "totalHourlyCost"),
        "diffTotalMonthlyCost": total(&diff_b, "totalMonthlyCost"),
        "timeGenerated": now,
        "summary": summary,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_becomes_breakdown_past_and_diff() {
        let plan = json!({"resource_changes": [
            {"address": "paved_gpu_compute_pool.train", "mode": "managed", "type": "paved_gpu_compute_pool",
             "change": {"actions": ["create"], "before": null,
                        "after": {"monthly_cost_usd": {"min": 734.38, "max": 2203.14}}}},
            {"address": "paved_vector_db.docs", "mode": "managed", "type": "paved_vector_db",
             "change": {"actions": ["update"], "before": {"monthly_cost_usd": {"min": 10.0, "max": 10.0}},
                        "after": {"monthly_cost_usd": {"min": 20.0, "max": 20.0}}}},
            {"address": "paved_model_endpoint.chat", "mode": "managed", "type": "paved_model_endpoint",
             "change": {"actions": ["create"], "before": null, "after": {"name": "chat"}}},
            {"address": "aws_s3_bucket.b", "mode": "managed", "type": "aws_s3_bucket",
             "change": {"actions": ["create"], "before": null, "after": {}}}
        ]});
        let out = convert(&plan, "plan.json", "2026-12-03T00:00:00Z").unwrap();
        assert_eq!(out["totalMonthlyCost"], "2223.14");
        assert_eq!(out["pastTotalMonthlyCost"], "10");
        assert_eq!(out["diffTotalMonthlyCost"], "2213.14");
        let p = &out["projects"][0];
        assert_eq!(p["breakdown"]["resources"].as_array().unwrap().len(), 3);
        assert_eq!(p["summary"]["totalDetectedResources"], 3);
        assert_eq!(
            p["summary"]["noPriceResourceCounts"]["paved_model_endpoint"],
            1
        );
        let pool = &p["breakdown"]["resources"][0];
        assert_eq!(pool["monthlyCost"], "2203.14");
        assert_eq!(pool["costComponents"][0]["monthlyCost"], "2203.14");
        assert!(p["breakdown"]["resources"][2]["monthlyCost"].is_null());
        assert!(convert(&json!({}), "x", "t")
            .unwrap_err()
            .contains("terraform show -json"));
        assert_eq!(money(0.0), "0");
        assert_eq!(money(1.5), "1.5");
    }
}
