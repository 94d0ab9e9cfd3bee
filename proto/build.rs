//! Generates the gRPC code from `firstline/v1/*.proto` with the pure-Rust `protox` parser, so a
//! fresh machine builds without `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["firstline/v1/firstline.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Operators' tools print these as JSON (`--json`).
        .message_attribute(".firstline.v1", "#[derive(serde::Serialize)]")
        .compile_fds(descriptors)?;
    Ok(())
}
