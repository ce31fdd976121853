// SPDX-License-Identifier: GPL-2.0

//! Host tests that the C uapi header, the shared Rust ABI (rust/pure/uapi.rs) and rustix's
//! arch-correct ioctl encoding agree: every number and every struct size.

use crate::uapi::*;
use crate::uapi_test::*;
use rustix::ioctl::{opcode, Opcode};
use std::mem::size_of;
use std::path::Path;
use std::process::Command;

/// (name in the C header, value in rust/pure/uapi.rs)
fn numbers() -> Vec<(&'static str, u64)> {
    let mut v = vec![
        ("KVM_CHECK_EXTENSION", KVM_CHECK_EXTENSION.into()),
        ("KVM_ENABLE_CAP", KVM_ENABLE_CAP.into()),
        ("KVM_CREATE_SPAPR_TCE_64", KVM_CREATE_SPAPR_TCE_64.into()),
        ("KVM_CAP_SPAPR_TCE_64", KVM_CAP_SPAPR_TCE_64.into()),
        ("KVM_CAP_SPAPR_TCE_REPLAY", KVM_CAP_SPAPR_TCE_REPLAY.into()),
        ("KTR_CREATE_MOCK_GROUP", KTR_CREATE_MOCK_GROUP.into()),
        ("KTR_ATTACH", KTR_ATTACH.into()),
        ("KTR_DETACH", KTR_DETACH.into()),
        ("KTR_MEM_STATS", KTR_MEM_STATS.into()),
        ("KTR_PUT_TCE", KTR_PUT_TCE.into()),
        ("KTR_PUT_TCE_INDIRECT", KTR_PUT_TCE_INDIRECT.into()),
        ("KTR_STUFF_TCE", KTR_STUFF_TCE.into()),
        ("KTR_GET_TCE", KTR_GET_TCE.into()),
        ("KTR_GET_POPULATED", KTR_GET_POPULATED.into()),
        ("KTR_TABLE_STATS", KTR_TABLE_STATS.into()),
        ("KTR_MOCK_READ", KTR_MOCK_READ.into()),
        ("KTR_MOCK_STATS", KTR_MOCK_STATS.into()),
        ("KTR_MOCK_FAIL_ALLOC", KTR_MOCK_FAIL_ALLOC.into()),
        ("KTR_MOCK_ADD_TABLE", KTR_MOCK_ADD_TABLE.into()),
        ("KTR_MOCK_WRITE", KTR_MOCK_WRITE.into()),
        ("KTR_INDIRECT_MAX", KTR_INDIRECT_MAX),
        ("KTR_MOCK_READ_MAX", KTR_MOCK_READ_MAX),
        ("KTR_MOCK_WRITE_MAX", KTR_MOCK_WRITE_MAX),
        ("KTR_MOCK_KEEP_LEVELS", KTR_MOCK_KEEP_LEVELS),
        (
            "KTR_ATTACH_WALK_POPULATED",
            KTR_ATTACH_WALK_POPULATED.into(),
        ),
        ("KTR_ATTACH_WALK_ENTRIES", KTR_ATTACH_WALK_ENTRIES.into()),
        ("KTR_ATTACH_WALK_SLOTS", KTR_ATTACH_WALK_SLOTS.into()),
    ];
    // Every struct's size, from the ABI's one list of them.
    macro_rules! sizes {
        ($($t:ty = $c:literal ($n:literal)),* $(,)?) => {
            $(v.push((concat!("sizeof(struct ", $c, ")"), size_of::<$t>() as u64));)*
        };
    }
    kvm_tce_replay::ktr_uapi_structs!(sizes! kvm_tce_replay::uapi);
    kvm_tce_replay::ktr_uapi_test_structs!(sizes! kvm_tce_replay::uapi_test);
    v
}

#[test]
fn c_header_agrees_with_rust() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../..");
    let include = top.join("include/uapi");
    let test_include = top.join("rust");
    let dir = std::env::temp_dir().join(format!("ktr-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut c =
        String::from("#include <stdio.h>\n#include <kvm_tce_replay_test.h>\nint main(void) {\n");
    for (name, _) in numbers() {
        c += &format!("\tprintf(\"%llu\\n\", (unsigned long long)({name}));\n");
    }
    c += "\treturn 0;\n}\n";
    std::fs::write(dir.join("h.c"), c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-Wall", "-Werror", "-std=c11", "-o"])
        .arg(dir.join("h"))
        .arg(dir.join("h.c"))
        .arg("-I")
        .arg(&include)
        .arg("-I")
        .arg(&test_include)
        .output()
        .expect("running the C compiler");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(dir.join("h")).output().unwrap();
    let printed = String::from_utf8(run.stdout).unwrap();
    let c_values: Vec<u64> = printed.lines().map(|l| l.parse().unwrap()).collect();
    for ((name, rust), c) in numbers().into_iter().zip(c_values) {
        assert_eq!(rust, c, "{name}: Rust {rust:#x}, C {c:#x}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn encoding_agrees_with_rustix() {
    let kvm = KVMIO as u8;
    let ktr = KTR_IO as u8;
    assert_eq!(KVM_CHECK_EXTENSION as Opcode, opcode::none(kvm, 0x03));
    assert_eq!(
        KVM_ENABLE_CAP as Opcode,
        opcode::write::<KvmEnableCap>(kvm, 0xa3)
    );
    assert_eq!(
        KVM_CREATE_SPAPR_TCE_64 as Opcode,
        opcode::write::<KvmCreateSpaprTce64>(kvm, 0xa8)
    );
    assert_eq!(
        KTR_GET_TCE as Opcode,
        opcode::read_write::<KtrGetTce>(ktr, 0x13)
    );
    assert_eq!(
        KTR_TABLE_STATS as Opcode,
        opcode::read::<KtrTableStats>(ktr, 0x15)
    );
    assert_eq!(KTR_PUT_TCE as Opcode, opcode::write::<KtrPutTce>(ktr, 0x10));
}
