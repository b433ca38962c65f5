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
	fmt.Fprint(fs.Output(), "Usage: relay serve --config FILE   (or: relay serve FILE)\n\nRuns the relay: the HTTP API on relay.listen, delivery to every enabled target.\nSIGTERM or SIGINT lets sends in flight finish and stops cleanly.\n\nFlags:\n")
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
	return serve(ctx, cfg, os.Stdout, c.ready)
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

// serve runs a relay for cfg until ctx ends. It prints the SQS ARNs line to
// out once the API is listening.
func serve(ctx context.Context, cfg *relay.Config, out io.Writer, ready func(string)) error {
	lg := newLogger(cfg.Relay.LogLevel)
	slog.SetDefault(lg)
	r, err := relay.Open(cfg, relay.Options{Logger: lg})
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
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "SQS ARNs: %s\n", strings.Join(r.ARNs(), " "))
	lg.Info("relay listening", "addr", ln.Addr().String(), "dataDir", cfg.Relay.DataDir, "targets", len(r.ARNs()))
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
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
	if err := r.Close(context.Background()); err != nil {
		return err
	}
	lg.Info("stopped")
	return nil
}
