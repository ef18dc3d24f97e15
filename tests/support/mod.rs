//! What the process-level tests share: starting the real provider binary the way Terraform does
//! (without AutoMTLS, the reattach/plaintext path) and reading its handshake line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// Starts the plugin and returns it with its address (`http://127.0.0.1:PORT`).
pub fn start_plugin() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_terraform-provider-paved"))
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env_remove("PLUGIN_CLIENT_CERT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("handshake line");
    let parts: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(&parts[..3], &["1", "6", "tcp"], "{line}");
    assert_eq!(parts[4], "grpc");
    (child, format!("http://{}", parts[3]))
}
