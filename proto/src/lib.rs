//! The Firstline wire contract: generated `firstline.v1` messages and services, plus the limits
//! both sides agree on. Nothing else lives here; domain types and validation belong to the
//! collector and the agent.

/// Generated code for package `firstline.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("firstline.v1");

    /// The encoded `FileDescriptorSet` of `firstline.v1`, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/firstline_descriptor.bin"));
}

/// Bounds the collector enforces and the agent respects when it builds batches.
pub mod limits {
    /// Largest encoded request the collector decodes (gRPC's default is 4 MiB).
    pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
    /// Most snapshots in one Report call.
    pub const MAX_BATCH_SNAPSHOTS: usize = 64;
    /// Most filesystems in one snapshot.
    pub const MAX_FILESYSTEMS: usize = 256;
    /// Longest mount point, device, host name or other short string, in bytes.
    pub const MAX_STRING_BYTES: usize = 4096;
    /// Most pending updates listed in one snapshot (the counts stay exact).
    pub const MAX_UPDATES: usize = 500;
    /// Most antivirus products, connectivity checks or VPN interfaces of each kind.
    pub const MAX_ITEMS: usize = 32;
    /// Longest enrollment CSR in bytes.
    pub const MAX_CSR_BYTES: usize = 16 * 1024;
}
