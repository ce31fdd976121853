# SPDX-License-Identifier: GPL-2.0
# Entry points. Everything runs inside the project's Debian trixie toolchain root, created on
# first use and cached (like the kernel builds) under $(KTR_CACHE), default /var/cache/kvm-tce-replay.
#
#   make run      the main job: build what is missing, boot the VM, run the demo scenario
#   make check    host tests, rustfmt, clippy, the module with clippy, the VM suite on
#                 x86_64, ppc64le (a pseries guest), powernv (the ppc64le kernel on a POWER9
#                 host, PHB4) and on UML with the module built in and its KUnit tests
#                 (ARCH=x86_64, ppc64le, powernv or um: that one only)
#   make bench    the replay benchmark on x86_64 (QEMU TCG) and on UML (native), and the
#                 nested run's hot-plug figures (QEMU on KVM-HV in the powernv VM)
#   make profile  the replay scenarios on UML under perf: tools/bench/results/um/profile-*
#   make fuzz     the fuzzer in the VM until stopped, or TIME= seconds; SEED= reruns a seed
#   make qemu     qemu-system-ppc64 from Debian's QEMU source with tools/qemu/'s series (x86_64, ppc64le)
#   make kernel | module | vm      single steps; ARCH=x86_64 (default), ppc64le or um
#                 (vm: powernv too)
#
# Out of tree against your own Rust-enabled kernel: make -C $$KDIR M=$$PWD/rust LLVM=1

ARCH ?= x86_64
RUN := tools/run-in-root

.PHONY: run check kernel module vm bench fmt fuzz profile qemu

run:
	$(RUN) tools/vm/run.sh $(ARCH) demo

# ARCH on the command line selects one architecture.
ARCHES = $(if $(filter command line,$(origin ARCH)),$(ARCH),$(1))

check:
	$(RUN) env ARCHES="$(call ARCHES,x86_64 ppc64le powernv um)" tools/check.sh

kernel:
	$(RUN) tools/kernel/build.sh $(ARCH)

module:
	$(RUN) tools/module.sh $(ARCH)

vm:
	$(RUN) tools/vm/run.sh $(ARCH) test

# perf profiles of the replay (UML: kernel code runs natively): SCENARIOS= to pick some,
# SECONDS_PER_SCENARIO= to change how long each is sampled (tools/lib.sh's KNOBS pass through).
profile:
	$(RUN) tools/profile.sh

# The fuzzer (Documentation/security.rst): no time limit unless TIME= is given.
fuzz:
	$(RUN) env TIMEOUT=$(if $(TIME),$$(( $(TIME) + 600 )),0) tools/vm/run.sh $(ARCH) fuzz \
		$(if $(SEED),seed=$(SEED)) $(if $(TIME),time=$(TIME))

# The replay benchmark: tools/bench/results/ARCH/bench.{md,csv,png} for each architecture.
bench:
	for a in $(call ARCHES,x86_64 um nested); do $(RUN) tools/bench.sh $$a || exit 1; done

# QEMU with the tce-replay series (tools/qemu/README), for the x86_64 host (TCG: UML's runs)
# and cross-built for a ppc64le host (KVM: the powernv VM's nested run): prints the
# qemu-system-ppc64 and the ppc64le tree it built.
qemu:
	$(RUN) tools/qemu/build.sh
	$(RUN) tools/qemu/build.sh ppc64le

# Formats the module and the userspace crates as `make check` expects.
fmt:
	$(RUN) sh -c 'rustfmt --config-path .rustfmt.toml rust/kvm_tce_replay_main.rs && cargo fmt --manifest-path tools/Cargo.toml --all'
