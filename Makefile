# Sluice: `make run` builds and runs the default config; `make test` installs
# what the tests need and runs all of them (CI runs exactly that).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

OCB_VERSION := v0.160.0
BIN         := $(CURDIR)/bin
OCB         := $(BIN)/builder
SLUICE      := $(BIN)/sluice
DIST        := distributions/sluice
IMAGE       ?= sluice:dev
# Every go command here builds as bin/sluice is built (static, -trimpath),
# so vet, the tests and the binary share one compiled dependency tree: a
# cold `make test` compiles it once, not again for the build stage (408 s
# of a cold run before). The race detector needs cgo: the race stage turns
# it back on (and compiles its own tree anyway).
export CGO_ENABLED := 0
export GOFLAGS += -trimpath
# Unit tests: everything but the whole-binary tests and bench/systems, which
# needs the reference systems installed (make bench-check runs it).
GO_PKGS      = $(shell go list ./... | grep -v -e /test/e2e -e /bench/systems)
# Prints how long a stage took: $(call timed,name,command); the summary at the
# end of `make test` lists every stage of the run.
export TIMED_LOG ?= $(BIN)/stage-times.txt
timed = @scripts/timed "$(1)" $(2)

.PHONY: all build generate metadata check-generate run test test-deps kube-apiserver vet unit race fuzz-short validate-configs monitoring helm e2e docker docker-image package package-files bench bench-full bench-scrape bench-gateway bench-soak bench-check lint clean

all: build

$(OCB):
	GOBIN=$(BIN) go install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

## generate: regenerate distributions/sluice from builder-config.yaml with ocb
generate: $(OCB)
	@mkdir -p $(DIST)
	$(OCB) --config builder-config.yaml --skip-compilation
	@# ocb leaves imports unsorted; the committed code is gofmt-clean like the rest
	gofmt -w $(DIST)/*.go

## metadata: regenerate each component's internal/metadata, generated tests
## and documentation.md from its metadata.yaml with mdatagen
# mdatagen v0.160.0 is refused by the module proxy (404); v0.159.0 generates
# the same files for every component here. `go install` of it fails on the
# proxy's missing version list, so it is built in a module of its own.
MDATAGEN_VERSION := v0.159.0
$(BIN)/mdatagen:
	rm -rf $(BIN)/mdatagen-src && mkdir -p $(BIN)/mdatagen-src
	cd $(BIN)/mdatagen-src && printf 'module mdatagentool\n\ngo 1.26\n' > go.mod && \
		printf '//go:build tools\n\npackage tools\n\nimport _ "go.opentelemetry.io/collector/cmd/mdatagen"\n' > tools.go && \
		go get go.opentelemetry.io/collector/cmd/mdatagen@$(MDATAGEN_VERSION) && \
		go build -o $(BIN)/mdatagen go.opentelemetry.io/collector/cmd/mdatagen

metadata: $(BIN)/mdatagen
	for f in $$(git ls-files '*/metadata.yaml' | grep -v '^$(DIST)/'); do \
		(cd $$(dirname $$f) && $(BIN)/mdatagen metadata.yaml) || exit 1; \
	done

## build: a static bin/sluice from the generated distribution
build: generate
	cd $(DIST) && go build -ldflags "-s -w" -o $(SLUICE) .

## check-generate: fail when the committed distribution differs from what ocb generates
check-generate: generate
	@if ! git diff --quiet -- $(DIST) || [ -n "$$(git ls-files --others --exclude-standard -- $(DIST))" ]; then \
		git status --short -- $(DIST); git --no-pager diff --stat -- $(DIST) || true; \
		echo "check-generate: $(DIST) differs from what builder-config.yaml generates; run 'make generate' and commit"; \
		exit 1; \
	fi
	@echo "check-generate: $(DIST) matches builder-config.yaml"

## run: build, then run the default config in the foreground
run: build
	SLUICE_QUEUE_DIR=$${SLUICE_QUEUE_DIR:-$(CURDIR)/data/queue} $(SLUICE) --config configs/default.yaml

