package relay

import (
	"strings"
	"testing"
)

func TestLogConfig(t *testing.T) {
	const hook = `"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"%s}}}`
	doc := func(log, extra string) string {
		return `{"relay":{"log":` + log + `},` + strings.Replace(hook, "%s", extra, 1) + `}`
	}
	c := parseConfig(t, doc(`{"kind":"jetstream","servers":["nats://a:4222","nats://b:4222"],"stream":"EV","replicas":3,"leaseTTL":"2s","owner":"r1"}`, `,"lanes":4`))
	lc := c.Relay.Log
	if !lc.Cluster() || lc.JetStream.Stream != "EV" || len(lc.JetStream.Servers) != 2 || lc.Owner != "r1" || lc.leaseTTL().Seconds() != 2 {
		t.Fatalf("got %+v, want the jetstream log as written", lc)
	}
	if c.Targets[0].Lanes != 4 || c.Targets[0].Policy.Lanes != 0 {
		t.Fatalf("lanes: got %d (policy %d), want 4 shared out by the relays (0 in process)", c.Targets[0].Lanes, c.Targets[0].Policy.Lanes)
	}
	// On the embedded log, lanes are the target's own ordered senders.
	if c, err := ParseConfig([]byte(doc(`{"kind":"wal"}`, `,"lanes":2`))); err != nil || c.Targets[0].Lanes != 0 || c.Targets[0].Policy.Lanes != 2 {
		t.Fatalf("lanes on the embedded log: got %v, %v; want 2 in-process lanes", c, err)
	}
	if c, err := ParseConfig([]byte(doc(`{"kind":"wal"}`, ""))); err != nil || c.Relay.Log.Cluster() {
		t.Fatalf("kind wal: got %v, %v; want the embedded log", c, err)
	}

	for _, tc := range []struct{ log, extra, want string }{
		{`{"kind":"kafka"}`, "", `relay.log.kind: "kafka" is not`},
		{`{"kind":"jetstream"}`, "", `relay.log.servers: at least one NATS URL`},
		{`{"kind":"jetstream","servers":["http://a"]}`, "", `relay.log.servers[0]: scheme "http"`},
		{`{"kind":"jetstream","servers":["nats://a"],"replica":3}`, "", `relay.log.replica: unknown field`},
		{`{"kind":"wal","servers":["nats://a"]}`, "", `relay.log.servers: only for "kind": "jetstream"`},
		{`{"kind":"jetstream","servers":["nats://a"],"leaseTTL":"100ms"}`, "", `relay.log.leaseTTL: must be at least 1s`},
		{`{"kind":"jetstream","servers":["nats://a"]}`, `,"lanes":0`, `notify.webhook.1.lanes: must be between 1 and 256`},
		{`{"kind":"jetstream","servers":["nats://a"]}`, `,"lanes":257`, `notify.webhook.1.lanes: must be between 1 and 256`},
		{`{"kind":"jetstream","servers":["nats://a"]}`, `,"maxPending":10`, `notify.webhook.1.maxPending: not supported on a cluster log`},
	} {
		_, err := ParseConfig([]byte(doc(tc.log, tc.extra)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: got %v, want an error with %q", tc.log, tc.extra, err, tc.want)
		}
	}
}
