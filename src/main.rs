//! `terraform-provider-paved`: started by Terraform as a plugin, or with `--debug` by a person or
//! a test harness that attaches Terraform through TF_REATTACH_PROVIDERS.

use paved::protocol::{handshake, server};
use paved::provider::Provider;
use std::sync::Arc;

fn main() {
    // `crossplane …` runs the Crossplane controller (or its CRD generator) instead of the
    // Terraform plugin; it never prints a handshake.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("crossplane") {
        std::process::exit(paved::crossplane::cli::main(&args[2..]));
    }
    // `costs …` prints the live cost report (team_costs::cli).
    if args.get(1).map(String::as_str) == Some("costs") {
        std::process::exit(paved::team_costs::cli::main(&args[2..]));
    }
    // `audit …` prints the audit trail (audit::cli).
    if args.get(1).map(String::as_str) == Some("audit") {
        std::process::exit(paved::audit::cli::main(&args[2..]));
    }
    let debug = std::env::args()
        .skip(1)
        .any(|a| a == "--debug" || a == "-debug");
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "version")
    {
        println!("terraform-provider-paved {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let announced = if debug {
        None
    } else {
        let launch = handshake::from_env(|k| std::env::var(k).ok()).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1);
        });
        // The handshake line first; everything else is set up while Terraform connects.
        match server::announce(&launch) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("[ERROR] terraform-provider-paved: {e}");
                std::process::exit(1);
            }
        }
    };
    paved::logging::init(if debug {
        Some(tracing::Level::INFO)
    } else {
        Some(tracing::Level::WARN)
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("[ERROR] could not start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let provider = Arc::new(Provider::default());
    let result = rt.block_on(async move {
        if !debug {
            // Ctrl-C in the terminal reaches the plugin too; Terraform cancels through
            // StopProvider instead, so the signal is swallowed like go-plugin does.
            tokio::spawn(async {
                loop {
                    if tokio::signal::ctrl_c().await.is_err() {
                        break;
                    }
                }
            });
        }
        match announced {
            Some(a) => server::serve_plugin(provider, a).await,
            None => server::serve_debug(provider).await,
        }
    });
    if let Err(e) = result {
        eprintln!("[ERROR] terraform-provider-paved: {e}");
        std::process::exit(1);
    }
}