## test: everything CI checks, each stage timed
test:
	@mkdir -p $(BIN) && rm -f $(TIMED_LOG)
	$(call timed,test-deps,$(MAKE) --no-print-directory test-deps)
	$(call timed,vet,$(MAKE) --no-print-directory vet)
	$(call timed,unit,$(MAKE) --no-print-directory unit)
	$(call timed,race,$(MAKE) --no-print-directory race)
	$(call timed,fuzz-short,$(MAKE) --no-print-directory fuzz-short)
	$(call timed,build,$(MAKE) --no-print-directory build)
	$(call timed,check-generate,$(MAKE) --no-print-directory check-generate)
	$(call timed,validate-configs,$(MAKE) --no-print-directory validate-configs)
	$(call timed,monitoring,$(MAKE) --no-print-directory monitoring)
	$(call timed,helm,$(MAKE) --no-print-directory helm)
	$(call timed,e2e,$(MAKE) --no-print-directory e2e)
	@scripts/timed --summary

## test-deps: install what the tests need (Debian packages; run as root)
test-deps:
	scripts/install-test-deps

## kube-apiserver: build a real kube-apiserver into ./bin for the
## kubernetes_sd_configs e2e test (scripts/build-kube-apiserver)
kube-apiserver:
	scripts/build-kube-apiserver

vet:
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...
	cd $(DIST) && go vet .

# unit: every package's tests, but for the RACE_PKGS, whose tests the race
# stage runs (under the race detector only: running them twice cost ~4 min,
# most of it the cluster's 2-minute membership soak)
unit:
	go test -count=1 $(UNIT_PKGS)

# race: the concurrent parts under the race detector (the queue, the
# exporter's shards and senders, the translation they share, the processors,
# the prometheus receiver's scrape loops and cluster membership)
RACE_PKGS = ./internal/diskqueue/ ./internal/promseries/ ./exporter/... ./processor/... ./receiver/prometheusreceiver/...
UNIT_PKGS = $(filter-out $(shell go list $(RACE_PKGS)),$(GO_PKGS))
race:
	CGO_ENABLED=1 go test -race -count=1 $(RACE_PKGS)

# fuzz-short: the remote_write receiver's decoders against prompb's, and the
# disk queue's Open over mutated queue files, for a bounded number of
# executions (12-14 s each here). A count, not a duration: with a
# duration, Go 1.26's fuzz coordinator can report its own deadline as a
# failure ("context deadline exceeded", no crasher; golang/go#75804, fixed
# in Go 1.27). Longer by hand: FUZZ_DECODE=2000000x FUZZ_OPEN=100000x, or
# a duration such as FUZZ_OPEN=10m. Findings land in the package's
# testdata/fuzz/ and are kept as corpus entries.
FUZZ_DECODE ?= 150000x
FUZZ_OPEN ?= 5000x
fuzz-short:
	go test -run '^$$' -fuzz FuzzDecodeV2 -fuzztime $(FUZZ_DECODE) ./receiver/remotewritereceiver/
	go test -run '^$$' -fuzz FuzzDecodeV1 -fuzztime $(FUZZ_DECODE) ./receiver/remotewritereceiver/
	go test -run '^$$' -fuzz FuzzOpen -fuzztime $(FUZZ_OPEN) ./internal/diskqueue/

