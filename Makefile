# corral — build, test, fuzz, boxes, bench. `make test` works from a fresh
# Debian 12 machine: missing packages are installed first (deps).
# Every core builds: a cold `make test` compiles the tree twice (plain with
# gcc; sanitizers and fuzzer coverage with clang, one tree for both).
MAKEFLAGS += -j$(shell nproc)
CC      ?= gcc
PKGS    := yaml-0.1 libcurl libarchive libcrypto libssh jansson libseccomp
# Recursive on purpose: pkg-config must run after `deps` has installed it.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
# libcurl, libarchive and libssh are not linked: core/base/lazylib.c loads them
# on first use, which keeps them (and ~40 libraries they pull in) out of
# every start.
PKG_LIBS   = $(shell pkg-config --libs $(filter-out libcurl libarchive libssh,$(PKGS)))
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -I. $(PKG_CFLAGS) $(CFLAGS)
LIBS     = $(PKG_LIBS) -lpthread

# Debian packages: to build, to test, and to run the providers and boxes.
DEB_BUILD := gcc make pkg-config libyaml-dev libcurl4-openssl-dev libarchive-dev \
	libssl-dev libssh-dev libjansson-dev libseccomp-dev go-md2man
# `make deb`: dpkg-shlibdeps, dpkg-deb.
DEB_PACKAGE := dpkg-dev
DEB_RUN   := openssh-client iproute2 mmdebstrap busybox-static openssh-server \
	ca-certificates nftables rsync gpgv uidmap passt
DEB_TEST  := $(DEB_BUILD) $(DEB_RUN) clang libclang-rt-14-dev python3 openssl \
	ansible-core qemu-system-x86 qemu-utils zstd xz-utils bzip2 hyperfine rsync jq bc kmod ovmf procps sudo \
	$(DEB_PACKAGE) lintian man-db zsh curl debootstrap docker-registry skopeo umoci apache2-utils gpg libxml2-utils lxd \
	ccache lld dnsmasq-base
# dnsmasq-base: LXD's managed bridges run dnsmasq, which lxd only
# recommends (deps installs without recommends).
# incus-ovn.sh: a private Open vSwitch (userspace datapath) and OVN for LXD.
DEB_TEST  += openvswitch-switch ovn-central ovn-host

# `make test` compiles through ccache, whose cache lives outside the
# checkout as the test boxes' does: a warm run in a fresh clone compiles
# nothing it compiled before (the two trees cost ~125 CPU s of a 2-core
# run). Paths are hashed relative to the checkout, so any clone hits.
# `make test CCACHE=` compiles without it.
ifneq ($(filter test,$(MAKECMDGOALS)),)
CCACHE ?= ccache
export CCACHE
export CCACHE_DIR ?= /var/cache/corral-test/ccache
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
endif

