//! Fuzz target: a report as the collector receives it: protobuf bytes decoded as a
//! `ReportRequest`, then checked and converted into the collector's own facts
//! (`report::Batch::from_wire`), the edge nothing from an agent gets past unchecked. Any bytes
//! must give a decode error, a refused batch or a batch of valid and rejected snapshots in
//! ascending sequence order, never a panic.

#![no_main]

use firstline_collector::report::{Batch, Entry};
use firstline_proto::v1::ReportRequest;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// The collector's clock at arrival (2027-01-15), later than the seeds' snapshot times.
const ARRIVAL_MS: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ReportRequest::decode(data) else {
        return;
    };
    let sent = request.snapshots.len();
    let Ok(batch) = Batch::from_wire(request, ARRIVAL_MS) else {
        return;
    };
    assert_eq!(
        batch.entries.len(),
        sent,
        "every snapshot is kept or rejected"
    );
    assert!(
        batch.entries.windows(2).all(|w| w[0].seq() < w[1].seq()),
        "entries in ascending sequence order"
    );
    for entry in &batch.entries {
        if let Entry::Valid(snapshot) = entry {
            assert!(
                snapshot.at_ms <= ARRIVAL_MS,
                "no snapshot after its arrival"
            );
        }
    }
});