validate-configs:
	@for f in configs/*.yaml; do \
		echo "validate $$f"; \
		$(SLUICE) validate --config "$$f"; \
	done

## monitoring: the alert rules in deploy/monitoring checked and unit-tested
## by promtool (Debian's prometheus package, from test-deps)
monitoring:
	promtool check rules deploy/monitoring/sluice-alerts.yaml
	promtool test rules deploy/monitoring/tests/*.yaml

## helm: install the pinned helm into ./bin and lint the chart (the e2e
## tests render it and validate what it renders)
HELM_VERSION := v3.22.0
$(BIN)/helm:
	GOBIN=$(BIN) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

helm: $(BIN)/helm
	$(BIN)/helm lint --strict deploy/helm/sluice

# e2e: the whole-binary tests (test/e2e) against bin/sluice. The real
# kube-apiserver that the Kubernetes discovery test needs is built meanwhile,
# at the lowest CPU priority: the other tests mostly wait (they kept 15% of
# two cores busy over a cold run), so its cold build (558 s in the cold run
# of 2026-12-04) fits in their idle time instead of adding to the run. That
# test runs last.
KUBE_TEST := TestKubernetesDiscoveryAgainstAPIServer
e2e_test = SLUICE_BIN=$(SLUICE) go test -count=1 -v $(1) ./test/e2e/ 2>&1 | grep -Ev '^=== (RUN|PAUSE|CONT)'
e2e:
	@mkdir -p $(BIN)
	setsid nice -n 19 scripts/build-kube-apiserver > $(BIN)/kube-apiserver-build.log 2>&1 & kube=$$!; \
	trap 'kill -- -$$kube 2>/dev/null || true' EXIT; \
	$(call e2e_test,-timeout 20m -skip '^$(KUBE_TEST)$$'); \
	start=$$(date +%s); \
	wait $$kube || { cat $(BIN)/kube-apiserver-build.log; exit 1; }; \
	trap - EXIT; \
	echo "$$(tail -1 $(BIN)/kube-apiserver-build.log); waited $$(( $$(date +%s) - start ))s for it after the other e2e tests"; \
	$(call e2e_test,-timeout 5m -run '^$(KUBE_TEST)$$')

## docker: build the image $(IMAGE) (default sluice:dev) with the local Docker engine
docker: build docker-image

# docker-image: the image from an existing bin/sluice (the e2e test uses this)
docker-image:
	@test -x $(SLUICE) || { echo "no $(SLUICE): run 'make build' first"; exit 1; }
	cp /etc/ssl/certs/ca-certificates.crt $(BIN)/ca-certificates.crt
	DOCKER_BUILDKIT=0 docker build -q -t $(IMAGE) .

## package: the .deb and .rpm of bin/sluice into bin/packages (nfpm, from
## deploy/packages/nfpm.yaml); version from builder-config.yaml's dist.version
package: build package-files

NFPM_VERSION := v2.48.0
PKG_VERSION  ?= $(shell sed -n 's/^  version: *//p' builder-config.yaml)
PKG_DIR      ?= $(BIN)/packages
$(BIN)/nfpm:
	GOBIN=$(BIN) go install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# package-files: the packages from an existing bin/sluice (SLUICE=...; the
# e2e test builds two versions this way)
package-files: $(BIN)/nfpm
	@test -x $(SLUICE) || { echo "no $(SLUICE): run 'make build' first"; exit 1; }
	@mkdir -p $(PKG_DIR)
	for p in deb rpm; do \
		SLUICE_BIN=$(SLUICE) SLUICE_VERSION=$(PKG_VERSION) SLUICE_ARCH=$$(go env GOARCH) \
			$(BIN)/nfpm package --config deploy/packages/nfpm.yaml --packager $$p --target $(PKG_DIR)/; \
	done

## bench: W1 and F1 on Sluice and every reference (builds Sluice, installs the references; as root)
bench: build
	bench/reference/install
	go run ./bench/cmd/bench -profile quick -scenarios W1,F1

## bench-full: W1, W2, F1 and F2 at full length
bench-full: build
	bench/reference/install
	go run ./bench/cmd/bench -profile full -scenarios W1,W2,F1,F2

## bench-scrape: Sluice's prometheus receiver beside contrib's, scraping only (W1 load)
bench-scrape: build
	bench/reference/install
	go run ./bench/cmd/bench -profile quick -scenarios W1 -scrape-only -readme ""

## bench-gateway: Sluice as a gateway (remote write in -> out) beside vmagent
bench-gateway: build
	bench/reference/install vmagent
	go run ./bench/cmd/gwbench -seconds 20

## bench-soak: Sluice on W1 for 30 min, backend down 60 s every 5 min, one
## kill -9 half-way (RSS, goroutines, queue bytes per cycle; loss, duplicates, order)
bench-soak: build
	go run ./bench/cmd/soak -points bench/soak-points.csv

## bench-check: the references start and deliver (after bench/reference/install)
bench-check:
	go test -count=1 -v ./bench/systems/

lint: vet
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
	$(BIN)/golangci-lint run ./...

clean:
	rm -rf bin _build
