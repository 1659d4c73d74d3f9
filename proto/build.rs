//! Compiles `proto/*.proto` with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/kindling/driver/v1/driver.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        // The only client is the Python runner; a generated Rust client would clash with `Connect`.
        .build_client(false)
        .compile_fds(fds)?;
    Ok(())
}
