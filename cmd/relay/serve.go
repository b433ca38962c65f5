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
	"strings"
	"time"

	"github.com/bucketrelay/bucketrelay/relay"
)

// serveCommand runs the relay daemon.
type serveCommand struct {
	ready func(addr string) // tests: called once listening
}

// Usage prints the command's help.
func (c *serveCommand) Usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), "Usage: relay serve --config FILE   (or: relay serve FILE)\n\nRuns the relay: the HTTP API on relay.listen, delivery to every enabled target.\nSIGTERM or SIGINT lets sends in flight finish and stops cleanly.\nSIGHUP re-reads the file and applies its targets and bucket rules (an invalid\nfile is refused, logged, and the running configuration stays).\n\nFlags:\n")
	fs.PrintDefaults()
}

// Run runs the daemon until ctx ends.
func (c *serveCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (JSON)")
	fs.Usage = func() { c.Usage(fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *path == "" && fs.NArg() == 1:
		*path = fs.Arg(0) // relay serve FILE
	case *path == "" || fs.NArg() > 0:
		fs.Usage()
		return usagef("serve needs one configuration file: --config FILE or serve FILE")
	}
	cfg, err := relay.LoadConfig(*path)
	if err != nil {
		return usagef("%v", err)
	}
	return serveFile(ctx, cfg, *path, os.Stdout, c.ready)
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	if level == "" {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// closeTimeout bounds how long stopping waits for sends in flight.
const closeTimeout = 10 * time.Second

// The API server's timeouts. A slow sender may not hold a connection
// (and up to relay.maxRequestBytes of memory) longer than a sender at
// minBodyRate needs for the largest body.
var (
	// headerTimeout bounds reading a request's headers, and is the slack
	// added to the body's time.
	headerTimeout = 10 * time.Second
	// minBodyRate is the slowest upload, in bytes per second, that may send
	// a body of relay.maxRequestBytes within ReadTimeout.
	minBodyRate int64 = 256 << 10
	// idleTimeout closes keep-alive connections that send nothing.
	idleTimeout = 2 * time.Minute
)

// newServer returns the HTTP server for the relay's API, with timeouts
// scaled to the body limit: ReadTimeout lets a body of maxRequestBytes
// arrive at minBodyRate; WriteTimeout (which net/http counts from the end
// of the headers) adds the longest a POST may wait for room in a full log.
func newServer(cfg *relay.Config, h http.Handler) *http.Server {
	limit := cfg.Relay.MaxRequestBytes
	if limit <= 0 {
		limit = relay.DefaultMaxRequestBytes
	}
	read := headerTimeout + time.Duration(limit)*time.Second/time.Duration(minBodyRate)
	fullWait := relay.DefaultFullWait
	if d, err := time.ParseDuration(cfg.Relay.FullWait); err == nil && d > 0 {
		fullWait = d
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       read,
		WriteTimeout:      read + fullWait + headerTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
}

// errLogFailed is returned by serve when the log stopped after a storage
// error: exit code 1.
var errLogFailed = errors.New("the write-ahead log failed; stopped")

// serve runs a relay for cfg until ctx ends or its log fails. It prints the
// SQS ARNs line to out once the API is listening.
func serve(ctx context.Context, cfg *relay.Config, out io.Writer, ready func(string)) error {
	return serveFile(ctx, cfg, "", out, ready)
}

// serveFile is serve for a configuration read from path ("" for none):
// SIGHUP re-reads it (reload.go).
func serveFile(ctx context.Context, cfg *relay.Config, path string, out io.Writer, ready func(string)) error {
	lg := newLogger(cfg.Relay.LogLevel)
	slog.SetDefault(lg)
	r, err := openRelay(cfg, lg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Relay.Listen)
	if err != nil {
		r.Close(context.Background())
		return err
	}
	// relay.metricsListen: /metrics alone, without the token, for scrapers.
	var msrv *http.Server
	var mln net.Listener
	if addr := cfg.Relay.MetricsListen; addr != "" {
		if mln, err = net.Listen("tcp", addr); err != nil {
			ln.Close()
			r.Close(context.Background())
			return fmt.Errorf("relay.metricsListen: %w", err)
		}
		msrv = &http.Server{Handler: r.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		lg.Info("metrics listening", "addr", mln.Addr().String())
	}
	srv := newServer(cfg, r.Handler())
	scheme := "http"
	if cfg.Relay.TLS != nil {
		// relay.tls: HTTPS, the certificate re-read when its files change.
		if srv.TLSConfig, err = relay.ServerTLSConfig(*cfg.Relay.TLS, lg); err != nil {
			ln.Close()
			if mln != nil {
				mln.Close()
			}
			r.Close(context.Background())
			return err
		}
		scheme = "https"
	}
	if path != "" {
		defer watchReload(ctx, r, path, lg)()
	}
	fmt.Fprintln(out, arnsLine(r.ARNs()))
	lg.Info("relay listening", "addr", ln.Addr().String(), "scheme", scheme, "dataDir", cfg.Relay.DataDir, "targets", len(r.ARNs()))
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 2)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
			return
		}
		errc <- srv.Serve(ln)
	}()
	if msrv != nil {
		go func() { errc <- msrv.Serve(mln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		srv.Close()
		if msrv != nil {
			msrv.Close()
		}
		r.Close(context.Background())
		return err
	case <-r.Done():
		// Fail-stop: the relay already answers 503 to every POST; stop
		// serving and exit non-zero so a supervisor restarts it on a
		// checked file. What was acknowledged before is in the file.
		err := r.Err()
		lg.Error("the write-ahead log failed; the relay stops accepting events and exits", "file", r.Log().Path(), "err", err)
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		if msrv != nil {
			msrv.Close()
		}
		r.Close(context.Background())
		return fmt.Errorf("%w: %v", errLogFailed, err)
	}
	lg.Info("stopping: finishing requests and sends in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		lg.Warn("http shutdown", "err", err)
	}
	if msrv != nil {
		msrv.Close()
	}
	// Sends in flight get their own budget; past it they are abandoned
	// and delivered again after the next start.
	cctx, ccancel := context.WithTimeout(context.Background(), closeTimeout)
	defer ccancel()
	if err := r.Close(cctx); err != nil {
		return err
	}
	lg.Info("stopped")
	return nil
}

// arnsLine is the "SQS ARNs:" line the relay prints at start, as MinIO
// does; with no target it says so rather than ending in nothing.
func arnsLine(arns []string) string {
	if len(arns) == 0 {
		return "SQS ARNs: none (no target is enabled in the notify section: events are accepted and dropped)"
	}
	return "SQS ARNs: " + strings.Join(arns, " ")
}

// openRelay opens the relay, turning a panic while opening (bbolt panics
// on some damaged pages) into an error: a damaged log is a runtime failure
// (exit 1), not a usage error (Go exits 2 on a panic).
func openRelay(cfg *relay.Config, lg *slog.Logger) (r *relay.Relay, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("opening the log %s failed: %v (the file may be damaged: run walinspect verify)", cfg.DataPath("wal.db"), p)
		}
	}()
	return relay.Open(cfg, relay.Options{Logger: lg})
}
