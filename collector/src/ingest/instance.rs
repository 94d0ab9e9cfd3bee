//! Two machines behind one agent identity (a cloned disk image or VM, a VDI pool built from
//! an enrolled image) told apart from one machine that rebooted or was re-imaged.
//!
//! Every snapshot says which machine and which boot took it (`machine_id`, `boot_id`). One
//! machine numbers its snapshots strictly upwards within a spool epoch, across restarts and
//! reboots, so a snapshot from a new boot always comes with a newer number: that is a reboot
//! or a re-image, and the new boot becomes the agent's instance. Copies of one agent share
//! its spool's epoch and numbering from the moment they were copied, so the one that is behind
//! sends numbers the agent already used: that snapshot *diverges*. It is rejected (stored
//! nowhere, applied to nothing, so it cannot overwrite the other machine's state), and the
//! agent is marked with when and what was seen, which `hosts` and the host page show. From
//! then on, until [`DIVERGED_FOR_MS`] after the last divergence, every snapshot of the boots
//! that diverged (up to 16 of them: a VDI pool of copies) is rejected too, also once their
//! numbers run ahead of the original's; those rejections do not extend the mark. A snapshot sent again after a lost
//! acknowledgement is not a divergence: it is the stored one, byte for byte.
//!
//! What this cannot tell: copies made of a running VM's memory share its boot id as well
//! (only their numbering diverges, which is caught); and a copy that reboots starts a boot
//! not yet marked, which is judged afresh (its first reused number marks it).
//!
//! A restored backup of one machine also diverges (its spool went back); the mark says both
//! possibilities, and a day after its last reused number the copy's snapshots, by then ahead,
//! are taken as the machine's.

pub use crate::store::{AgentInstance, DIVERGED_FOR_MS, Instance};

/// What a snapshot's instance means for its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The agent's current instance, or an agent that does not say (older versions).
    Same,
    /// Another boot, with a newer number: a reboot or a re-image; it becomes the instance.
    NewBoot,
    /// Another instance reusing a number this agent already used: another machine (or a
    /// restored copy) shares this identity.
    Diverged,
    /// A boot marked by an earlier divergence: rejected like one, without renewing the mark
    /// (so a restored copy that runs ahead is taken once the mark ends).
    Marked,
}

/// Judges a snapshot from `seen` numbered (`epoch`, `seq`) against the agent's `current`
/// instance, whose newest snapshot is numbered (`last_epoch`, `last_seq`). `epoch_is_new`:
/// the agent never stored a snapshot of `epoch` (a new spool numbering). `marked`: a boot
/// found diverging lately, whose snapshots stay rejected.
pub fn judge(
    current: &Instance,
    seen: &Instance,
    (epoch, seq): (u64, u64),
    (last_epoch, last_seq): (u64, u64),
    epoch_is_new: bool,
    marked: &[String],
) -> Verdict {
    if seen.boot_id.is_empty() || current == seen {
        return Verdict::Same;
    }
    if marked.contains(&seen.boot_id) {
        return Verdict::Marked;
    }
    if current.boot_id.is_empty() {
        return Verdict::NewBoot; // the first snapshot that says
    }
    let newer = if epoch == last_epoch {
        seq > last_seq
    } else {
        epoch_is_new
    };
    if newer {
        Verdict::NewBoot
    } else {
        Verdict::Diverged
    }
}

/// The rejection reason of a diverged snapshot and the mark's text.
pub fn divergence_text(
    agent_id: &str,
    current: &Instance,
    current_host: &str,
    seen: &Instance,
    seen_host: &str,
) -> String {
    format!(
        "agent {agent_id} is used by two machines or boots: machine {} boot {} (host {seen_host:?}) \
         sent snapshot numbers this agent already used, while machine {} boot {} (host \
         {current_host:?}) reports as it; a cloned disk image or VM, or a restored backup of this \
         machine. Enroll the copy again (`firstline-agent enroll --force` with a new token) so it \
         gets an identity of its own",
        short(&seen.machine_id),
        short(&seen.boot_id),
        short(&current.machine_id),
        short(&current.boot_id),
    )
}

