package esfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func do(t *testing.T, s *Server, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %s", method, path, b)
		}
	}
	return res.StatusCode, res.Header, m
}

func TestEndpoints(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	code, h, m := do(t, s, "GET", "/", "")
	if code != 200 || h.Get("X-Elastic-Product") != "Elasticsearch" || m["version"] == nil {
		t.Fatalf("GET /: got %d %v %v, want 200 with the product header and a version", code, h, m)
	}
	if code, _, _ := do(t, s, "HEAD", "/idx", ""); code != 404 {
		t.Fatalf("HEAD a missing index: got %d, want 404", code)
	}
	if code, _, _ := do(t, s, "PUT", "/idx", ""); code != 200 {
		t.Fatalf("PUT /idx: got %d, want 200", code)
	}
	if code, _, m := do(t, s, "PUT", "/idx", ""); code != 400 || !strings.Contains(m["error"].(map[string]any)["type"].(string), "resource_already_exists") {
		t.Fatalf("PUT /idx again: got %d %v, want 400 resource_already_exists_exception", code, m)
	}
	bulk := `{"index":{"_id":"images/a.jpg"}}
{"Records":[1]}
{"create":{"_id":"images/a.jpg"}}
{"Records":[2]}
{"delete":{"_id":"images/missing.jpg"}}
{"index":{}}
not json
{"index":{"_id":"images/b.jpg"}}
{"Records":[3]}
`
	code, _, m = do(t, s, "POST", "/idx/_bulk", bulk)
	if code != 200 || m["errors"] != true {
		t.Fatalf("bulk: got %d %v, want 200 with errors", code, m)
	}
	var statuses []float64
	for _, it := range m["items"].([]any) {
		for _, r := range it.(map[string]any) {
			statuses = append(statuses, r.(map[string]any)["status"].(float64))
		}
	}
	if want := []float64{201, 409, 404, 400, 201}; len(statuses) != 5 || statuses[0] != want[0] || statuses[1] != want[1] || statuses[2] != want[2] || statuses[3] != want[3] || statuses[4] != want[4] {
		t.Fatalf("bulk statuses: got %v, want %v", statuses, want)
	}
	// A delete of a missing document alone is no error.
	if _, _, m := do(t, s, "POST", "/_bulk", `{"delete":{"_index":"idx","_id":"nope"}}`+"\n"); m["errors"] != false {
		t.Fatalf("bulk delete of a missing document: got %v, want errors false", m)
	}
	if code, _, m := do(t, s, "GET", "/idx/_doc/images%2Fa.jpg", ""); code != 200 || m["found"] != true {
		t.Fatalf("GET _doc/images%%2Fa.jpg: got %d %v, want 200 found", code, m)
	}
	s.Stop()
	// Connections to the stopped server are dead; Go does not retry a POST
	// on one, so drop them.
	http.DefaultClient.CloseIdleConnections()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	code, _, m = do(t, s, "POST", "/idx/_search", `{"query":{"match_all":{}},"size":1,"from":1}`)
	hits := m["hits"].(map[string]any)
	if code != 200 || hits["total"].(map[string]any)["value"] != 2.0 || len(hits["hits"].([]any)) != 1 ||
		hits["hits"].([]any)[0].(map[string]any)["_id"] != "images/b.jpg" {
		t.Fatalf("_search after a restart: got %d %v, want 2 documents, the second images/b.jpg", code, m)
	}
	if code, _, _ := do(t, s, "POST", "/idx/_search", `{"query":{"term":{"a":"b"}}}`); code != 400 {
		t.Fatalf("_search with a term query: got %d, want 400 (not implemented)", code)
	}
}
