package nats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// jsPublisher publishes to JetStream on one connection and matches the
// PubAcks itself: every message of a send carries a reply subject naming
// the send and the item (<inbox>.<send>.<item>), one subscription takes
// the replies, and a send waits once for all of its own. Against the
// jetstream package's PublishMsgAsync this saves a future with two
// channels, a map entry and a timer per message, and decodes a plain
// PubAck without encoding/json; a send's messages are built in one reused
// message, since nothing keeps them after the publish.
type jsPublisher struct {
	nc     *natsgo.Conn
	sub    *natsgo.Subscription
	prefix string // the reply subjects' inbox, with its trailing "."
	status chan natsgo.Status

	mu    sync.Mutex // guards sends and next, and each send's answers
	sends map[uint64]*jsSend
	next  uint64
}

// jsSend is one send's PubAcks: errs[i] is item i's failure, answered[i]
// whether its reply came, left counts the replies still due; done is
// closed when left is zero.
type jsSend struct {
	errs     []error
	answered []bool
	left     int
	done     chan struct{}
}

// errDisconnected fails the PubAcks still due when the connection breaks:
// their replies would never come.
var errDisconnected = errors.New("nats: waiting for PubAck: disconnected")

func newJSPublisher(nc *natsgo.Conn) (*jsPublisher, error) {
	p := &jsPublisher{nc: nc, prefix: nc.NewRespInbox() + ".", sends: map[uint64]*jsSend{}}
	sub, err := nc.Subscribe(p.prefix+"*.*", p.reply)
	if err != nil {
		return nil, err
	}
	// PubAcks are small and a window holds a few thousand: no limit
	// short of the connection's memory, rather than dropping acks as a
	// slow consumer.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	p.sub = sub
	p.status = nc.StatusChanged(natsgo.DISCONNECTED, natsgo.RECONNECTING, natsgo.CLOSED)
	go p.watch()
	return p, nil
}

// watch fails the PubAcks due when the connection breaks, until the
// connection is closed.
func (p *jsPublisher) watch() {
	for s := range p.status {
		p.failAll(errDisconnected)
		if s == natsgo.CLOSED {
			return
		}
	}
}

// failAll fails every PubAck still due with err.
func (p *jsPublisher) failAll(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sends {
		for i := range s.errs {
			if !s.answered[i] {
				p.answer(s, i, err)
			}
		}
	}
}

// answer records item i's result; the caller holds p.mu.
func (p *jsPublisher) answer(s *jsSend, i int, err error) {
	s.answered[i], s.errs[i] = true, err
	if s.left--; s.left == 0 {
		close(s.done)
	}
}

// reply takes one PubAck (or a no-responders status) for the send and
// item its subject names.
func (p *jsPublisher) reply(m *natsgo.Msg) {
	id, i, ok := parseReply(m.Subject, len(p.prefix))
	if !ok {
		return
	}
	err := pubAckErr(m)
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.sends[id]; s != nil && i < len(s.errs) && !s.answered[i] {
		p.answer(s, i, err)
	}
}

// parseReply reads "<send>.<item>" after the inbox prefix of subject.
func parseReply(subject string, prefix int) (send uint64, item int, ok bool) {
	if len(subject) <= prefix {
		return 0, 0, false
	}
	var n [2]uint64
	k := 0
	for _, c := range []byte(subject[prefix:]) {
		switch {
		case c == '.' && k == 0:
			k = 1
		case c >= '0' && c <= '9':
			n[k] = n[k]*10 + uint64(c-'0')
		default:
			return 0, 0, false
		}
	}
	return n[0], int(n[1]), k == 1
}

var (
	ackStream = []byte(`"stream"`)
	ackError  = []byte(`"error"`)
)

// pubAckErr returns nil for a PubAck that stored the message (duplicates
// included), else why not.
func pubAckErr(m *natsgo.Msg) error {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return natsgo.ErrNoResponders
		}
		return fmt.Errorf("nats: PubAck: status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
	}
	// A plain PubAck, {"stream":"S","seq":N[,"duplicate":true]}, without
	// decoding it; anything else goes through encoding/json.
	if bytes.Contains(m.Data, ackStream) && !bytes.Contains(m.Data, ackError) {
		return nil
	}
	var pa struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
	}
	if err := json.Unmarshal(m.Data, &pa); err != nil {
		return fmt.Errorf("nats: PubAck: %w", jetstream.ErrInvalidJSAck)
	}
	if pa.Error != nil {
		return pa.Error
	}
	if pa.Stream == "" {
		return fmt.Errorf("nats: PubAck: %w", jetstream.ErrInvalidJSAck)
	}
	return nil
}

