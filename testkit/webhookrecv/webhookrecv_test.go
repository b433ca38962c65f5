package webhookrecv

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func post(t *testing.T, url, token, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

func TestReceiver(t *testing.T) {
	r := New(t, "tok")
	r.Reject = func(b []byte) bool { return bytes.Contains(b, []byte("poison")) }
	for _, c := range []struct {
		token, body string
		want        int
	}{
		{"tok", "a", 200},
		{"", "b", 401},
		{"tok", "poison", 400},
		{"tok", "c", 200},
	} {
		if got := post(t, r.URL(), c.token, c.body); got != c.want {
			t.Errorf("POST %q with token %q: got %d, want %d", c.body, c.token, got, c.want)
		}
	}
	if got := r.Bodies(); len(got) != 2 || string(got[0]) != "a" || string(got[1]) != "c" {
		t.Fatalf("Bodies: got %q, want [a c]", got)
	}
	r.Stop()
	if got := post(t, r.URL(), "tok", "d"); got != 0 {
		t.Fatalf("POST to a stopped receiver: got %d, want a connection error", got)
	}
	r.Start(t)
	if got := post(t, r.URL(), "tok", "e"); got != 200 || len(r.Bodies()) != 3 {
		t.Fatalf("after Start: got %d and %d bodies, want 200 and 3", got, len(r.Bodies()))
	}
}
