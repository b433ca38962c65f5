package delivery

import (
	"context"
	"log/slog"
	"time"
)

// debugSend logs one Send at debug level (relay.logLevel "debug"): the
// target (from the loop's logger), how many events, their sequences, how
// long the call took, and its error. Nothing of the events' contents is
// logged.
func (l *loop) debugSend(ctx context.Context, items []Item, d time.Duration, err error) {
	if len(items) == 0 || !l.lg.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []any{"events", len(items), "first_seq", items[0].Seq, "last_seq", items[len(items)-1].Seq,
		slog.Duration("duration", d.Round(time.Microsecond))}
	if l.redriving != nil {
		attrs = append(attrs, "redrive", true)
	}
	if err != nil {
		l.lg.Debug("send failed", append(attrs, "err", err)...)
		return
	}
	l.lg.Debug("sent", attrs...)
}
