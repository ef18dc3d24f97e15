//! Compiles the protocol definitions under proto/ with a vendored protoc, so a fresh machine
//! needs no system protobuf compiler.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &["proto/tfplugin6.proto", "proto/goplugin.proto"],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    // The provider binary is started for every Terraform command (several times each); as a
    // position-dependent executable the loader has no relocations to apply to its 40 MB image,
    // which cuts start-up to the handshake by about a quarter (benches/handshake.sh). Go
    // providers are built the same way; shared libraries, heap and stack stay randomised.
    // glibc targets only: the static musl release binary (package/release.sh) is made
    // non-PIE by `-C relocation-model=static` instead, as `-no-pie` would fight rustc's
    // `-static-pie` link line there.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    Ok(())
}
