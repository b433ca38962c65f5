package main

// Scenario "elasticsearch": the Elasticsearch target in both formats
// against the in-process stand-in node (adapters/elasticsearch/esfake; no
// Elasticsearch can be installed on these machines), or against the real
// node named by RELAY_BENCH_ELASTICSEARCH_URL for the rate runs: delivered
// rate through log + engine + target beside a direct go-elasticsearch
// client sending the same bulk requests, and the drain after the node was
// stopped while a backlog built up. The stand-in makes the figures a
// measure of the client side (encoding, HTTP, the relay's overhead), not of
// Elasticsearch's indexing. The scenario code is storeBench, in stores.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/bucketrelay/bucketrelay/adapters/elasticsearch"
	"github.com/bucketrelay/bucketrelay/adapters/elasticsearch/esfake"
	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

func init() { harness.Register("elasticsearch", runElasticsearch) }

func benchESIndex(ns bool) string {
	if ns {
		return "relaybench-ns"
	}
	return "relaybench-access"
}

func runElasticsearch(ctx context.Context, o harness.Options) (harness.Result, error) {
	node, err := esfake.Start("127.0.0.1:0")
	if err != nil {
		return harness.Result{}, err
	}
	defer node.Stop()
	url := node.URL()
	httpDo := func(method, path string) error {
		req, _ := http.NewRequestWithContext(ctx, method, url+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return nil
	}
	sb := &storeBench{
		name:   "elasticsearch",
		client: "go-elasticsearch, one _bulk request per batch, a client each,",
		// The kind's default window (adapters/elasticsearch/kind.go); the
		// direct client sends as many bulk requests at once, each on a
		// client of its own, a batch at a time.
		inFlight: elasticsearch.Kind.InFlight,
		rateGoal: func(direct float64) string { return fmt.Sprintf("≥ %.0f (80%% of direct)", 0.8*direct) },
		newTarget: func(ns bool) (delivery.Target, error) {
			f := "access"
			if ns {
				f = "namespace"
			}
			return elasticsearch.New(elasticsearch.Config{Enable: true, Format: f, URL: url, Index: benchESIndex(ns)}, harness.QuietLogger())
		},
		reset: func(ns bool) error { return httpDo("DELETE", "/"+benchESIndex(ns)) },
		direct: func(ns bool) (func(context.Context, []delivery.Item) error, func(), error) {
			// A transport of its own: http.DefaultTransport keeps 2 idle
			// connections per host, so clients sharing it would redial
			// when more than 2 send at once (the target keeps 4).
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			c, err := es.NewClient(es.Config{Addresses: []string{url}, DisableRetry: true, Transport: tr})
			if err != nil {
				return nil, nil, err
			}
			index := benchESIndex(ns)
			send := func(ctx context.Context, items []delivery.Item) error {
				var b bytes.Buffer
				for i := range items {
					if ns {
						id, _ := json.Marshal(items[i].Key)
						fmt.Fprintf(&b, `{"index":{"_id":%s}}`+"\n", id)
						b.Write(event.AppendRecords(nil, items[i].Record))
						b.WriteByte('\n')
						continue
					}
					// The event's id as the document's, as the target
					// sends it (an id of the same length: log id and
					// sequence).
					b.WriteString(`{"index":{"_id":"` + wal.EventID("3f9a0c1d2e4b5a69", 1_000_000+items[i].Seq) + "\"}}\n")
					b.WriteString(`{"Records":[`)
					b.Write(items[i].Record)
					b.WriteString(`],"eventTime":"` + items[i].EventTime.UTC().Format(time.RFC3339Nano) + "\"}\n")
				}
				res, err := esapi.BulkRequest{Index: index, Body: &b}.Do(ctx, c)
				if err != nil {
					return err
				}
				defer res.Body.Close()
				var br struct {
					Errors bool `json:"errors"`
				}
				if err := json.NewDecoder(res.Body).Decode(&br); err != nil || res.IsError() || br.Errors {
					return fmt.Errorf("bulk failed: %s %v", res.Status(), err)
				}
				return nil
			}
			return send, tr.CloseIdleConnections, nil
		},
		stop:  func() error { node.Stop(); return nil },
		start: func() error { return node.Restart() },
		ids: func(ns bool) (map[string]uint64, []uint64, error) {
			docs := node.Docs(benchESIndex(ns))
			if ns {
				out := make(map[string]uint64, len(docs))
				for _, d := range docs {
					out[d.ID], _ = requestID(d.Source)
				}
				return out, nil, nil
			}
			ids := make([]uint64, 0, len(docs))
			for _, d := range docs {
				id, _ := requestID(d.Source)
				ids = append(ids, id)
			}
			return nil, ids, nil
		},
	}
	res, err := sb.run(ctx, o)
	res.Notes = append(res.Notes, "server: the in-process stand-in node (esfake, in this process, sharing its 2 cores), not Elasticsearch: figures measure the client side and the relay's overhead, not indexing; "+
		strings.TrimSpace("outage: the stand-in's listener is closed and reopened on the same port; it keeps its documents"))
	return res, err
}
