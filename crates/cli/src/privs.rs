//! Privileges of `connect`: require CAP_NET_ADMIN, then keep only the capabilities the engine
//! uses and set no_new_privs.
//!
//! Capabilities are per thread: [`drop_to_needed`] must run before the async runtime starts its
//! threads (threads created later inherit the reduced sets).

use caps::{CapSet, Capability, CapsHashSet};

use crate::failure::{EXIT_HOST, Failure};

/// What the engine needs: CAP_NET_ADMIN (TUN, addresses, routes, DNS, for the whole run),
/// CAP_NET_RAW (raw ESP, IP protocol 50) and CAP_NET_BIND_SERVICE (UDP 500).
pub const KEEP: [Capability; 3] = [
    Capability::CAP_NET_ADMIN,
    Capability::CAP_NET_RAW,
    Capability::CAP_NET_BIND_SERVICE,
];

/// The message (after "l2sec: ") when CAP_NET_ADMIN is missing.
pub const MISSING_NET_ADMIN: &str = "connect needs CAP_NET_ADMIN: run it as root (sudo) or grant it with setcap/AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW";

/// The capability sets of one thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapState {
    /// Effective set.
    pub effective: CapsHashSet,
    /// Permitted set.
    pub permitted: CapsHashSet,
    /// Inheritable set.
    pub inheritable: CapsHashSet,
    /// Ambient set.
    pub ambient: CapsHashSet,
    /// Bounding set.
    pub bounding: CapsHashSet,
}

impl CapState {
    /// Reads the calling thread's sets.
    pub fn current() -> Result<Self, Failure> {
        let read = |set: CapSet| {
            caps::read(None, set)
                .map_err(|e| Failure::internal(format!("cannot read capabilities: {e}")))
        };
        Ok(CapState {
            effective: read(CapSet::Effective)?,
            permitted: read(CapSet::Permitted)?,
            inheritable: read(CapSet::Inheritable)?,
            ambient: read(CapSet::Ambient)?,
            bounding: read(CapSet::Bounding)?,
        })
    }
}

/// The sets to end up with, computed from the current ones by [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropPlan {
    /// Effective set afterwards: every kept capability that is permitted.
    pub effective: CapsHashSet,
    /// Permitted set afterwards.
    pub permitted: CapsHashSet,
    /// Inheritable set afterwards.
    pub inheritable: CapsHashSet,
    /// Ambient capabilities to lower, in index order.
    pub ambient_drop: Vec<Capability>,
    /// Bounding capabilities to drop, in index order (empty without CAP_SETPCAP).
    pub bounding_drop: Vec<Capability>,
    /// True when the bounding set keeps capabilities beyond [`KEEP`] because CAP_SETPCAP is not
    /// permitted (a setcap binary, or a unit that already bounds it; no_new_privs still applies).
    pub bounding_left: bool,
}

fn keep_set() -> CapsHashSet {
    KEEP.into_iter().collect()
}

fn sorted(it: impl Iterator<Item = Capability>) -> Vec<Capability> {
    let mut v: Vec<Capability> = it.collect();
    v.sort_by_key(Capability::index);
    v
}

/// Decides what to keep. Fails (exit 4, [`MISSING_NET_ADMIN`]) when CAP_NET_ADMIN is not permitted;
/// a permitted but not effective CAP_NET_ADMIN is raised.
pub fn plan(state: &CapState) -> Result<DropPlan, Failure> {
    if !state.permitted.contains(&Capability::CAP_NET_ADMIN) {
        return Err(Failure {
            code: EXIT_HOST,
            message: MISSING_NET_ADMIN.into(),
        });
    }
    let keep = keep_set();
    let permitted: CapsHashSet = state.permitted.intersection(&keep).copied().collect();
    let can_bound = state.permitted.contains(&Capability::CAP_SETPCAP);
    let extra_bounding = sorted(state.bounding.difference(&keep).copied());
    let (bounding_drop, bounding_left) = if can_bound {
        (extra_bounding, false)
    } else {
        (Vec::new(), !extra_bounding.is_empty())
    };
    Ok(DropPlan {
        effective: permitted.clone(),
        inheritable: state.inheritable.intersection(&keep).copied().collect(),
        ambient_drop: sorted(state.ambient.difference(&keep).copied()),
        bounding_drop,
        bounding_left,
        permitted,
    })
}

