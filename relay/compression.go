package relay

import (
	"fmt"

	"github.com/bucketrelay/bucketrelay/wal"
)

// compression returns relay.compression for the log's options.
func (s *Settings) compression() wal.Compression { return wal.Compression(s.Compression) }

// validateCompression checks relay.compression: "s2" (the default),
// "zstd" or "none".
func (s *Settings) validateCompression() error {
	if err := s.compression().Validate(); err != nil {
		return &ConfigError{Path: "relay.compression", Msg: fmt.Sprintf("%q: want %s, %s or %s", s.Compression, wal.CompressionS2, wal.CompressionZstd, wal.CompressionNone)}
	}
	return nil
}
