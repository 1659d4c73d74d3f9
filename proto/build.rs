//! Compiles `proto/*.proto` with protox (pure Rust), so no system `protoc` is needed. Each file
//! is generated with its own settings: which side of a service Rust needs differs per file.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The only client of the driver link is the Python runner; a generated Rust client would
    // clash with its `Connect` rpc.
    generate("proto/kindling/driver/v1/driver.proto", true, false)?;
    // Core nodes are both sides of the Raft link.
    generate("proto/kindling/raft/v1/raft.proto", true, true)?;
    Ok(())
}

fn generate(proto: &str, server: bool, client: bool) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(server)
        .build_client(client)
        .compile_fds(fds)?;
    Ok(())
}
