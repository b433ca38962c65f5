// Package esfake is an in-process stand-in for an Elasticsearch node, for
// tests and benchmarks on machines where Elasticsearch cannot be installed.
//
// It is not Elasticsearch. It implements only the endpoints the relay's
// elasticsearch target and its tests use, with the request and response
// shapes of Elasticsearch 8:
//
//	GET  /                          cluster info (version 8.15.0)
//	HEAD /{index}                   200 if the index exists, else 404
//	PUT  /{index}                   create (400 resource_already_exists_exception if it exists)
//	DELETE /{index}                 delete the index
//	POST /_bulk, /{index}/_bulk     NDJSON index, create and delete operations
//	GET, PUT, DELETE /{index}/_doc/{id}  one document (ids URL-escaped: images%2Fmyphoto.jpg)
//	GET, POST /{index}/_search      match_all only, with size and from
//	POST /{index}/_refresh          accepted; every write is visible at once
//
// Every response carries "X-Elastic-Product: Elasticsearch", which the
// official Go client checks. Documents must be JSON objects (else the item
// fails with 400 mapper_parsing_exception, as a real node answers); an _id
// longer than 512 bytes fails the whole bulk request with 400
// action_request_validation_exception. Mappings are accepted and ignored,
// nothing is analysed, and _search returns documents in the order they
// were first indexed. Documents survive Stop and Start, as on a node with
// persistent storage.
package esfake

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Op is one bulk operation, as the Reject hook sees it.
type Op struct {
	Action string // "index", "create" or "delete"
	Index  string
	ID     string // empty for index operations without an id
	Source []byte // the document; nil for delete
}

// Doc is a stored document.
type Doc struct {
	ID     string
	Source json.RawMessage
}

// Server is a stand-in node. Change the exported fields only while no
// request is in flight.
type Server struct {
	// Reject, if set, is called for every bulk operation. A non-zero
	// status fails the operation with that status and error type (for
	// example 429 "es_rejected_execution_exception"); the others go on.
	Reject func(op Op) (status int, errType string)
	// Username and Password, if set, are required as basic authentication
	// (401 security_exception otherwise).
	Username, Password string

	mu      sync.Mutex
	addr    string
	ln      net.Listener
	srv     *http.Server
	indices map[string]*index
	seqNo   int64
	bulks   int
}

type index struct {
	docs  map[string]*doc
	order []orderEntry
	gen   int64
}

type doc struct {
	source  json.RawMessage
	version int64
	gen     int64 // which order entry is current
}

type orderEntry struct {
	id  string
	gen int64
}

// Start starts a server listening on addr ("127.0.0.1:0" picks a port).
func Start(addr string) (*Server, error) {
	s := &Server{addr: addr, indices: map[string]*index{}}
	if err := s.Restart(); err != nil {
		return nil, err
	}
	return s, nil
}

// URL returns the server's base URL, http://127.0.0.1:port.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// Stop closes the listener and every connection; documents are kept.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart listens again on the same address after Stop.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ { // the port may linger briefly
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("esfake: %w", err)
	}
	s.addr = ln.Addr().String()
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(s.srv)
	return nil
}

// Docs returns the documents of idx in the order _search returns them.
func (s *Server) Docs(idx string) []Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[idx]
	if ix == nil {
		return nil
	}
	out := make([]Doc, 0, len(ix.docs))
	for _, o := range ix.order {
		if d, ok := ix.docs[o.id]; ok && d.gen == o.gen {
			out = append(out, Doc{ID: o.id, Source: d.source})
		}
	}
	return out
}

// Count returns the number of documents in idx.
func (s *Server) Count(idx string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ix := s.indices[idx]; ix != nil {
		return len(ix.docs)
	}
	return 0
}

// Bulks returns how many bulk requests the server has answered.
func (s *Server) Bulks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bulks
}

