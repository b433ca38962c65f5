package redis

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
)

// A batch goes to Redis as one buffer of RESP commands, written to the
// connection in one call, and the replies are read with redigo. Writing
// the commands through redigo's Send took an interface value per key and
// value (an allocation each), a copy into its 4 KiB buffer, and a write
// system call per 4 KiB: some 250 calls for 1,000 records of 1 KiB.

// Lengths of the fixed parts of the values (event.AppendRecords,
// AppendAccessItem), from which a value's RESP length is known before it
// is written.
const (
	recordsWrapLen = len(`{"Records":[]}`)
	accessWrapLen  = len(`["",]`) + recordsWrapLen
)

// appendArray appends a RESP array header of n elements.
func appendArray(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendBulkHeader appends the header of a bulk string of n bytes; the n
// bytes and "\r\n" must follow.
func appendBulkHeader(b []byte, n int) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendBulk appends s as a bulk string.
func appendBulk(b []byte, s string) []byte {
	b = appendBulkHeader(b, len(s))
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// appendCommand appends a command of fixed words (MULTI, EXEC).
func appendCommand(b []byte, words ...string) []byte {
	b = appendArray(b, len(words))
	for _, w := range words {
		b = appendBulk(b, w)
	}
	return b
}

// appendRecordsBulk appends {"Records":[record]} as a bulk string.
func appendRecordsBulk(b []byte, record []byte) []byte {
	b = appendBulkHeader(b, len(record)+recordsWrapLen)
	b = append(b, `{"Records":[`...)
	b = append(b, record...)
	return append(b, "]}\r\n"...)
}

// appendAccessBulk appends it's access-format list item (AppendAccessItem)
// as a bulk string; scratch holds the formatted time and is returned for
// reuse.
func appendAccessBulk(b, scratch []byte, it *delivery.Item) ([]byte, []byte) {
	scratch = kit.EventTime(it).AppendFormat(scratch[:0], time.RFC3339Nano)
	b = appendBulkHeader(b, len(scratch)+len(it.Record)+accessWrapLen)
	b = append(b, `["`...)
	b = append(b, scratch...)
	b = append(b, `",{"Records":[`...)
	b = append(b, it.Record...)
	return append(b, "]}]\r\n"...), scratch
}

// writeAll writes b to raw within timeout, or until ctx is done.
func writeAll(ctx context.Context, raw net.Conn, b []byte, timeout time.Duration) error {
	if err := raw.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { raw.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := raw.Write(b)
	if !stop() && err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// dialTCP makes the TCP connection under a target's connection; tests
// replace it to watch what is written.
var dialTCP = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext

// dialer returns the dial function of one connection: TCP, and TLS on top
// when tc is set; the connection it makes is stored in *raw, for writeAll.
func dialer(tc *tls.Config, raw *net.Conn) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialTCP(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			tlsc := tls.Client(c, tc.Clone())
			if err := tlsc.HandshakeContext(ctx); err != nil {
				c.Close()
				if ctx.Err() != nil {
					// Likely a plain-text port, which never answers.
					return nil, fmt.Errorf("TLS handshake timeout: %w", err)
				}
				return nil, err
			}
			c = tlsc
		}
		*raw = c
		return c, nil
	}
}