fn short(id: &str) -> &str {
    if id.is_empty() {
        return "(unknown)";
    }
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(machine: &str, boot: &str) -> Instance {
        Instance {
            machine_id: machine.into(),
            boot_id: boot.into(),
        }
    }

    #[test]
    fn a_reboot_goes_on_numbering_and_a_copy_reuses_numbers() {
        let a = at("m1", "boot-a");
        // Same boot, or an agent that does not say: nothing to judge.
        assert_eq!(judge(&a, &a, (1, 5), (1, 9), false, &[]), Verdict::Same);
        assert_eq!(
            judge(&a, &Instance::default(), (1, 5), (1, 9), false, &[]),
            Verdict::Same
        );
        // The first snapshot that says.
        assert_eq!(
            judge(&Instance::default(), &a, (1, 5), (1, 4), false, &[]),
            Verdict::NewBoot
        );
        // A reboot, a re-image that kept the state folder: numbers go on.
        let rebooted = at("m1", "boot-b");
        assert_eq!(
            judge(&a, &rebooted, (1, 10), (1, 9), false, &[]),
            Verdict::NewBoot
        );
        // ... or a new spool: a new epoch.
        assert_eq!(
            judge(&a, &rebooted, (7, 1), (1, 9), true, &[]),
            Verdict::NewBoot
        );
        // A copy: behind the original, in the same numbering.
        let clone = at("m1", "boot-c");
        assert_eq!(
            judge(&a, &clone, (1, 9), (1, 9), false, &[]),
            Verdict::Diverged
        );
        assert_eq!(
            judge(&a, &clone, (1, 3), (1, 9), false, &[]),
            Verdict::Diverged
        );
        // ... or in an epoch the agent already left.
        assert_eq!(
            judge(&a, &clone, (0, 50), (1, 9), false, &[]),
            Verdict::Diverged
        );
        // A sysprepped copy has a machine id of its own: the same rule.
        // A marked copy stays rejected when its numbers run ahead.
        let marks = ["boot-x".to_owned(), "boot-c".to_owned()];
        assert_eq!(
            judge(&a, &clone, (1, 10), (1, 9), false, &marks),
            Verdict::Marked
        );
        assert_eq!(
            judge(&a, &rebooted, (1, 10), (1, 9), false, &marks),
            Verdict::NewBoot
        );
        let other_machine = at("m2", "boot-a");
        assert_eq!(
            judge(&a, &other_machine, (1, 8), (1, 9), false, &[]),
            Verdict::Diverged
        );
    }

    #[test]
    fn marks_hold_every_copy_for_a_day_after_the_last_divergence() {
        let mut marks = AgentInstance {
            current: at("m1", "boot-a"),
            ..AgentInstance::default()
        };
        assert!(marks.marked_boots(0).is_empty());
        marks.mark("boot-c1", 1_000);
        marks.mark("boot-c2", 2_000);
        marks.mark("boot-c1", 3_000);
        assert_eq!(marks.marked_boots(3_000), ["boot-c1", "boot-c2"]);
        assert_eq!(marks.marked_boots(3_000 + DIVERGED_FOR_MS - 1).len(), 2);
        assert!(marks.marked_boots(3_000 + DIVERGED_FOR_MS).is_empty());
        // After the marks ran out, a new divergence starts afresh.
        marks.mark("boot-c3", 3_000 + DIVERGED_FOR_MS);
        assert_eq!(marks.marked_boots(3_000 + DIVERGED_FOR_MS), ["boot-c3"]);
        for i in 0..40 {
            marks.mark(&format!("b{i}"), 4_000 + DIVERGED_FOR_MS);
        }
        assert_eq!(
            marks.marked_boots(4_000 + DIVERGED_FOR_MS).len(),
            crate::store::MAX_MARKED_BOOTS
        );
    }

    #[test]
    fn the_text_names_both_machines_and_what_to_do() {
        let text = divergence_text(
            "agent-1",
            &at("0123456789abcdef", "b1"),
            "pc-1",
            &at("fedcba9876543210", "b2"),
            "pc-2",
        );
        for part in [
            "0123456789ab",
            "fedcba987654",
            "\"pc-1\"",
            "\"pc-2\"",
            "enroll --force",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
    }
}
