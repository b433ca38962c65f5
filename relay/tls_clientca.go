package relay

import (
	"crypto/tls"
	"log/slog"
	"sync"
)

// caReloader serves relay.tls.clientCA and reads the file again at a
// handshake after it changed (size or modification time), so that a CA
// added or rotated out takes effect without a restart. A new file that
// does not load is logged once per change and the previous CAs stay.
type caReloader struct {
	file string
	lg   *slog.Logger

	mu sync.Mutex
	// seen is the stamp of the file last tried, loaded or not.
	seen fileStamp
	// conf is the server configuration with the CAs last loaded; it has
	// no GetConfigForClient, so it is used as it is.
	conf *tls.Config
}

// newCAReloader verifies client certificates against file for tc, which
// must already carry the pool loaded from file: it sets
// tc.GetConfigForClient.
func newCAReloader(tc *tls.Config, file string, lg *slog.Logger) {
	r := &caReloader{file: file, lg: lg, conf: tc.Clone()}
	// The stamp taken after the first load could miss a change made in
	// between: at worst the file is read once more.
	if st, err := stampOf(file); err == nil {
		r.seen = st
	}
	tc.GetConfigForClient = r.get
}

// get is tls.Config.GetConfigForClient: one stat per handshake, a read
// only when the file changed.
func (r *caReloader) get(*tls.ClientHelloInfo) (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := stampOf(r.file)
	if err != nil || st == r.seen {
		return r.conf, nil
	}
	r.seen = st
	pool, err := loadPool(r.file)
	if err != nil {
		r.lg.Error("the new client CA file does not load; verifying against the previous CAs", "clientCA", r.file, "err", err)
		return r.conf, nil
	}
	c := r.conf.Clone()
	c.ClientCAs = pool
	r.conf = c
	r.lg.Info("TLS client CAs reloaded", "clientCA", r.file)
	return r.conf, nil
}