LIB_SRC  := $(sort $(wildcard core/*/*.c engine/*.c providers/*.c providers/*/*.c provisioners/*.c))
CMD_SRC  := $(sort $(wildcard cmd/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

OBJ      = $(patsubst %.c,build/obj/%.o,$(LIB_SRC))
UNITS    = $(patsubst tests/unit/%.c,build/tests/%,$(UNIT_SRC))
SAN_UNITS= $(patsubst tests/unit/%.c,build/tests-san/%,$(UNIT_SRC))
FUZZERS  = $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))

VERSION := $(shell sed -n 's/^\#define CORRAL_VERSION "\(.*\)"/\1/p' cmd/commands.c)
PREFIX  ?= /usr/local
# What `make` builds besides the binary, and where `make install` puts it.
MAN      := build/man/corral.1 build/man/corral.yaml.5
COMPLETIONS := build/completions/corral.bash build/completions/_corral
# SOURCE:DESTINATION under PREFIX; what lands in bin/ is executable.
INSTALLED := build/corral:bin/corral build/man/corral.1:share/man/man1/corral.1 \
	build/man/corral.yaml.5:share/man/man5/corral.yaml.5 \
	build/completions/corral.bash:share/bash-completion/completions/corral \
	build/completions/_corral:share/zsh/vendor-completions/_corral \
	data/distros.json:share/corral/distros.json \
	$(foreach k,$(wildcard data/keys/*.asc data/keys/*.gpg data/keys/*.pgp),$(k):share/corral/keys/$(notdir $(k)))
# The package's version: corral's, Debian revision 1.
DEB_VERSION := $(VERSION)-1
DEB       = build/corral_$(DEB_VERSION)_$(shell dpkg --print-architecture).deb

.PHONY: all deps test unit build-unit build-san fuzzers fuzz boxes quickstart install uninstall deb clean bench
.DEFAULT_GOAL := all

all: build/corral $(MAN) $(COMPLETIONS)

# Installs only what is missing; says nothing when everything is there.
deps:
	@missing=""; for p in $(if $(filter test unit build-san fuzzers fuzz boxes quickstart bench,$(MAKECMDGOALS)),$(DEB_TEST),$(DEB_BUILD) $(if $(filter deb,$(MAKECMDGOALS)),$(DEB_PACKAGE))); do \
		dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		[ "$$(id -u)" = 0 ] || { echo "run as root (or install:$$missing)" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build/corral: $(patsubst %.c,build/obj/%.o,$(CMD_SRC)) build/libcorral.a | deps
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

build/libcorral.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

build/obj/%.o: %.c $(wildcard */*.h */*/*.h) | deps
	@mkdir -p $(dir $@)
	$(CCACHE) $(CC) $(ALL_CFLAGS) -c -o $@ $<

# The test programs (unit tests, sanitizer units, fuzzers, tools: ~80 links
# a make test) link with LLVM's lld when it is there (make test installs
# it): a link of a sanitizer unit takes half the CPU of GNU ld's (0.14
# against 0.28 s here), a fuzzer's a fifth. corral itself links with the
# system's default linker.
TEST_LD = $(if $(wildcard /usr/bin/ld.lld),-fuse-ld=lld)

# Each program's own file is compiled to an object of its own (the
# build/obj/ and build/san/ rules, as the library's) and then linked:
# ccache caches compiles, never a compile-and-link in one call.
build/tests/%: build/obj/tests/unit/%.o build/libcorral.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_LD) -o $@ $< build/libcorral.a $(LIBS)

unit: $(UNITS) $(SAN_UNITS)
# tests/run builds these as the first job of their stage, beside the
# integration scripts (make test builds only what those need first).
build-unit: $(UNITS)
build-san: $(SAN_UNITS)
fuzzers: $(FUZZERS)

# Small programs that drive library code from integration tests and benches.
TOOLS = $(patsubst tests/tools/%.c,build/tools/%,$(wildcard tests/tools/*.c))
build/tools/%: build/obj/tests/tools/%.o build/libcorral.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_LD) -o $@ $< build/libcorral.a $(LIBS)

# The sanitizer tree: each library file compiled once by clang with ASan,
# UBSan (any finding fatal) and libFuzzer's coverage hooks (one object per
# file, so -j spreads them), shared by the unit tests' sanitizer run and
# the fuzzers (they were two trees: gcc's sanitizers at -O2, 63 CPU s, and
# clang's fuzzers, 66 CPU s; this one with its programs, 85). -O1, as ASan
# advises.
# The same warnings as gcc's, fatal too (clang has no -Wformat-truncation).
SAN_CFLAGS = -std=c11 -D_GNU_SOURCE $(filter-out -Wno-format-truncation,$(WARN)) -I. $(PKG_CFLAGS) -g -O1 \
	-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_OBJ = $(patsubst %.c,build/san/%.o,$(LIB_SRC))
build/san/%.o: %.c $(wildcard */*.h */*/*.h) | deps
	@mkdir -p $(dir $@)
	$(CCACHE) clang $(SAN_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/libcorral-san.a: $(SAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/tests-san/%: build/san/tests/unit/%.o build/libcorral-san.a | deps
	@mkdir -p $(dir $@)
	clang $(SAN_CFLAGS) $(TEST_LD) -o $@ $< build/libcorral-san.a $(LIBS)

build/fuzz/%: build/san/tests/fuzz/%.o build/libcorral-san.a | deps
	@mkdir -p $(dir $@)
	clang $(SAN_CFLAGS) $(TEST_LD) -fsanitize=fuzzer -o $@ $< build/libcorral-san.a $(LIBS)

# The programs' objects stay (make would delete them as intermediates).
.SECONDARY: $(patsubst %.c,build/obj/%.o,$(UNIT_SRC) $(wildcard tests/tools/*.c)) \
	$(patsubst %.c,build/san/%.o,$(UNIT_SRC) $(FUZZ_SRC))

# The long run (make test fuzzes each target a few seconds): what it finds
# that reaches new code is merged into tests/fuzz/corpus, the corpus every
# later run starts from (commit it).
FUZZ_SECONDS ?= 60
fuzz: $(FUZZERS)
	FUZZ_KEEP=1 tests/fuzz/run $(FUZZ_SECONDS) $(FUZZERS)

# The full suite: unit tests, again under ASan+UBSan, a short fuzz run,
# and the integration tests (real boxes, real sshd, real servers). Only
# what the integration scripts run is built before tests/run starts; it
# builds the unit tests, the sanitizer tree and the fuzzers as jobs of its
# pool (build-unit, build-san, fuzzers), so the scripts' boots and waits
# overlap the compiling.
# TEST_START is taken when make reads this file, before anything is built,
# so tests/run's time summary shows the build too.
ifneq ($(filter test,$(MAKECMDGOALS)),)
TEST_START := $(shell date +%s%6N)
endif
test: deps all $(TOOLS)
	@CORRAL_TEST_BUILD_START=$(TEST_START) tests/run

boxes: deps all
	boxes/build tiny debian-12 debian-12-kvm tiny-kvm

# The README's first command: build (or reuse) the Debian container box, add
# it to the store, bring examples/quickstart up provisioned, run a command in it.
quickstart: deps all
	@box=$$(boxes/build debian-12 | tail -n 1) && \
		build/corral box add "$$(dirname "$$box")/catalog.json" && \
		build/corral -C examples/quickstart up && \
		build/corral -C examples/quickstart ssh -c 'cat /etc/motd; cat /etc/os-release | head -n 1'

# Man pages from Markdown (docs/man/md2man): corral(1) takes its synopsis,
# global options and commands from the binary's help (`corral __man`),
# corral.yaml(5) is docs/envfile.md.
build/man/corral.1: docs/man/corral.1.md docs/man/md2man build/corral | deps
	@mkdir -p $(dir $@)
	CORRAL=build/corral VERSION=$(VERSION) docs/man/md2man $< >$@.tmp && mv $@.tmp $@

build/man/corral.yaml.5: docs/man/corral.yaml.5.md docs/envfile.md docs/man/md2man | deps
	@mkdir -p $(dir $@)
	VERSION=$(VERSION) docs/man/md2man $< >$@.tmp && mv $@.tmp $@

build/completions/corral.bash: build/corral
	@mkdir -p $(dir $@)
	build/corral completion bash >$@

build/completions/_corral: build/corral
	@mkdir -p $(dir $@)
	build/corral completion zsh >$@

# $(call install_to,ROOT,PREFIX): the files of INSTALLED.
install_to = $(foreach f,$(INSTALLED),install -D -m $(if $(filter bin/%,$(lastword $(subst :, ,$(f)))),0755,0644) \
	$(subst :, $(1)$(2)/,$(f)) &&) true

# PREFIX (default /usr/local) and DESTDIR as usual.
install: all
	$(call install_to,$(DESTDIR),$(PREFIX))

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(foreach f,$(INSTALLED),$(lastword $(subst :, ,$(f)))))

# A Debian package of what `make install` installs (packaging/deb/build).
deb: deps all
	@rm -rf build/deb
	@$(call install_to,build/deb/debian/corral,/usr)
	@packaging/deb/build $(DEB_VERSION) build/deb $(DEB)

bench: deps all $(TOOLS)
	@for b in bench/*; do [ -x "$$b" ] && "$$b"; done

clean:
	rm -rf build
