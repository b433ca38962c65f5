// Command s3server is an example of embedding the relay in a storage
// server: an S3-compatible server (github.com/johannesboyne/gofakes3 over
// files in a directory) that publishes the event record of every PUT, POST, copy,
// completed multipart upload and delete durably to the relay before it
// sends the S3 response (what MinIO calls MINIO_API_SYNC_EVENTS), and
// serves the S3 bucket-notification API (GET/PUT /{bucket}?notification),
// so `mc event add|list|remove` and SDKs' SetBucketNotification work
// against it.
//
// It is an example of embedding, not a production object store: it checks
// no signatures, keeps multipart parts in memory and serves path-style
// requests only.
//
// Usage:
//
//	s3server -addr 127.0.0.1:9000 -data ./s3data -config relay.json
//
// The relay's configuration file is the daemon's (see the README); its
// relay.dataDir holds the relay's log and rules.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"

	"github.com/bucketrelay/bucketrelay/relay"
)

// Defaults of the flags.
const (
	DefaultAddr   = "127.0.0.1:9000"
	DefaultData   = "s3data"
	DefaultConfig = "relay.json"
)

// shutdownTimeout bounds the wait for requests and then for sends in flight.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "s3server:", err)
		os.Exit(1)
	}
}

// run starts the server and serves until ctx ends. It prints the relay's
// ARNs and the S3 endpoint to out once it is listening.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("s3server", flag.ContinueOnError)
	addr := fs.String("addr", DefaultAddr, "host:port to serve S3 on")
	data := fs.String("data", DefaultData, "directory of the object store (one file per object)")
	config := fs.String("config", DefaultConfig, "the relay's configuration file")
	region := fs.String("region", "", "the region in event records (awsRegion)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lg := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := relay.LoadConfig(*config)
	if err != nil {
		return err
	}
	r, err := relay.Open(cfg, relay.Options{Logger: lg})
	if err != nil {
		return err
	}
	closeRelay := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return r.Close(cctx)
	}
	backend, err := newBackend(*data)
	if err != nil {
		closeRelay()
		return fmt.Errorf("object store: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		closeRelay()
		return err
	}
	srv := &http.Server{Handler: newServer(backend, r, *region, lg), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "SQS ARNs: %s\n", strings.Join(r.ARNs(), " "))
	fmt.Fprintf(out, "S3 API: http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		closeRelay()
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		lg.Warn("http shutdown", "err", err)
	}
	return closeRelay()
}

// newBackend returns gofakes3's file backend over dir: one file per object
// (buckets/BUCKET/KEY) and its metadata beside it. (gofakes3's bbolt
// backend is not used: it hands out object hashes that point into bbolt's
// memory map after the transaction ends.)
func newBackend(dir string) (*s3afero.MultiBucketBackend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), dir))
}
