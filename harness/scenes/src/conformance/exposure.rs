//! The local lab's own exposure, as rows of the attack table: what a neighbour on the
//! network, or another user of this machine, could reach without asking the gate. On kind the
//! cluster's network and its RBAC are the boundary, so these rows are the local lab's only.

use hitl_lab::lab::LabState;

use crate::attacks::{AttackReport, run::check};

/// The local lab's own exposure, as a row of the attack table: a neighbour on the network
/// reaches nothing it started (on kind, the cluster's network is the boundary).
pub(super) async fn listeners_on_loopback(lab: &LabState) -> crate::attacks::AttackReport {
    let row = AttackReport::new(
        "lab-listeners-on-loopback",
        "every socket the local lab's processes listen on is on loopback",
        "lab",
        "harness/lab/src/sockets.rs",
    );
    row.run(async |report| {
        let exposed = hitl_lab::sockets::exposed(lab)?;
        report.observed = if exposed.is_empty() {
            "loopback only".into()
        } else {
            format!("{} exposed", exposed.len())
        };
        let what = exposed
            .iter()
            .map(|l| format!("{} (pid {}) on {}", l.name, l.pid, l.addr))
            .collect::<Vec<_>>();
        check(
            report,
            exposed.is_empty(),
            if what.is_empty() {
                "nothing listens beyond loopback".to_owned()
            } else {
                format!("listening beyond loopback: {}", what.join(", "))
            },
        );
        Ok(())
    })
    .await
}

/// Another local user reads nothing of the lab: no directory of it can be entered, and no file
/// that holds a secret (the admin token in the state file, the keys, the reset token) or the
/// audit can be read, by anyone but its owner.
pub(super) async fn secrets_owner_only(lab: &LabState) -> AttackReport {
    let row = AttackReport::new(
        "lab-secrets-owner-only",
        "another local user reads no secret, key or audit of the local lab",
        "lab",
        "harness/lab/src/on_disk.rs",
    );
    row.run(async |report| {
        let dir = hitl_lab::on_disk::lab_dir(lab)
            .ok_or_else(|| anyhow::anyhow!("the lab state names no directory"))?;
        let logs = hitl_lab::on_disk::logs(lab);
        let checked = hitl_lab::on_disk::secret_files(dir, &logs).len();
        let exposed = hitl_lab::on_disk::exposed(dir, &logs)?;
        report.observed = if exposed.is_empty() {
            format!("owner-only ({checked} files)")
        } else {
            format!("{} readable by others", exposed.len())
        };
        let what = exposed
            .iter()
            .map(|e| format!("{} ({:o})", e.path.display(), e.mode))
            .collect::<Vec<_>>();
        check(
            report,
            checked > 0,
            "the lab's secrets were found on disk".to_owned(),
        );
        check(
            report,
            exposed.is_empty(),
            if what.is_empty() {
                format!(
                    "{} and its {checked} secret files are the owner's alone",
                    dir.display()
                )
            } else {
                format!("readable by others: {}", what.join(", "))
            },
        );
        Ok(())
    })
    .await
}
