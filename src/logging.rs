//! Logs as Terraform reads them: one JSON object per line on stderr, hclog style (`@level`,
//! `@message`, `@module`, `@timestamp` with exactly six fractional digits), levels from
//! TF_LOG_PROVIDER_PAVED, TF_LOG_PROVIDER or TF_LOG. Stdout is reserved for the handshake.
//!
//! Only messages and the fields code passes explicitly are written; resource values are never
//! logged, so secrets cannot leak through logs.

use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The most verbose level to emit, from Terraform's conventions; None = off.
pub fn level_from_env(
    get: impl Fn(&str) -> Option<String>,
    default: Option<Level>,
) -> Option<Level> {
    let v = ["TF_LOG_PROVIDER_PAVED", "TF_LOG_PROVIDER", "TF_LOG"]
        .iter()
        .find_map(|k| get(k).filter(|v| !v.is_empty()));
    match v.map(|v| v.to_ascii_uppercase()).as_deref() {
        None => default,
        Some("TRACE") | Some("JSON") => Some(Level::TRACE),
        Some("DEBUG") => Some(Level::DEBUG),
        Some("INFO") => Some(Level::INFO),
        Some("WARN") => Some(Level::WARN),
        Some("ERROR") => Some(Level::ERROR),
        Some("OFF") => None,
        // Terraform treats unknown values as TRACE.
        Some(_) => Some(Level::TRACE),
    }
}

#[derive(Default)]
struct Fields(serde_json::Map<String, serde_json::Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            serde_json::Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(
            field.name().to_string(),
            serde_json::Value::String(value.to_string()),
        );
    }
}

pub struct HclogLayer {
    max: Level,
}

impl<S> Layer<S> for HclogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(f);
        }
    }

    fn enabled(&self, meta: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        meta.level() <= &self.max
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if meta.level() > &self.max {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let mut m = serde_json::Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(sf) = span.extensions().get::<Fields>() {
                    for (k, v) in &sf.0 {
                        if !v.as_str().is_some_and(str::is_empty) {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        let message =
            f.0.remove("message")
                .unwrap_or_else(|| serde_json::Value::String(String::new()));
        m.extend(f.0);
        m.insert("@message".into(), message);
        m.insert("@level".into(), level_name(meta.level()).into());
        m.insert(
            "@module".into(),
            format!("provider.terraform-provider-paved.{}", meta.target()).into(),
        );
        m.insert("@timestamp".into(), timestamp().into());
        let mut line = serde_json::to_vec(&serde_json::Value::Object(m)).unwrap_or_default();
        line.push(b'\n');
        let _ = std::io::stderr().lock().write_all(&line);
    }
}

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// `2006-01-02T15:04:05.000000Z07:00`, the layout go-plugin parses.
pub fn timestamp() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Installs the logger. `default` applies when no TF_LOG variable is set.
pub fn init(default: Option<Level>) {
    use tracing_subscriber::prelude::*;
    if let Some(max) = level_from_env(|k| std::env::var(k).ok(), default) {
        let _ = tracing_subscriber::registry()
            .with(HclogLayer { max })
            .try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_terraform_precedence() {
        let env = |pairs: Vec<(&'static str, &'static str)>| {
            move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string())
        };
        assert_eq!(level_from_env(env(vec![]), None), None);
        assert_eq!(
            level_from_env(env(vec![("TF_LOG", "debug")]), None),
            Some(Level::DEBUG)
        );
        assert_eq!(
            level_from_env(
                env(vec![("TF_LOG", "debug"), ("TF_LOG_PROVIDER", "ERROR")]),
                None
            ),
            Some(Level::ERROR)
        );
        assert_eq!(
            level_from_env(env(vec![("TF_LOG", "JSON")]), None),
            Some(Level::TRACE)
        );
        assert_eq!(
            level_from_env(env(vec![("TF_LOG", "OFF")]), Some(Level::INFO)),
            None
        );
    }

    #[test]
    fn timestamp_has_six_fraction_digits() {
        let t = timestamp();
        let frac = t.split('.').nth(1).unwrap();
        assert_eq!(frac.len(), 7, "{t}"); // 6 digits + Z
        assert!(t.ends_with('Z'));
    }
}
