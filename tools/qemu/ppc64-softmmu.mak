# SPDX-License-Identifier: GPL-2.0
# The devices of `make qemu`'s qemu-system-ppc64 (configure --without-default-devices
# --with-devices-ppc64=ktr): the pseries machine, virtio-pci devices to do DMA behind the
# sPAPR IOMMU, the edu test device (the guest's VFIO case DMAs with it, tools/qemu/uml-guest.sh)
# and VFIO (so that the series' hw/vfio/spapr.c change is compiled).
CONFIG_PSERIES=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_RNG=y
CONFIG_VFIO_PCI=y
CONFIG_EDU=y
