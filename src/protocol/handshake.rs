//! The go-plugin handshake: the environment Terraform sets, and the one line the plugin prints
//! on stdout so Terraform can connect.

pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
pub const PROTOCOL_VERSION: u32 = 6;
/// The provider address used as the TF_REATTACH_PROVIDERS key. Written without a hostname:
/// Terraform and OpenTofu both parse the key as a provider source and fill in their own default
/// registry (registry.terraform.io, registry.opentofu.org), so one key attaches either CLI.
pub const PROVIDER_ADDRESS: &str = "paved/paved";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HandshakeError {
    #[error("This binary is a plugin. These are not meant to be executed directly.\nPlease execute the program that consumes these plugins, which will\nload any plugins automatically (or run it with --debug to attach Terraform to it).")]
    NoCookie,
    #[error("Terraform offers plugin protocol versions {0:?}; this provider speaks only version 6. Use Terraform 1.0 or newer.")]
    NoCommonVersion(String),
    #[error("PLUGIN_MIN_PORT/PLUGIN_MAX_PORT are not a valid port range: {0}")]
    BadPorts(String),
}

/// What Terraform asked for, read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub min_port: u16,
    pub max_port: u16,
    /// PEM of Terraform's client certificate when AutoMTLS is on.
    pub client_cert: Option<String>,
}

pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Launch, HandshakeError> {
    if get(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
        return Err(HandshakeError::NoCookie);
    }
    if let Some(v) = get("PLUGIN_PROTOCOL_VERSIONS").filter(|v| !v.is_empty()) {
        if !v.split(',').any(|x| x.trim() == "6") {
            return Err(HandshakeError::NoCommonVersion(v));
        }
    }
    let port = |k: &str, d: u16| -> Result<u16, HandshakeError> {
        match get(k).filter(|v| !v.is_empty()) {
            None => Ok(d),
            Some(v) => v
                .parse()
                .map_err(|_| HandshakeError::BadPorts(format!("{k}={v}"))),
        }
    };
    let (min_port, max_port) = (
        port("PLUGIN_MIN_PORT", 10000)?,
        port("PLUGIN_MAX_PORT", 25000)?,
    );
    if min_port > max_port {
        return Err(HandshakeError::BadPorts(format!("{min_port} > {max_port}")));
    }
    Ok(Launch {
        min_port,
        max_port,
        client_cert: get("PLUGIN_CLIENT_CERT").filter(|c| !c.trim().is_empty()),
    })
}

/// `1|6|tcp|127.0.0.1:PORT|grpc|CERT`; the certificate field is left out without TLS.
pub fn line(addr: &std::net::SocketAddr, cert_field: Option<&str>) -> String {
    let mut s = format!("1|{PROTOCOL_VERSION}|tcp|{addr}|grpc");
    if let Some(c) = cert_field {
        s.push('|');
        s.push_str(c);
    }
    s.push('\n');
    s
}

/// The TF_REATTACH_PROVIDERS value for debug mode. `Test: true` makes Terraform use protocol 6
/// and leave the process's lifecycle to whoever started it.
pub fn reattach_json(addr: &std::net::SocketAddr, pid: u32) -> String {
    serde_json::json!({
        PROVIDER_ADDRESS: {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": pid,
            "Test": true,
            "Addr": {"Network": "tcp", "String": addr.to_string()}
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn refuses_without_cookie() {
        assert_eq!(from_env(env(&[])), Err(HandshakeError::NoCookie));
        assert_eq!(
            from_env(env(&[(MAGIC_COOKIE_KEY, "x")])),
            Err(HandshakeError::NoCookie)
        );
    }

    #[test]
    fn needs_protocol_six() {
        let e = from_env(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "4,5"),
        ]));
        assert!(matches!(e, Err(HandshakeError::NoCommonVersion(_))));
        let ok = from_env(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "6,5"),
        ]))
        .unwrap();
        assert_eq!(
            (ok.min_port, ok.max_port, ok.client_cert),
            (10000, 25000, None)
        );
    }

    #[test]
    fn line_format() {
        let a: std::net::SocketAddr = "127.0.0.1:12345".parse().unwrap();
        assert_eq!(
            line(&a, Some("MIIB")),
            "1|6|tcp|127.0.0.1:12345|grpc|MIIB\n"
        );
        assert_eq!(line(&a, None), "1|6|tcp|127.0.0.1:12345|grpc\n");
        let j: serde_json::Value = serde_json::from_str(&reattach_json(&a, 7)).unwrap();
        assert_eq!(j[PROVIDER_ADDRESS]["Test"], true);
        assert_eq!(j[PROVIDER_ADDRESS]["ProtocolVersion"], 6);
    }
}
