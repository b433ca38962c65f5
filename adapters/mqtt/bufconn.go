package mqtt

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/url"
	"os"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// paho reads the broker's packets straight from the connection, a few
// bytes per read (the packet type, each byte of the length, then the
// rest): three read system calls for every PUBACK of a QoS 1 publish.
// For tcp:// and tls:// brokers the target opens the connection itself
// and reads it through a buffer, so one read takes in the
// acknowledgements of many publishes. WebSocket brokers and a proxy from
// the environment keep paho's own dialling.

// readBufferSize is the buffer of a connection's reads.
const readBufferSize = 32 << 10

// bufferedConn is a connection whose reads go through a buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// bufferedDial returns the connection function for the broker's scheme,
// nil where paho's own is kept (WebSocket, unix sockets, a proxy set by
// all_proxy or ALL_PROXY).
func bufferedDial(scheme string) paho.OpenConnectionFunc {
	if os.Getenv("all_proxy") != "" || os.Getenv("ALL_PROXY") != "" {
		return nil
	}
	switch scheme {
	case "tcp", "ssl", "tls", "tcps":
	default:
		return nil
	}
	return func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		d := o.Dialer
		if d == nil {
			d = &net.Dialer{Timeout: o.ConnectTimeout}
		}
		var c net.Conn
		var err error
		if uri.Scheme == "tcp" {
			c, err = d.Dial("tcp", uri.Host)
		} else {
			c, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
		}
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}, nil
	}
}
