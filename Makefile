# SPDX-License-Identifier: GPL-2.0
# Entry points. Everything runs inside the project's Debian trixie toolchain root, created on
# first use and cached (like the kernel builds) under $(KTR_CACHE), default /var/cache/kvm-tce-replay.
#
#   make run      the main job: build what is missing, boot the VM, run the demo scenario
#   make check    host tests, rustfmt, clippy, the module with clippy, the VM suite on
#                 x86_64 and ppc64le (ARCH=x86_64 or ARCH=ppc64le: that one only)
#   make kernel | module | vm      single steps; ARCH=x86_64 (default) or ppc64le
#
# Out of tree against your own Rust-enabled kernel: make -C $$KDIR M=$$PWD/rust LLVM=1

ARCH ?= x86_64
RUN := tools/run-in-root

.PHONY: run check kernel module vm bench fmt

run:
	$(RUN) tools/vm/run.sh $(ARCH) demo

check:
	$(RUN) env ARCHES="$(if $(filter command line,$(origin ARCH)),$(ARCH),x86_64 ppc64le)" tools/check.sh

kernel:
	$(RUN) tools/kernel/build.sh $(ARCH)

module:
	$(RUN) tools/module.sh $(ARCH)

vm:
	$(RUN) tools/vm/run.sh $(ARCH) test

# The replay benchmark in the VM: tools/bench/results/$(ARCH)/bench.{md,csv}.
bench:
	$(RUN) tools/bench.sh $(ARCH)

# Formats the module and the userspace crates as `make check` expects.
fmt:
	$(RUN) sh -c 'rustfmt --config-path .rustfmt.toml rust/kvm_tce_replay_main.rs && cargo fmt --manifest-path tools/Cargo.toml --all'