/// Applies `plan` to the calling thread and sets no_new_privs.
pub fn apply(plan: &DropPlan) -> Result<(), Failure> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Failure::internal(format!("cannot drop privileges ({what}): {e}"))
    };
    if !plan.bounding_drop.is_empty() {
        // PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set.
        caps::raise(None, CapSet::Effective, Capability::CAP_SETPCAP)
            .map_err(|e| fail("raise CAP_SETPCAP", &e))?;
        for &c in &plan.bounding_drop {
            caps::drop(None, CapSet::Bounding, c).map_err(|e| fail("bounding set", &e))?;
        }
    }
    for &c in &plan.ambient_drop {
        caps::drop(None, CapSet::Ambient, c).map_err(|e| fail("ambient set", &e))?;
    }
    // Effective first: it must stay within the permitted set at every step.
    caps::set(None, CapSet::Effective, &plan.effective).map_err(|e| fail("effective set", &e))?;
    caps::set(None, CapSet::Inheritable, &plan.inheritable)
        .map_err(|e| fail("inheritable set", &e))?;
    caps::set(None, CapSet::Permitted, &plan.permitted).map_err(|e| fail("permitted set", &e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| fail("no_new_privs", &e))?;
    Ok(())
}

/// Fails with [`MISSING_NET_ADMIN`] (exit 4) when the process cannot get CAP_NET_ADMIN.
pub fn require_net_admin() -> Result<(), Failure> {
    plan(&CapState::current()?).map(drop)
}

