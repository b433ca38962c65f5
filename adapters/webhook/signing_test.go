package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	reference "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/adapters/webhook/stdwebhooks"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

const (
	secretOld = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretNew = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tMDEyMzQ1"
)

type seen struct {
	header http.Header
	body   []byte
}

// TestEventIDAndSignature: every POST carries webhook-id, the same on a
// retry; with signing secrets the signature verifies with each secret,
// by this package and by the specification's own library, and fails for
// a tampered body.
func TestEventIDAndSignature(t *testing.T) {
	var mu sync.Mutex
	var got []seen
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Header.Clone(), b})
		f := fail
		fail = false
		mu.Unlock()
		if f {
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails
		}
	}))
	defer srv.Close()

	rec := targettest.Record("images", "a.jpg", event.ObjectCreatedPut, 1)
	item := delivery.Item{Seq: 42, Key: "images/a.jpg", EventName: event.ObjectCreatedPut, Record: rec.AppendJSON(nil), LogID: "0123456789abcdef"}

	tg, err := New(Config{Enable: true, Endpoint: srv.URL, SigningSecrets: []string{secretOld, secretNew}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if err := tg.Send(context.Background(), []delivery.Item{item}); err == nil {
		t.Fatal("the first send succeeded against a 503")
	}
	if err := tg.Send(context.Background(), []delivery.Item{item}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("the endpoint got %d POSTs, want 2", len(got))
	}
	for i, g := range got {
		if id := g.header.Get("webhook-id"); id != "0123456789abcdef-42" {
			t.Errorf("attempt %d: webhook-id %q, want 0123456789abcdef-42 on every attempt", i+1, id)
		}
		if n := len(strings.Fields(g.header.Get("webhook-signature"))); n != 2 {
			t.Errorf("attempt %d: %d signatures, want one per secret", i+1, n)
		}
		for _, sec := range []string{secretOld, secretNew} {
			if err := stdwebhooks.Verify(g.header, g.body, time.Now(), 0, sec); err != nil {
				t.Errorf("attempt %d: Verify with a secret: %v", i+1, err)
			}
			wh, err := reference.NewWebhook(sec)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(g.body, g.header); err != nil {
				t.Errorf("attempt %d: the specification's library rejects the signature: %v", i+1, err)
			}
		}
		tampered := append([]byte(nil), g.body...)
		tampered[0] = ' '
		if err := stdwebhooks.Verify(g.header, tampered, time.Now(), 0, secretOld); err == nil {
			t.Errorf("attempt %d: a tampered body verifies", i+1)
		}
	}

	// Unsigned, the id is still there, and nothing else of the scheme.
	got = nil
	plain, err := New(Config{Enable: true, Endpoint: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Send(context.Background(), []delivery.Item{item}); err != nil {
		t.Fatal(err)
	}
	if h := got[0].header; h.Get("webhook-id") != "0123456789abcdef-42" || h.Get("webhook-signature") != "" {
		t.Errorf("unsigned POST: webhook-id %q, signature %q; want the id and no signature", h.Get("webhook-id"), h.Get("webhook-signature"))
	}
}

// TestSigningSecretRefusedByPosition: a malformed secret is a field error
// naming its position, never its value.
func TestSigningSecretRefusedByPosition(t *testing.T) {
	c := Config{Enable: true, Endpoint: "http://127.0.0.1:1/", SigningSecrets: []string{secretOld, "whsec_not base64 s3cret!"}}
	err := c.Validate()
	var fe *kit.FieldError
	if err == nil || !asField(err, &fe) || fe.Field != "signingSecrets.1" || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Validate: %v, want a field error at signingSecrets.1 without the secret", err)
	}
}

func asField(err error, fe **kit.FieldError) bool {
	f, ok := err.(*kit.FieldError)
	*fe = f
	return ok
}
