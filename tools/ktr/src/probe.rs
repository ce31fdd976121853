// SPDX-License-Identifier: GPL-2.0

//! `ktr probe`: whether the module is loaded and its device usable, the capabilities it
//! answers, whether its mock backend is there, the page size and the ioctl numbers of this
//! architecture.

use kvm_tce_replay::uapi::*;
use kvm_tce_replay::uapi_test::*;
use kvm_tce_replay::{Cap, MockBackend, TceReplay};
use serde::Serialize;
use std::path::Path;

/// Where the kernel lists the module (loaded, or built in with parameters).
const SYSFS_MODULE: &str = "/sys/module/kvm_tce_replay";

/// One capability and the module's answer.
#[derive(Serialize)]
struct Capability {
    name: &'static str,
    number: u32,
    value: i32,
}

/// One ioctl command and its number on this architecture.
#[derive(Serialize)]
struct Ioctl {
    name: &'static str,
    number: String,
}

/// What the probe found.
#[derive(Serialize)]
struct Probe {
    device: String,
    /// The device could be opened; otherwise why not.
    device_ok: bool,
    device_error: Option<String>,
    module_loaded: bool,
    /// The `mock` module parameter (`None`: not in sysfs).
    mock_parameter: Option<bool>,
    /// `available`, `disabled` (loaded without mock=1) or `absent` (built without it).
    mock: Option<&'static str>,
    capabilities: Vec<Capability>,
    replay_enabled: bool,
    page_size: usize,
    entries_per_tce_page: usize,
    ioctls: Vec<Ioctl>,
}

/// The ioctl numbers of the ABI, as compiled for this architecture.
fn ioctls() -> Vec<Ioctl> {
    [
        ("KVM_CHECK_EXTENSION", KVM_CHECK_EXTENSION),
        ("KVM_ENABLE_CAP", KVM_ENABLE_CAP),
        ("KVM_CREATE_SPAPR_TCE_64", KVM_CREATE_SPAPR_TCE_64),
        ("KVM_SET_USER_MEMORY_REGION", KVM_SET_USER_MEMORY_REGION),
        ("KTR_ATTACH", KTR_ATTACH),
        ("KTR_DETACH", KTR_DETACH),
        ("KTR_MEM_STATS", KTR_MEM_STATS),
        ("KTR_PUT_TCE", KTR_PUT_TCE),
        ("KTR_PUT_TCE_INDIRECT", KTR_PUT_TCE_INDIRECT),
        ("KTR_STUFF_TCE", KTR_STUFF_TCE),
        ("KTR_GET_TCE", KTR_GET_TCE),
        ("KTR_GET_POPULATED", KTR_GET_POPULATED),
        ("KTR_TABLE_STATS", KTR_TABLE_STATS),
        ("KTR_CREATE_MOCK_GROUP", KTR_CREATE_MOCK_GROUP),
        ("KTR_MOCK_READ", KTR_MOCK_READ),
        ("KTR_MOCK_STATS", KTR_MOCK_STATS),
        ("KTR_MOCK_FAIL_ALLOC", KTR_MOCK_FAIL_ALLOC),
        ("KTR_MOCK_ADD_TABLE", KTR_MOCK_ADD_TABLE),
        ("KTR_MOCK_WRITE", KTR_MOCK_WRITE),
    ]
    .into_iter()
    .map(|(name, n)| Ioctl {
        name,
        number: format!("{n:#010x}"),
    })
    .collect()
}

/// The mock backend's state, as the probe reports it.
fn mock_state(ktr: &TceReplay) -> &'static str {
    match ktr.mock_backend() {
        MockBackend::Available => "available",
        MockBackend::Disabled => "disabled",
        MockBackend::Absent => "absent",
    }
}

fn probe(device: &Path) -> Probe {
    let page_size = rustix::param::page_size();
    let mock_parameter = std::fs::read_to_string(format!("{SYSFS_MODULE}/parameters/mock"))
        .ok()
        .map(|v| v.trim() == "Y");
    let mut p = Probe {
        device: device.display().to_string(),
        device_ok: false,
        device_error: None,
        module_loaded: Path::new(SYSFS_MODULE).exists(),
        mock_parameter,
        mock: None,
        capabilities: Vec::new(),
        replay_enabled: false,
        page_size,
        entries_per_tce_page: page_size / 8,
        ioctls: ioctls(),
    };
    let ktr = match TceReplay::new_with_path(device) {
        Ok(ktr) => ktr,
        Err(e) => {
            p.device_error = Some(std::io::Error::from(e).to_string());
            return p;
        }
    };
    p.device_ok = true;
    for (name, cap) in [
        ("KVM_CAP_SPAPR_TCE_64", Cap::SpaprTce64),
        ("KVM_CAP_SPAPR_TCE_REPLAY", Cap::SpaprTceReplay),
        ("KVM_CAP_NR_MEMSLOTS", Cap::NrMemslots),
    ] {
        match ktr.check_extension_int(cap) {
            Ok(value) => p.capabilities.push(Capability {
                name,
                number: cap as u32,
                value,
            }),
            Err(e) => p.device_error = Some(format!("KVM_CHECK_EXTENSION({name}): {e}")),
        }
    }
    p.replay_enabled = ktr.enable_replay().is_ok();
    p.mock = Some(mock_state(&ktr));
    p
}

/// Prints the probe of `device`; true if the device is usable with the replay capability.
pub fn run(device: &Path, json: bool) -> Result<bool, Box<dyn std::error::Error>> {
    let p = probe(device);
    let usable = p.device_ok
        && p.replay_enabled
        && p.capabilities
            .iter()
            .any(|c| c.number == KVM_CAP_SPAPR_TCE_REPLAY && c.value > 0);
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(usable);
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!(
        "probe: module kvm_tce_replay loaded: {}",
        yes(p.module_loaded)
    );
    match &p.device_error {
        Some(e) if !p.device_ok => println!("probe: device {}: {e}", p.device),
        _ => println!("probe: device {}: opened", p.device),
    }
    for c in &p.capabilities {
        println!(
            "probe: KVM_CHECK_EXTENSION({} = {:#x}) = {}",
            c.name, c.number, c.value
        );
    }
    if p.device_ok {
        println!(
            "probe: KVM_ENABLE_CAP(KVM_CAP_SPAPR_TCE_REPLAY): {}",
            if p.replay_enabled { "ok" } else { "refused" }
        );
    }
    // The module parameter is in sysfs only where the kernel exposes module parameters.
    let param = p.mock_parameter.map_or(String::new(), |m| {
        format!(" (module parameter mock={})", if m { "Y" } else { "N" })
    });
    println!(
        "probe: mock backend: {}{param}",
        p.mock.unwrap_or("unknown")
    );
    println!(
        "probe: page size {} B: {} TCEs per TCE page",
        p.page_size, p.entries_per_tce_page
    );
    for i in &p.ioctls {
        println!("probe: ioctl {} = {}", i.name, i.number);
    }
    Ok(usable)
}
