package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/bucketrelay/bucketrelay/relay"
)

// watchReload re-reads the configuration file at path on every SIGHUP and
// applies it to r (relay.Relay.Reload): targets added, changed and
// removed, and the file's bucket rules. A file that does not parse or
// validate is refused with its errors, logged, and the running
// configuration stays. It returns a function that stops watching.
func watchReload(ctx context.Context, r *relay.Relay, path string, lg *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(r, path, lg)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

// reload applies the file at path once, logging what changed.
func reload(r *relay.Relay, path string, lg *slog.Logger) {
	lg.Info("reload: SIGHUP received; re-reading the configuration file", "file", path)
	cfg, err := relay.LoadConfig(path)
	if err != nil {
		lg.Error("reload: the configuration file is refused; the running configuration stays", "file", path, "err", err)
		return
	}
	ch, err := r.Reload(cfg)
	if err != nil {
		lg.Error("reload: the configuration file is refused; the running configuration stays", "file", path, "err", err)
		return
	}
	lg.Info("reload: done", "added", len(ch.Added), "updated", len(ch.Updated), "removed", len(ch.Removed), "bucketsChanged", len(ch.Buckets), "notes", len(ch.Notes))
}
