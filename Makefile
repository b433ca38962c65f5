# The relay's everyday commands. See README.md.
GO ?= go

.PHONY: demo test unit services build vet bench bench-quick fuzz clean cluster cluster-stop test-cluster

# Run the relay on its embedded default (no broker needed) and show events delivered.
demo:
	$(GO) run ./cmd/relay demo

# Install and start the real servers, then vet and run every test with the race detector.
test: services vet
	$(GO) test -race -count=1 -timeout 30m ./...

# Tests that need no server (the others fail under CI=true, skip otherwise).
unit: vet
	$(GO) test -race -count=1 ./event ./rules ./wal ./delivery ./relay ./cmd/...

# Install (Debian packages) and start RabbitMQ, Mosquitto, Redis, NATS, PostgreSQL, MariaDB on loopback.
services:
	scripts/services.sh install
	scripts/services.sh start

# A 3-node JetStream cluster on loopback (clients 14222-14224), nats-server
# built from its Go module at the pinned version on first use. See
# scripts/cluster.sh (stop, kill N, restart N, status).
cluster:
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

# The log conformance suite (wal and JetStream) and the JetStream log's
# fault tests, each against its own real 3-node cluster.
test-cluster:
	$(GO) test -race -count=1 -timeout 10m ./delivery/logtest ./jslog ./testkit/natscluster

build:
	$(GO) build -o bin/ ./cmd/relay ./cmd/walinspect

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Every benchmark scenario with default settings (takes several minutes); figures go to bench/RESULTS.md by hand.
bench: services
	$(GO) run ./bench --json > bench/results.json

bench-quick:
	$(GO) run ./bench --quick --duration 2s --outage 5s

# A short fuzzing run of every fuzz target (their seed corpora also run in `make test`).
fuzz:
	$(GO) test ./event -run XXX -fuzz FuzzRecordJSON -fuzztime 30s
	$(GO) test ./relay -run XXX -fuzz FuzzParseConfig -fuzztime 30s
	$(GO) test ./rules -run XXX -fuzz FuzzParseXML -fuzztime 30s

clean:
	rm -rf bin