// begin registers a send of n items and returns its id and reply
// subjects (one string, sliced: no allocation per message).
func (p *jsPublisher) begin(n int) (uint64, *jsSend, []string) {
	s := &jsSend{errs: make([]error, n), answered: make([]bool, n), left: n, done: make(chan struct{})}
	p.mu.Lock()
	p.next++
	id := p.next
	p.sends[id] = s
	p.mu.Unlock()
	if n == 0 {
		close(s.done)
	}
	head := p.prefix + strconv.FormatUint(id, 10) + "."
	buf := make([]byte, 0, n*(len(head)+6))
	ends := make([]int, n)
	for i := range n {
		buf = append(buf, head...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		ends[i] = len(buf)
	}
	all := string(buf)
	replies := make([]string, n)
	start := 0
	for i, end := range ends {
		replies[i], start = all[start:end], end
	}
	return id, s, replies
}

// end forgets send id, failing what is still due with err, and returns
// each item's result.
func (p *jsPublisher) end(id uint64, s *jsSend, err error) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.sends, id)
	for i := range s.errs {
		if !s.answered[i] {
			p.answer(s, i, err)
		}
	}
	return s.errs
}

// close ends the subscription and the status watch; the connection is
// the caller's.
func (p *jsPublisher) close() {
	p.sub.Unsubscribe()
	p.nc.RemoveStatusListener(p.status)
	p.failAll(errDisconnected)
}

// publisher returns the JetStream publisher, connecting on first use.
func (t *Target) publisher() (*jsPublisher, error) {
	nc, err := t.conn()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.jsp != nil && t.jsp.nc == nc {
		return t.jsp, nil
	}
	if t.jsp != nil {
		t.jsp.close()
	}
	p, err := newJSPublisher(nc)
	if err != nil {
		t.jsp = nil
		return nil, fmt.Errorf("nats: jetstream: %s", t.redact(err.Error()))
	}
	t.jsp = p
	return p, nil
}

// sendJetStream publishes the batch and waits for every PubAck.
func (t *Target) sendJetStream(ctx context.Context, items []delivery.Item) error {
	p, err := t.publisher()
	if err != nil {
		return err
	}
	nc := p.nc
	if err := t.connected(nc); err != nil {
		return err
	}
	id, s, replies := p.begin(len(items))
	sent := len(items)
	errs := make([]error, len(items))
	reconnects := reconnectCount(nc)
	var reuse coreMsg
	for i := range items {
		if reconnectCount(nc) != reconnects {
			for j := i; j < len(items); j++ {
				errs[j] = errReconnected
			}
			sent = i
			break
		}
		msg := reuse.next(t, items, i)
		msg.Reply = replies[i]
		if err := nc.PublishMsg(msg); err != nil {
			errs[i] = t.publishErr(err)
			if !delivery.IsPermanent(errs[i]) {
				for j := i + 1; j < len(items); j++ {
					errs[j] = errNotSent
				}
				sent = i
				break
			}
		}
	}
	// Items not published have their error already; their replies will
	// not come.
	p.mu.Lock()
	for i := sent; i < len(items); i++ {
		if !s.answered[i] {
			p.answer(s, i, errs[i])
		}
	}
	for i := range sent {
		if errs[i] != nil && !s.answered[i] {
			p.answer(s, i, errs[i])
		}
	}
	p.mu.Unlock()
	timer := time.NewTimer(DefaultAckTimeout + time.Second)
	defer timer.Stop()
	var stop error
	select {
	case <-s.done:
	case <-ctx.Done():
		stop = fmt.Errorf("nats: waiting for PubAck: %w", ctx.Err())
	case <-timer.C:
		stop = errors.New("nats: waiting for PubAck: timed out")
	}
	for i, err := range p.end(id, s, stop) {
		switch {
		case errs[i] != nil || err == nil:
		case err == stop || errors.Is(err, errDisconnected):
			errs[i] = err
		default:
			errs[i] = t.ackErr(err)
		}
	}
	return ordered(errs)
}
