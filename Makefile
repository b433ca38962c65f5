# The relay's everyday commands. See README.md.
GO ?= go

.PHONY: demo test unit services fuse chromium crash crash-long build vet bench bench-peers bench-quick fuzz clean contrib-check mc cluster cluster-stop cluster-demo test-cluster

# Run the relay on its embedded default (no broker needed) and show events delivered.
demo:
	$(GO) run ./cmd/relay demo

# Install and start the real servers, check contrib/, build mc (a test tool),
# then vet and run every test with the race detector. As root with /dev/fuse
# this includes the power-cut test (TestPowerCut, 50 cuts by default), and
# with chromium (installed here) the status page's browser test.
test: services fuse chromium contrib-check mc vet
	$(GO) test -race -count=1 -timeout 30m ./...

# Tests that need no server (the others fail under CI=true, skip otherwise).
unit: vet
	$(GO) test -race -count=1 ./event ./rules ./wal ./delivery ./relay ./cmd/...

# Install (Debian packages) and start RabbitMQ, Mosquitto, Redis, NATS, PostgreSQL, MariaDB on loopback.
services:
	scripts/services.sh install
	scripts/services.sh start

# Make FUSE usable (/dev/fuse, fuse3) for the power-cut and storage-fault tests.
fuse:
	scripts/fuse.sh

# Install Debian's chromium for the status page's browser test (relay's TestStatusPageBrowser).
chromium:
	scripts/chromium.sh

POWERCUTS ?= 50
LONGCUTS ?= 2000

# The power-loss and storage-fault tests at CI length (root, /dev/fuse, Redis):
# the faultfs file system, $(POWERCUTS) power cuts under the real relay, the noSync
# control, EIO on fdatasync and a full disk.
crash: services fuse
	$(GO) test -race -count=1 ./testkit/faultfs
	$(GO) test -race -count=1 -timeout 30m ./cmd/relay -run 'PowerCut|Fault|Crash' -powercuts $(POWERCUTS) -v

# The power-cut test with thousands of cuts (LONGCUTS=N to change; about 0.3 s a cut).
crash-long: services fuse
	$(GO) test -count=1 -timeout 12h ./cmd/relay -run 'TestPowerCut$$' -powercuts $(LONGCUTS) -v

# A 3-node JetStream cluster on loopback (clients 14222-14224), nats-server
# built from its Go module at the pinned version on first use. See
# scripts/cluster.sh (stop, kill N, restart N, status).
cluster:
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

# Three relays on a 3-node cluster of their own (ports 24222-24224), one
# killed with SIGKILL mid-stream; prints acknowledged, delivered, lost,
# duplicates and the failover time.
cluster-demo:
	$(GO) run ./internal/clusterdemo

# The log conformance suite (wal and JetStream) and the JetStream log's
# fault tests, each against its own real 3-node cluster.
test-cluster:
	$(GO) test -race -count=1 -timeout 10m ./delivery/logtest ./jslog ./testkit/natscluster
	$(GO) test -count=1 -timeout 10m ./cmd/relay -run 'TestCluster' -v

build:
	$(GO) build -o bin/ ./cmd/relay ./cmd/walinspect

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Every benchmark scenario with default settings (takes several minutes); figures go to bench/RESULTS.md by hand.
bench: services
	$(GO) run ./bench --json > bench/results.json

# The relay beside MinIO's notification queue and Benthos (builds them the first time).
bench-peers:
	$(GO) run ./bench peers

bench-quick:
	$(GO) run ./bench --quick --duration 2s --outage 5s

# A short fuzzing run of every fuzz target (their seed corpora also run in `make test`).
fuzz:
	$(GO) test ./event -run XXX -fuzz FuzzRecordJSON -fuzztime 30s
	$(GO) test ./relay -run XXX -fuzz FuzzParseConfig -fuzztime 30s
	$(GO) test ./relay -run XXX -fuzz FuzzPostEvents -fuzztime 30s
	$(GO) test ./relay -run XXX -fuzz FuzzScanJSON -fuzztime 30s
	$(GO) test ./rules -run XXX -fuzz FuzzParseXML -fuzztime 30s

# Check the deployment files: the Prometheus alerting rules with promtool
# (installed from Debian's prometheus package if missing; under CI=true a
# missing promtool fails) and the systemd unit with systemd-analyze, if present.
contrib-check:
	scripts/promtool.sh check
	@if command -v systemd-analyze >/dev/null 2>&1; then \
		d=$$(mktemp -d) && sed 's|^ExecStart=/usr/local/bin/relay |ExecStart=/bin/true |' contrib/systemd/bucketrelay.service > $$d/bucketrelay.service && \
		systemd-analyze verify $$d/bucketrelay.service && rm -rf $$d && echo "contrib/systemd/bucketrelay.service: OK"; \
	else echo "systemd-analyze not found; the unit is not checked"; fi

# Build the MinIO client the examples/s3server tests drive (outside the module).
mc:
	scripts/mc.sh >/dev/null

clean:
	rm -rf bin
