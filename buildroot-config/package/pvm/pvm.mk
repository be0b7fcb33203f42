################################################################################
#
# pvm
#
################################################################################

# The source is a local tree that image/buildroot/build.sh prepares: the workspace at one
# commit plus `cargo vendor --locked` output in VENDOR/ and a .cargo/config.toml that points
# cargo at it. The cargo infrastructure's own vendoring runs only for downloaded tarballs;
# a local tree already carrying VENDOR/ builds with --offline --locked as it is.
PVM_VERSION = $(shell cat $(call qstrip,$(BR2_PACKAGE_PVM_SRCDIR))/VERSION 2>/dev/null)
PVM_SITE = $(call qstrip,$(BR2_PACKAGE_PVM_SRCDIR))
PVM_SITE_METHOD = local
PVM_LICENSE = Proprietary
PVM_DEPENDENCIES = host-pkgconf libinput libxkbcommon fontconfig udev

PVM_BINARIES = pvm-node pvm-kiosk pvm-firstboot

# The web console (web/dist) is built with npm by build.sh and sits in the prepared tree, where
# pvm-node's build.rs embeds it.
PVM_CARGO_BUILD_OPTS = $(foreach bin,$(PVM_BINARIES),-p $(bin))

define PVM_INSTALL_TARGET_CMDS
	$(foreach bin,$(PVM_BINARIES),\
		$(INSTALL) -D -m 0755 $(@D)/target/$(RUSTC_TARGET_NAME)/release/$(bin) \
			$(TARGET_DIR)/usr/bin/$(bin)$(sep))
endef

$(eval $(cargo-package))
