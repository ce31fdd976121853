// SPDX-License-Identifier: GPL-2.0

//! The harness's cases, one file per area, each registering its own (`register!`); [`all`]
//! gives them in run order.

mod attach;
mod device;
mod fail_nth;
pub mod fuzz;
pub mod hostile;
mod kvm_oracle;
pub use kvm_oracle::hcall_cost;
pub mod mmap;
mod nested;
pub use nested::bench as nested_bench;
mod stress;
mod table;
mod vfio;

use crate::CaseResult;

/// What a case needs of the module besides its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Nothing more: a production module passes it.
    Device,
    /// The mock backend (`CONFIG_KVM_TCE_REPLAY_MOCK`, loaded with `mock=1`): the case skips
    /// without it.
    Mock,
}

/// A case: its name, what it needs and its function.
pub struct Case {
    pub name: &'static str,
    pub needs: Needs,
    pub run: fn() -> CaseResult,
}

/// A case file's cases, in run order, each named for its function (as kselftest_harness.h's
/// `TEST()` names a test): `register! { device name, mock other, ... }` at the end of the file
/// declares its `CASES`.
macro_rules! register {
    ($($needs:ident $name:ident),* $(,)?) => {
        /// This file's cases, in run order.
        pub(super) const CASES: &[super::Case] = &[$(super::Case {
            name: stringify!($name),
            needs: super::register!(@needs $needs),
            run: $name,
        }),*];
    };
    (@needs device) => { super::Needs::Device };
    (@needs mock) => { super::Needs::Mock };
}
use register;

/// Every case file's cases, in run order: the files in this order, each file's cases in its own.
const FILES: &[&[Case]] = &[
    device::CASES,
    table::CASES,
    mmap::CASES,
    attach::CASES,
    vfio::CASES,
    hostile::CASES,
    fail_nth::CASES,
    fuzz::CASES,
    kvm_oracle::CASES,
    nested::CASES,
    stress::CASES,
];

/// Every case, in run order.
pub fn all() -> impl Iterator<Item = &'static Case> {
    FILES.iter().flat_map(|cases| cases.iter())
}

#[cfg(test)]
mod tests {
    /// Every `pub fn NAME() -> CaseResult` of a case file is registered under its name: a case
    /// cannot be written and then forgotten.
    #[test]
    fn every_case_function_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cases");
        let registered: Vec<&str> = super::all().map(|c| c.name).collect();
        let mut found = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let Some(rest) = line.strip_prefix("pub fn ") else {
                    continue;
                };
                if let Some(name) = rest.strip_suffix("() -> CaseResult {") {
                    found += 1;
                    assert!(
                        registered.contains(&name),
                        "{}: {name} is not registered",
                        path.display()
                    );
                }
            }
        }
        assert_eq!(
            found,
            registered.len(),
            "registered cases without a function"
        );
    }
}
