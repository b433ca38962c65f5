package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
)

// EventIDProperty is the MQTT 5 user property carrying the event's id
// (protocolVersion 5), the same on every retry.
const EventIDProperty = "event-id"

// MQTT 5 reason codes that mean one message can never be accepted.
const (
	reasonPacketTooLarge   = 0x95
	reasonPayloadFormatBad = 0x99
)

// conn5 is the MQTT 5 connection of a target with protocolVersion 5
// (eclipse/paho.golang): made by the first Send, dropped after a failure.
type conn5 struct {
	c    *paho5.Client
	conn net.Conn
	dead chan struct{} // closed when the client reports an error or the server disconnects
}

func (c *conn5) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

// connect5 returns the MQTT 5 connection, or connects a new client.
// Concurrent sends wait for one connect rather than each connecting.
func (t *Target) connect5(ctx context.Context) (*conn5, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c5 != nil && t.c5.alive() {
		return t.c5, nil
	}
	t.reset5Locked(t.c5)
	u, _ := url.Parse(t.cfg.Broker)
	secure := schemes[u.Scheme]
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[bool]string{false: "1883", true: "8883"}[secure])
	}
	user, pass := t.cfg.Username, t.password
	if user == "" && u.User != nil {
		user = u.User.Username()
		if p, ok := u.User.Password(); ok && pass == "" {
			pass = p
		}
	}
	dctx, cancel := context.WithTimeout(ctx, DefaultConnectTimeout)
	defer cancel()
	d := &net.Dialer{KeepAlive: -1} // MQTT has its own keep-alive
	var conn net.Conn
	var err error
	if secure {
		tc := t.tls
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		conn, err = (&tls.Dialer{NetDialer: d, Config: tc.Clone()}).DialContext(dctx, "tcp", host)
	} else {
		conn, err = d.DialContext(dctx, "tcp", host)
	}
	if err != nil {
		return nil, t.errorf("connecting to %s: %v", t.cfg.Broker, err)
	}
	c5 := &conn5{conn: conn, dead: make(chan struct{})}
	var once sync.Once
	kill := func() { once.Do(func() { close(c5.dead) }) }
	c5.c = paho5.NewClient(paho5.ClientConfig{
		ClientID:      t.cfg.ClientID,
		Conn:          packets.NewThreadSafeConn(conn),
		PacketTimeout: DefaultAckTimeout,
		OnClientError: func(err error) {
			t.lg.Debug("mqtt: connection lost", "err", t.redact(err.Error()))
			kill()
		},
		OnServerDisconnect: func(d *paho5.Disconnect) {
			t.lg.Debug("mqtt: the broker disconnected", "reason", d.ReasonCode)
			kill()
		},
	})
	cp := &paho5.Connect{
		ClientID: t.cfg.ClientID, KeepAlive: uint16(t.keepAlive / time.Second), CleanStart: true,
		Username: user, UsernameFlag: user != "", Password: []byte(pass), PasswordFlag: pass != "",
	}
	if _, err := c5.c.Connect(dctx, cp); err != nil {
		conn.Close()
		return nil, t.errorf("connecting to %s: %v", t.cfg.Broker, err)
	}
	t.c5 = c5
	t.lg.Debug("mqtt: connected (MQTT 5)", "broker", kit.Redact(t.cfg.Broker))
	return c5, nil
}

// reset5 drops c5 if it is still the target's MQTT 5 client; the next
// Send connects a new one.
func (t *Target) reset5(c5 *conn5) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reset5Locked(c5)
}

func (t *Target) reset5Locked(c5 *conn5) {
	if c5 == nil || t.c5 != c5 {
		return
	}
	if c5.alive() {
		_ = c5.c.Disconnect(&paho5.Disconnect{ReasonCode: 0})
	}
	c5.conn.Close()
	t.c5 = nil
}

// publish5 returns it's MQTT 5 PUBLISH: the body of the target's format,
// its content type, the event's id as the user property event-id and, in
// CloudEvents binary mode, the attributes as user properties (the MQTT
// binding: names unprefixed, datacontenttype as the Content Type).
func (t *Target) publish5(it *delivery.Item) *paho5.Publish {
	props := &paho5.PublishProperties{}
	var b *cloudevent.Binding
	if t.cfg.Format.CloudEvents() && !t.cfg.CloudEventsMode.Structured(true) {
		b = &cloudevent.MQTT
	}
	body, ctype := t.cfg.Format.Encode(it, b, func(k, v string) {
		if k == cloudevent.MQTT.ContentType {
			return
		}
		props.User = append(props.User, paho5.UserProperty{Key: k, Value: v})
	})
	props.ContentType = ctype
	if id := it.EventID(); id != "" {
		props.User = append(props.User, paho5.UserProperty{Key: EventIDProperty, Value: id})
	}
	return &paho5.Publish{Topic: t.cfg.Topic, QoS: byte(t.cfg.QoS), Payload: body, Properties: props}
}

// send5 publishes items one at a time, in order, each waiting for its
// acknowledgement at QoS 1 and 2 (paho.golang has no pipelined publish
// that reports each message's outcome). It stops at the first failure.
// Concurrent sends share the connection, each with one message in flight.
func (t *Target) send5(ctx context.Context, items []delivery.Item) error {
	c5, err := t.connect5(ctx)
	if err != nil {
		return err
	}
	// A publish waits for its acknowledgement until the connection dies,
	// not for the whole packet timeout.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c5.dead:
			cancel()
		case <-ctx.Done():
		}
	}()
	var failed []delivery.ItemError
	for i := range items {
		var err error
		if !c5.alive() {
			err = errConnLost
		} else {
			var pr *paho5.PublishResponse
			pr, err = c5.c.Publish(ctx, t.publish5(&items[i]))
			if err != nil && !c5.alive() {
				err = errConnLost
			} else if err != nil {
				err = t.errorf("publishing to %s: %v", t.cfg.Topic, err)
				if pr != nil && (pr.ReasonCode == reasonPacketTooLarge || pr.ReasonCode == reasonPayloadFormatBad) {
					failed = append(failed, delivery.ItemError{Index: i, Err: delivery.Permanent(err)})
					continue // the broker refused this message alone
				}
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, errConnLost) {
			err = t.errorf("publishing to %s: %v", t.cfg.Topic, err)
		}
		failed = append(failed, delivery.ItemError{Index: i, Err: err})
		for j := i + 1; j < len(items); j++ {
			failed = append(failed, delivery.ItemError{Index: j, Err: errNotSent})
		}
		t.reset5(c5)
		break
	}
	if failed == nil {
		return nil
	}
	return &delivery.BatchError{Failed: failed}
}

var errNotSent = fmt.Errorf("mqtt: not sent: %w", delivery.ErrEarlierFailed)
