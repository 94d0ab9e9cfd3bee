//! Generates the gRPC code from `firstline/v1/*.proto` with the pure-Rust `protox` parser, so a
//! fresh machine builds without `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["firstline/v1/firstline.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    // The encoded descriptors, for gRPC reflection (grpcurl and similar tools).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("firstline_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Operators' tools print these as JSON (`--json`).
        .message_attribute(".firstline.v1", "#[derive(serde::Serialize)]")
        .compile_fds(descriptors)?;
    Ok(())
}
