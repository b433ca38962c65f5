package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

func TestConformance(t *testing.T) {
	rcv := webhookrecv.New(t, "s3cr3t-token")
	targettest.Run(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New: func(t testing.TB) delivery.Target {
			tg, err := New(Config{Enable: true, Endpoint: rcv.URL(), AuthToken: "s3cr3t-token", Timeout: "2s"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return tg
		},
		Received: func(testing.TB) [][]byte { return rcv.Bodies() },
		Stop:     func(testing.TB) { rcv.Stop() },
		Start:    rcv.Start,
	})
}

func TestStatusClassification(t *testing.T) {
	for code, want := range map[int]string{200: "ok", 204: "ok", 400: "permanent", 404: "permanent", 408: "retry", 429: "retry", 500: "retry", 503: "retry", 410: "gone"} {
		err := StatusError(code)
		got := "retry"
		if err == nil {
			got = "ok"
		} else if delivery.IsGone(err) {
			got = "gone"
		} else if delivery.IsPermanent(err) {
			got = "permanent"
		}
		if got != want {
			t.Errorf("status %d: got %s, want %s", code, got, want)
		}
	}
}

func TestPoisonEventDoesNotBlock(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	rcv.Reject = func(b []byte) bool { return bytes.Contains(b, []byte("poison.jpg")) }
	tg, err := New(Config{Enable: true, Endpoint: rcv.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	items := []delivery.Item{}
	for _, k := range []string{"a.jpg", "poison.jpg", "b.jpg"} {
		r := targettest.Record("images", k, event.ObjectCreatedPut, 1)
		e := targettest.Entry(r, "x")
		items = append(items, delivery.Item{Key: e.Key, EventName: event.Name(e.Name), Record: e.Data})
	}
	err = tg.Send(context.Background(), items)
	var be *delivery.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != 1 || !delivery.IsPermanent(be.Failed[0].Err) {
		t.Fatalf("Send: got %v, want a BatchError with item 1 permanent", err)
	}
	if n := len(rcv.Bodies()); n != 2 {
		t.Fatalf("receiver got %d events, want 2", n)
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	tg, err := New(Config{Enable: true, Endpoint: "http://user:hunter22@127.0.0.1:1/hook", AuthToken: "tok-abcdef"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Send(context.Background(), []delivery.Item{{Key: "b/k", EventName: event.ObjectCreatedPut, Record: []byte(`{}`)}})
	if err == nil {
		t.Fatal("send to a closed port succeeded")
	}
	if s := err.Error(); strings.Contains(s, "hunter22") || strings.Contains(s, "tok-abcdef") {
		t.Fatalf("error leaks a secret: %s", s)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "endpoint"},
		{Config{Endpoint: "ftp://x"}, "endpoint"},
		{Config{Endpoint: "http://x", TLSFiles: kit.TLSFiles{ClientCert: "a"}}, "clientCert"},
		{Config{Endpoint: "http://x", Timeout: "soon"}, "timeout"},
		{Config{Endpoint: "http://x", Format: "xml"}, "format"},
		{Config{Endpoint: "http://x", Format: kit.FormatCloudEvents, CloudEventsMode: "batch"}, "cloudeventsMode"},
	} {
		var fe *kit.FieldError
		if err := c.cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
}

// TestRedirectIsAFailedSend: a 3xx is never followed (Go's client would
// re-send the POST as a GET without a body, and the final 200 would count
// as delivered); it is a retryable failure naming the status and the
// Location, with the Location's query values redacted.
func TestRedirectIsAFailedSend(t *testing.T) {
	var final atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) {
		final.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	for _, code := range []int{301, 302, 303, 307, 308} {
		mux.HandleFunc(fmt.Sprintf("/r%d", code), func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/final?sig=R3dirSig&keep=1")
			w.WriteHeader(code)
		})
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, code := range []int{301, 302, 303, 307, 308} {
		tg, err := New(Config{Enable: true, Endpoint: fmt.Sprintf("%s/r%d?token=Qu3ryTok", srv.URL, code)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = tg.Send(context.Background(), []delivery.Item{
			{Key: "b/k1", EventName: event.ObjectCreatedPut, Record: []byte(`{}`)},
			{Key: "b/k2", EventName: event.ObjectCreatedPut, Record: []byte(`{}`)},
		})
		var be *delivery.BatchError
		if !errors.As(err, &be) || len(be.Failed) != 2 || delivery.IsPermanent(be.Failed[0].Err) {
			t.Fatalf("%d: Send: got %v, want both items failed, retryable", code, err)
		}
		msg := be.Failed[0].Err.Error()
		for _, want := range []string{strconv.Itoa(code), srv.URL + "/final?sig=xxxxx&keep=xxxxx"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%d: error %q does not name %q", code, msg, want)
			}
		}
		if strings.Contains(msg, "R3dirSig") || strings.Contains(msg, "Qu3ryTok") {
			t.Errorf("%d: error leaks a query value: %s", code, msg)
		}
		tg.Close()
	}
	if n := final.Load(); n != 0 {
		t.Fatalf("the redirect target was requested %d times, want 0", n)
	}
}

// TestQueryCredentialsNotInErrors: a token in the endpoint's query string
// never appears in an error, which the engine logs at every retry and
// stores with a quarantined event.
func TestQueryCredentialsNotInErrors(t *testing.T) {
	for _, q := range []string{"token", "access_token", "key", "sig", "X-Amz-Signature"} {
		endpoint := "http://127.0.0.1:1/hook?" + q + "=S3cretQu3ry&a=b"
		tg, err := New(Config{Enable: true, Endpoint: endpoint}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = tg.Send(context.Background(), []delivery.Item{{Key: "b/k", EventName: event.ObjectCreatedPut, Record: []byte(`{}`)}})
		if err == nil {
			t.Fatal("send to a closed port succeeded")
		}
		if s := err.Error(); strings.Contains(s, "S3cretQu3ry") || !strings.Contains(s, q+"=xxxxx") {
			t.Errorf("%s: got error %q, want the value redacted and the name kept", q, s)
		}
	}
}
