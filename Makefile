# hcp — top-level build.
#
#   make              build every binary into build/bin
#   make test         unit + integration tests, then the same suite under ASan/UBSan
#   make bench        benchmarks, printed as tables
#   make run          install packages, build, start a local system with sample traffic
#   make format       clang-format every C source (make format-check: CI's check)
#
# Layout is discovered, not listed: common/*.c → libhcp.a; services/<name>/*.c →
# bin/hcp-<name> (services/hcpctl → bin/hcpctl), its non-main files also in
# lib<name>.a so tests can drive the logic; tests/{unit,integration,fault,bench}/*.c →
# one test binary each; proto/hcp/v1/*.proto → generated protobuf-c code.

BUILD    ?= build
SANITIZE ?=
CC       ?= cc

# V=1 shows the full commands.
Q := $(if $(V),,@)

PKGS    := libczmq libzmq libprotobuf-c libpq yaml-0.1 uuid libcurl libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?= -O2 -g
# "override": make test passes CFLAGS="-O1 -g" on the command line, which would
# otherwise replace these flags instead of adding to them.
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
           -MMD -MP $(PKG_CFLAGS) -Icommon -Itests/support -I$(BUILD)/gen
# libcsv (hcpctl submit csv) ships no pkg-config file.
LDLIBS  += $(PKG_LIBS) -lcsv -lm -lpthread
ifeq ($(SANITIZE),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

PROTOS     := $(wildcard proto/hcp/v1/*.proto)
GEN_C      := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H      := $(GEN_C:.c=.h)
COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC)) $(GEN_C:.c=.o)
LIBHCP     := $(BUILD)/libhcp.a

SERVICE_DIRS := $(patsubst services/%/main.c,%,$(wildcard services/*/main.c))
bin_name      = $(if $(filter hcpctl,$(1)),hcpctl,hcp-$(1))
BINS         := $(foreach s,$(SERVICE_DIRS),$(BUILD)/bin/$(call bin_name,$(s)))
SVC_LIBS     := $(foreach s,$(SERVICE_DIRS),$(BUILD)/lib$(s).a)

SUPPORT_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/support/*.c))
TEST_SRC    := $(wildcard tests/unit/*.c tests/integration/*.c tests/fault/*.c)
TEST_BINS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_BINS  := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/*.c))

.PHONY: all tests test test-fast bench run stop images format format-check clean deps help
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BINS)

help:
	@sed -n '3,9p' Makefile | sed 's/^# \{0,1\}//'

# --- protobuf-c generated code --------------------------------------------------------
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	@echo "  PROTOC  $<"
	$(Q)protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

# Generated objects: protobuf-c output is not ours to lint.
$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Wno-error -c $< -o $@

# --- objects -------------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBHCP): $(COMMON_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# Per-service static library of everything but main.c, and the binary itself.
define SERVICE_RULES
$(BUILD)/lib$(1).a: $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out services/$(1)/main.c,$(wildcard services/$(1)/*.c)))
	@rm -f $$@
	@mkdir -p $$(dir $$@)
	$(Q)ar rcs $$@ $$^
$(BUILD)/bin/$(call bin_name,$(1)): $(BUILD)/obj/services/$(1)/main.o $(BUILD)/lib$(1).a $(SVC_LIBS) $(LIBHCP)
	@mkdir -p $$(dir $$@)
	@echo "  LINK    $$@"
	$(Q)$$(CC) $$(LDFLAGS) -o $$@ $(BUILD)/obj/services/$(1)/main.o $(BUILD)/lib$(1).a \
	    $(filter-out $(BUILD)/lib$(1).a,$(SVC_LIBS)) $(LIBHCP) $$(LDLIBS)
endef
$(foreach s,$(SERVICE_DIRS),$(eval $(call SERVICE_RULES,$(s))))

# --- tests and benchmarks ------------------------------------------------------------------
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SUPPORT_OBJ) $(SVC_LIBS) $(LIBHCP)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(SUPPORT_OBJ) $(SVC_LIBS) $(SVC_LIBS) $(LIBHCP) $(LDLIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(SUPPORT_OBJ) $(SVC_LIBS) $(LIBHCP)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(SUPPORT_OBJ) $(SVC_LIBS) $(SVC_LIBS) $(LIBHCP) $(LDLIBS) -lcmocka

tests: all $(TEST_BINS) $(BENCH_BINS)

# The whole suite, then the whole suite again built with AddressSanitizer + UBSan.
# tests/run.sh starts the project's own PostgreSQL (.hcp/) when it is not running.
test:
	$(MAKE) tests
	$(MAKE) BUILD=build/asan SANITIZE=1 CFLAGS="-O1 -g" tests
	tests/run.sh $(BUILD) build/asan

# Only the normal build (quicker while developing).
test-fast: tests
	tests/run.sh $(BUILD)

bench: tests
	tests/bench/run.sh $(BUILD)

run:
	deploy/scripts/run-local.sh

stop:
	deploy/scripts/run-local.sh stop

# Container images on a Debian base made locally with debootstrap (no registry needed).
images:
	deploy/docker/build-images.sh

deps:
	deploy/scripts/install-deps.sh

FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRC)

format-check:
	clang-format --dry-run -Werror $(FORMAT_SRC)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
