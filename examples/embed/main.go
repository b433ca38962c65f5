// Command embed is the README's "Embedding" program: the smallest storage
// server that embeds the relay. PUT /{bucket}/{key} takes an object and
// publishes its event durably before answering; GET/PUT
// /{bucket}?notification is the S3 bucket-notification API.
package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// The daemon's configuration format; relay.LoadConfig reads it from a file.
	cfg, err := relay.ParseConfig([]byte(`{
	  "relay":  {"dataDir": "relay-data"},
	  "notify": {"webhook": {"1": {"enable": true, "endpoint": "http://127.0.0.1:3000/"}}}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	r, err := relay.Open(cfg, relay.Options{})
	if err != nil {
		log.Fatal(err)
	}

	// The server's own API: PUT /{bucket}/{key}.
	objects := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		bucket, key, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
		if req.Method != http.MethodPut || bucket == "" || key == "" {
			http.Error(w, "only PUT /{bucket}/{key}", http.StatusNotImplemented)
			return
		}
		h := md5.New()
		size, err := io.Copy(h, req.Body) // a real server stores the object here
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec := event.NewRecord(event.ObjectCreatedPut, event.ObjectInfo{
			Bucket: bucket, Key: key, Size: size, ETag: hex.EncodeToString(h.Sum(nil)),
			ContentType: req.Header.Get("Content-Type"),
		}, event.Request{SourceIP: req.RemoteAddr, UserAgent: req.UserAgent()})
		// Durable before the client hears of success: once Publish returns,
		// the event is delivered whatever happens next.
		if err := r.Publish(req.Context(), rec); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, relay.ErrFull) {
				code = http.StatusServiceUnavailable // the log is full: retry later
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("ETag", `"`+rec.S3.Object.ETag+`"`)
	})

	// Mounted in front: GET/PUT /{bucket}?notification for mc and the SDKs.
	srv := &http.Server{Addr: "127.0.0.1:9000", Handler: r.S3Handler(objects, relay.S3Options{})}
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	// Sends still in flight at the deadline are abandoned; their events stay
	// in the log and are delivered after the next start.
	if err := r.Close(sctx); err != nil {
		log.Print(err)
	}
}
