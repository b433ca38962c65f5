package stdwebhooks_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	reference "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/bucketrelay/bucketrelay/adapters/webhook/stdwebhooks"
)

// The specification's published test vector.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorUnix   = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSpecVector(t *testing.T) {
	s, err := stdwebhooks.NewSigner(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sign(vectorID, time.Unix(vectorUnix, 0), []byte(vectorBody)); got != vectorSig {
		t.Fatalf("got %s, want %s", got, vectorSig)
	}
	// The prefix is optional.
	s2, err := stdwebhooks.NewSigner(strings.TrimPrefix(vectorSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Sign(vectorID, time.Unix(vectorUnix, 0), []byte(vectorBody)); got != vectorSig {
		t.Fatalf("without prefix: got %s, want %s", got, vectorSig)
	}
}

// TestReferenceVerifies checks our signatures with the specification's own
// Go library, an independent implementation.
func TestReferenceVerifies(t *testing.T) {
	old := "whsec_" + "c2VjcmV0LW9uZS0wMTIzNDU2Nzg5MDEyMzQ1Njc4OTA="
	s, err := stdwebhooks.NewSigner(old, vectorSecret) // rotation: two secrets
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"EventName":"s3:ObjectCreated:Put","Key":"images/a.jpg","Records":[]}`)
	h := http.Header{}
	now := time.Now()
	s.SetHeaders(h, "evt_1", now, body)
	for _, sec := range []string{old, vectorSecret} {
		wh, err := reference.NewWebhook(sec)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("reference library rejects a signature by secret %q…: %v", sec[:10], err)
		}
		if err := stdwebhooks.Verify(h, body, now, 0, sec); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	// Tampered body: both implementations reject it.
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-2] = ' '
	wh, _ := reference.NewWebhook(vectorSecret)
	if err := wh.Verify(tampered, h); err == nil {
		t.Error("reference library accepts a tampered body")
	}
	if err := stdwebhooks.Verify(h, tampered, now, 0, vectorSecret); !errors.Is(err, stdwebhooks.ErrSignature) {
		t.Errorf("tampered body: got %v, want ErrSignature", err)
	}
	// A wrong secret is rejected.
	if err := stdwebhooks.Verify(h, body, now, 0, "whsec_"+"d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw=="); !errors.Is(err, stdwebhooks.ErrSignature) {
		t.Errorf("wrong secret: got %v, want ErrSignature", err)
	}
}

func TestOldTimestampRejected(t *testing.T) {
	s, _ := stdwebhooks.NewSigner(vectorSecret)
	body := []byte(vectorBody)
	h := http.Header{}
	sent := time.Now().Add(-10 * time.Minute)
	s.SetHeaders(h, vectorID, sent, body)
	if err := stdwebhooks.Verify(h, body, time.Now(), 0, vectorSecret); !errors.Is(err, stdwebhooks.ErrTimestamp) {
		t.Errorf("old timestamp: got %v, want ErrTimestamp", err)
	}
	wh, _ := reference.NewWebhook(vectorSecret)
	if err := wh.Verify(body, h); err == nil {
		t.Error("reference library accepts an old timestamp")
	}
	h.Del(stdwebhooks.HeaderID)
	if err := stdwebhooks.Verify(h, body, sent, 0, vectorSecret); !errors.Is(err, stdwebhooks.ErrMissingHeader) {
		t.Errorf("missing id: got %v, want ErrMissingHeader", err)
	}
}

func TestBadSecretNamesPositionNotValue(t *testing.T) {
	_, err := stdwebhooks.NewSigner(vectorSecret, "whsec_not base64!!")
	if err == nil {
		t.Fatal("malformed secret accepted")
	}
	if !strings.Contains(err.Error(), "secret 2") || strings.Contains(err.Error(), "not base64!!") {
		t.Errorf("got %q, want the position and never the value", err)
	}
}