/// Keeps only [`KEEP`] in the effective, permitted, inheritable, ambient and (with CAP_SETPCAP)
/// bounding sets of the calling thread, and sets no_new_privs. Call it while the process has
/// one thread.
pub fn drop_to_needed() -> Result<(), Failure> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(1, Iterator::count);
    if threads > 1 {
        tracing::warn!(
            "dropping capabilities with {threads} threads running: only this thread's are dropped"
        );
    }
    let p = plan(&CapState::current()?)?;
    if p.bounding_left {
        tracing::debug!("no CAP_SETPCAP: the bounding set stays as is (no_new_privs is set)");
    }
    apply(&p)?;
    tracing::debug!(
        "capabilities kept: {:?}",
        sorted(p.permitted.iter().copied())
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    fn set(c: &[Capability]) -> CapsHashSet {
        c.iter().copied().collect()
    }

    fn all_known() -> CapsHashSet {
        caps::all()
    }

    #[test]
    fn root_keeps_three_and_drops_the_rest_of_the_bounding_set() {
        let all = all_known();
        let s = CapState {
            effective: all.clone(),
            permitted: all.clone(),
            inheritable: CapsHashSet::new(),
            ambient: CapsHashSet::new(),
            bounding: all.clone(),
        };
        let p = plan(&s).unwrap();
        let keep = set(&[CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE]);
        assert_eq!(p.effective, keep);
        assert_eq!(p.permitted, keep);
        assert!(p.inheritable.is_empty() && p.ambient_drop.is_empty());
        assert_eq!(p.bounding_drop.len(), all.len() - 3);
        assert!(p.bounding_drop.contains(&CAP_SYS_ADMIN));
        assert!(p.bounding_drop.contains(&CAP_SETPCAP));
        assert!(!p.bounding_drop.contains(&CAP_NET_ADMIN));
        assert!(
            p.bounding_drop
                .windows(2)
                .all(|w| w[0].index() < w[1].index())
        );
        assert!(!p.bounding_left);
    }

    #[test]
    fn systemd_unit_with_ambient_caps() {
        // User=, AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW, CapabilityBoundingSet= the same.
        let two = set(&[CAP_NET_ADMIN, CAP_NET_RAW]);
        let s = CapState {
            effective: two.clone(),
            permitted: two.clone(),
            inheritable: two.clone(),
            ambient: two.clone(),
            bounding: two.clone(),
        };
        let p = plan(&s).unwrap();
        assert_eq!(p.effective, two);
        assert_eq!(p.permitted, two);
        assert_eq!(p.inheritable, two);
        assert!(p.ambient_drop.is_empty() && p.bounding_drop.is_empty());
        assert!(!p.bounding_left);
    }

    #[test]
    fn setcap_binary_cannot_shrink_the_bounding_set() {
        // setcap cap_net_admin,cap_net_raw,cap_dac_override+p: not effective until raised.
        let s = CapState {
            effective: CapsHashSet::new(),
            permitted: set(&[CAP_NET_ADMIN, CAP_NET_RAW, CAP_DAC_OVERRIDE]),
            inheritable: set(&[CAP_DAC_OVERRIDE]),
            ambient: set(&[CAP_DAC_OVERRIDE]),
            bounding: all_known(),
        };
        let p = plan(&s).unwrap();
        assert_eq!(p.effective, set(&[CAP_NET_ADMIN, CAP_NET_RAW]));
        assert_eq!(p.permitted, set(&[CAP_NET_ADMIN, CAP_NET_RAW]));
        assert!(p.inheritable.is_empty());
        assert_eq!(p.ambient_drop, vec![CAP_DAC_OVERRIDE]);
        assert!(p.bounding_drop.is_empty());
        assert!(p.bounding_left);
    }

    #[test]
    fn without_net_admin_one_clear_line_and_exit_4() {
        for s in [
            CapState::default(),
            CapState {
                // Effective-only is impossible in the kernel; permitted is what counts.
                effective: set(&[CAP_NET_ADMIN]),
                permitted: set(&[CAP_NET_RAW, CAP_SETPCAP]),
                bounding: all_known(),
                ..CapState::default()
            },
        ] {
            let f = plan(&s).unwrap_err();
            assert_eq!(f.code, 4);
            assert_eq!(f.message, MISSING_NET_ADMIN);
            assert!(!f.message.contains('\n'));
            assert!(
                f.message
                    .starts_with("connect needs CAP_NET_ADMIN: run it as root")
            );
        }
    }

    /// Applies the plan for real in a fresh thread (capabilities and no_new_privs are per
    /// thread, so the test process keeps its own).
    #[test]
    fn drop_in_a_thread() {
        let before = CapState::current().unwrap();
        let got = std::thread::spawn(|| {
            let r = drop_to_needed();
            let nnp = nix::sys::prctl::get_no_new_privs().unwrap();
            (r, CapState::current().unwrap(), nnp)
        })
        .join()
        .unwrap();
        let (r, after, nnp) = got;
        let keep = keep_set();
        if before.permitted.contains(&CAP_NET_ADMIN) {
            r.unwrap();
            assert!(nnp);
            let expect: CapsHashSet = before.permitted.intersection(&keep).copied().collect();
            assert_eq!(after.permitted, expect);
            assert_eq!(after.effective, expect);
            assert!(after.ambient.is_subset(&keep));
            assert!(after.inheritable.is_subset(&keep));
            if before.permitted.contains(&CAP_SETPCAP) {
                assert!(after.bounding.is_subset(&keep), "{:?}", after.bounding);
            }
            // This thread is untouched.
            assert_eq!(CapState::current().unwrap(), before);
        } else {
            let f = r.unwrap_err();
            assert_eq!((f.code, f.message.as_str()), (4, MISSING_NET_ADMIN));
            assert!(!nnp);
            assert_eq!(after, before);
        }
    }
}