// ServeHTTP implements the endpoints listed in the package comment.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	if s.Username != "" || s.Password != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.Username || p != s.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8"`)
			writeError(w, r, 401, "security_exception", "missing or wrong authentication credentials for REST request ["+r.URL.Path+"]")
			return
		}
	}
	parts, err := splitPath(r.URL)
	if err != nil {
		writeError(w, r, 400, "illegal_argument_exception", err.Error())
		return
	}
	m := r.Method
	switch {
	case len(parts) == 0 && (m == http.MethodGet || m == http.MethodHead):
		writeJSON(w, r, 200, map[string]any{
			"name": "esfake", "cluster_name": "esfake", "cluster_uuid": "esfake",
			"version": map[string]any{"number": "8.15.0", "build_flavor": "default", "lucene_version": "9.11.1",
				"minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"},
			"tagline": "You Know, for Search",
		})
	case len(parts) == 1 && parts[0] == "_bulk" && (m == http.MethodPost || m == http.MethodPut):
		s.bulk(w, r, "")
	case len(parts) == 1 && strings.HasPrefix(parts[0], "_"):
		writeError(w, r, 400, "illegal_argument_exception", "esfake does not implement "+m+" "+r.URL.Path)
	case len(parts) == 1:
		s.indexAPI(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "_bulk" && (m == http.MethodPost || m == http.MethodPut):
		s.bulk(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "_search" && (m == http.MethodGet || m == http.MethodPost):
		s.search(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "_refresh" && (m == http.MethodPost || m == http.MethodGet):
		writeJSON(w, r, 200, map[string]any{"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
	case len(parts) == 2 && parts[1] == "_doc" && m == http.MethodPost:
		s.docAPI(w, r, parts[0], "")
	case len(parts) == 3 && parts[1] == "_doc":
		s.docAPI(w, r, parts[0], parts[2])
	default:
		writeError(w, r, 400, "illegal_argument_exception", "esfake does not implement "+m+" "+r.URL.Path)
	}
}

// splitPath splits the escaped path and unescapes each part, so an id
// "images%2Fmyphoto.jpg" stays one part.
func splitPath(u *url.URL) ([]string, error) {
	var out []string
	for _, p := range strings.Split(strings.Trim(u.EscapedPath(), "/"), "/") {
		if p == "" {
			continue
		}
		q, err := url.PathUnescape(p)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

func (s *Server) indexAPI(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[name]
	switch r.Method {
	case http.MethodHead, http.MethodGet:
		if ix == nil {
			writeError(w, r, 404, "index_not_found_exception", "no such index ["+name+"]")
			return
		}
		writeJSON(w, r, 200, map[string]any{name: map[string]any{"aliases": map[string]any{}, "mappings": map[string]any{}, "settings": map[string]any{}}})
	case http.MethodPut:
		_, _ = io.Copy(io.Discard, r.Body) // mappings and settings are accepted and ignored
		if ix != nil {
			writeError(w, r, 400, "resource_already_exists_exception", "index ["+name+"/esfake] already exists")
			return
		}
		if err := checkIndexName(name); err != nil {
			writeError(w, r, 400, "invalid_index_name_exception", err.Error())
			return
		}
		s.indices[name] = &index{docs: map[string]*doc{}}
		writeJSON(w, r, 200, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": name})
	case http.MethodDelete:
		if ix == nil {
			writeError(w, r, 404, "index_not_found_exception", "no such index ["+name+"]")
			return
		}
		delete(s.indices, name)
		writeJSON(w, r, 200, map[string]any{"acknowledged": true})
	default:
		writeError(w, r, 405, "method_not_allowed", r.Method+" not allowed on /"+name)
	}
}

func checkIndexName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 255 || strings.ToLower(name) != name ||
		strings.ContainsAny(name, "\\/*?\"<>| ,#:") || strings.IndexAny(name[:1], "-_+") == 0 {
		return fmt.Errorf("Invalid index name [%s]", name)
	}
	return nil
}

// put stores a document and returns its result ("created" or "updated")
// and version. s.mu is held.
func (s *Server) put(name, id string, src []byte) (string, int64, int64) {
	ix := s.indices[name]
	if ix == nil {
		ix = &index{docs: map[string]*doc{}}
		s.indices[name] = ix
	}
	s.seqNo++
	if d, ok := ix.docs[id]; ok {
		d.source = append(json.RawMessage(nil), src...)
		d.version++
		return "updated", d.version, s.seqNo
	}
	ix.gen++
	ix.docs[id] = &doc{source: append(json.RawMessage(nil), src...), version: 1, gen: ix.gen}
	ix.order = append(ix.order, orderEntry{id, ix.gen})
	return "created", 1, s.seqNo
}

func (s *Server) remove(name, id string) (bool, int64) {
	ix := s.indices[name]
	s.seqNo++
	if ix == nil {
		return false, s.seqNo
	}
	if _, ok := ix.docs[id]; !ok {
		return false, s.seqNo
	}
	delete(ix.docs, id)
	if len(ix.order) > 1024 && len(ix.order) > 2*len(ix.docs) { // compact
		kept := ix.order[:0]
		for _, o := range ix.order {
			if d, ok := ix.docs[o.id]; ok && d.gen == o.gen {
				kept = append(kept, o)
			}
		}
		ix.order = kept
	}
	return true, s.seqNo
}

func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func isObject(src []byte) bool {
	src = bytes.TrimSpace(src)
	return len(src) > 0 && src[0] == '{' && json.Valid(src)
}

func (s *Server) docAPI(w http.ResponseWriter, r *http.Request, name, id string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, r, 400, "parse_exception", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		ix := s.indices[name]
		if ix == nil {
			writeError(w, r, 404, "index_not_found_exception", "no such index ["+name+"]")
			return
		}
		d, ok := ix.docs[id]
		if !ok {
			writeJSON(w, r, 404, map[string]any{"_index": name, "_id": id, "found": false})
			return
		}
		writeJSON(w, r, 200, map[string]any{"_index": name, "_id": id, "_version": d.version, "_seq_no": s.seqNo,
			"_primary_term": 1, "found": true, "_source": d.source})
	case http.MethodPut, http.MethodPost:
		if id == "" {
			id = newID()
		}
		if !isObject(body) {
			writeError(w, r, 400, "mapper_parsing_exception", "failed to parse")
			return
		}
		res, v, seq := s.put(name, id, body)
		code := 200
		if res == "created" {
			code = 201
		}
		writeJSON(w, r, code, map[string]any{"_index": name, "_id": id, "_version": v, "result": res, "_seq_no": seq,
			"_primary_term": 1, "_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
	case http.MethodDelete:
		found, seq := s.remove(name, id)
		res, code := "deleted", 200
		if !found {
			res, code = "not_found", 404
		}
		writeJSON(w, r, code, map[string]any{"_index": name, "_id": id, "result": res, "_seq_no": seq, "_primary_term": 1})
	default:
		writeError(w, r, 405, "method_not_allowed", r.Method+" not allowed")
	}
}

type bulkAction struct {
	Index string `json:"_index"`
	ID    string `json:"_id"`
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request, defIndex string) {
	type parsed struct {
		op  Op
		bad string // per-item parse failure
	}
	var ops []parsed
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 100<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var meta map[string]bulkAction
		if err := json.Unmarshal(line, &meta); err != nil || len(meta) != 1 {
			writeError(w, r, 400, "illegal_argument_exception", "Malformed action/metadata line ["+strconv.Itoa(len(ops)+1)+"]")
			return
		}
		var p parsed
		for action, a := range meta {
			p.op = Op{Action: action, Index: a.Index, ID: a.ID}
		}
		if p.op.Index == "" {
			p.op.Index = defIndex
		}
		if p.op.Index == "" {
			writeError(w, r, 400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
			return
		}
		if len(p.op.ID) > 512 {
			writeError(w, r, 400, "action_request_validation_exception",
				fmt.Sprintf("Validation Failed: 1: id [%.20s...] is too long, must be no longer than 512 bytes but was: %d;", p.op.ID, len(p.op.ID)))
			return
		}
		switch p.op.Action {
		case "index", "create":
			if !sc.Scan() {
				writeError(w, r, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
				return
			}
			p.op.Source = append([]byte(nil), sc.Bytes()...)
			if !isObject(p.op.Source) {
				p.bad = "failed to parse"
			}
		case "delete":
			if p.op.ID == "" {
				writeError(w, r, 400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
				return
			}
		default:
			writeError(w, r, 400, "illegal_argument_exception", "esfake does not implement the bulk action ["+p.op.Action+"]")
			return
		}
		ops = append(ops, p)
	}
	if err := sc.Err(); err != nil {
		writeError(w, r, 400, "parse_exception", err.Error())
		return
	}
	start := time.Now()
	s.mu.Lock()
	s.bulks++
	items := make([]map[string]any, len(ops))
	errorsSeen := false
	for i, p := range ops {
		op := p.op
		res := map[string]any{"_index": op.Index, "_id": op.ID}
		items[i] = map[string]any{op.Action: res}
		fail := func(status int, typ, reason string) {
			res["status"] = status
			res["error"] = map[string]any{"type": typ, "reason": reason, "index": op.Index}
			errorsSeen = true
		}
		if s.Reject != nil {
			if status, typ := s.Reject(op); status != 0 {
				fail(status, typ, "rejected by the test hook")
				continue
			}
		}
		if p.bad != "" {
			fail(400, "mapper_parsing_exception", p.bad)
			continue
		}
		switch op.Action {
		case "index", "create":
			if op.ID == "" {
				op.ID = newID()
				res["_id"] = op.ID
			}
			if ix := s.indices[op.Index]; op.Action == "create" && ix != nil && ix.docs[op.ID] != nil {
				fail(409, "version_conflict_engine_exception", "["+op.ID+"]: version conflict, document already exists")
				continue
			}
			result, v, seq := s.put(op.Index, op.ID, op.Source)
			status := 200
			if result == "created" {
				status = 201
			}
			res["result"], res["_version"], res["_seq_no"], res["status"] = result, v, seq, status
		case "delete":
			found, seq := s.remove(op.Index, op.ID)
			if found {
				res["result"], res["status"] = "deleted", 200
			} else {
				res["result"], res["status"] = "not_found", 404
			}
			res["_seq_no"] = seq
		}
		res["_primary_term"] = 1
		res["_shards"] = map[string]int{"total": 1, "successful": 1, "failed": 0}
	}
	s.mu.Unlock()
	writeJSON(w, r, 200, map[string]any{"took": time.Since(start).Milliseconds(), "errors": errorsSeen, "items": items})
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, name string) {
	size, from := 10, 0
	var body struct {
		Query map[string]json.RawMessage `json:"query"`
		Size  *int                       `json:"size"`
		From  *int                       `json:"from"`
		Sort  json.RawMessage            `json:"sort"`
	}
	if b, _ := io.ReadAll(r.Body); len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			writeError(w, r, 400, "parsing_exception", err.Error())
			return
		}
	}
	for q := range body.Query {
		if q != "match_all" {
			writeError(w, r, 400, "parsing_exception", "esfake supports only the match_all query, not ["+q+"]")
			return
		}
	}
	if body.Sort != nil || r.URL.Query().Get("sort") != "" || r.URL.Query().Get("q") != "" {
		writeError(w, r, 400, "parsing_exception", "esfake does not implement sort or q")
		return
	}
	if body.Size != nil {
		size = *body.Size
	}
	if body.From != nil {
		from = *body.From
	}
	if v := r.URL.Query().Get("size"); v != "" {
		size, _ = strconv.Atoi(v)
	}
	if v := r.URL.Query().Get("from"); v != "" {
		from, _ = strconv.Atoi(v)
	}
	s.mu.Lock()
	exists := s.indices[name] != nil
	s.mu.Unlock()
	if !exists {
		writeError(w, r, 404, "index_not_found_exception", "no such index ["+name+"]")
		return
	}
	docs := s.Docs(name)
	hits := []map[string]any{}
	for i := from; i < len(docs) && i < from+size; i++ {
		hits = append(hits, map[string]any{"_index": name, "_id": docs[i].ID, "_score": 1.0, "_source": docs[i].Source})
	}
	var maxScore any = 1.0
	if len(docs) == 0 {
		maxScore = nil
	}
	writeJSON(w, r, 200, map[string]any{
		"took": 1, "timed_out": false,
		"_shards": map[string]int{"total": 1, "successful": 1, "skipped": 0, "failed": 0},
		"hits":    map[string]any{"total": map[string]any{"value": len(docs), "relation": "eq"}, "max_score": maxScore, "hits": hits},
	})
}

func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	var b []byte
	if p := r.URL.Query().Get("pretty"); p != "" && p != "false" {
		b, _ = json.MarshalIndent(v, "", "  ")
		b = append(b, '\n')
	} else {
		b, _ = json.Marshal(v)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func writeError(w http.ResponseWriter, r *http.Request, code int, typ, reason string) {
	e := map[string]any{"type": typ, "reason": reason}
	writeJSON(w, r, code, map[string]any{"error": map[string]any{"root_cause": []any{e}, "type": typ, "reason": reason}, "status": code})
}
