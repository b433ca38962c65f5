package natscluster

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
)

// routeProxy carries every route connection between the nodes, so a test
// can cut one node off from the others (a network partition) and heal it.
// Node n advertises its proxy address for routes, so both the routes it is
// configured with and those it learns by gossip go through a proxy. A
// route connection's acceptor is known by the proxy it came through; its
// dialer by the server ID in the CONNECT line it sends first.
type routeProxy struct {
	mu      sync.Mutex
	ls      [3]net.Listener
	target  [3]string      // node n's real route address
	started bool           // accepting
	ids     map[string]int // server ID → node
	cut     [3]bool
	conns   map[*proxied]struct{}
	closed  bool
}

type proxied struct {
	fromID     string // the dialer's server ID, "" until it sent CONNECT
	to         int    // the acceptor's node number
	down, upst net.Conn
}

func (p *proxied) close() { p.down.Close(); p.upst.Close() }

func newRouteProxy() (*routeProxy, error) {
	p := &routeProxy{ids: map[string]int{}, conns: map[*proxied]struct{}{}}
	for i := range p.ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.close()
			return nil, err
		}
		p.ls[i] = l
	}
	return p, nil
}

func (p *routeProxy) addr(n int) string { return p.ls[n-1].Addr().String() }

// start sets the nodes' real route addresses, and starts accepting on
// the first call: a cluster started again on other ports (Start) calls it
// again with the new addresses.
func (p *routeProxy) start(targets [3]string) {
	p.mu.Lock()
	p.target = targets
	first := !p.started
	p.started = true
	p.mu.Unlock()
	if first {
		for i, l := range p.ls {
			go p.accept(l, i+1)
		}
	}
}

// setID records node n's server ID (new at every start).
func (p *routeProxy) setID(n int, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids[id] = n
}

func (p *routeProxy) accept(l net.Listener, to int) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go p.serve(c, to)
	}
}

func (p *routeProxy) serve(down net.Conn, to int) {
	p.mu.Lock()
	if p.closed || p.cut[to-1] {
		p.mu.Unlock()
		down.Close()
		return
	}
	target := p.target[to-1]
	p.mu.Unlock()
	up, err := net.Dial("tcp", target)
	if err != nil {
		down.Close()
		return
	}
	pc := &proxied{to: to, down: down, upst: up}
	p.mu.Lock()
	p.conns[pc] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
		pc.close()
	}()
	go func() { _, _ = io.Copy(down, up); pc.close() }()
	// The dialer's first line is its CONNECT, naming it by server ID.
	r := bufio.NewReaderSize(down, 64<<10)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	if js, ok := strings.CutPrefix(line, "CONNECT "); ok {
		var ci struct {
			Name string `json:"name"`
		}
		if json.Unmarshal([]byte(strings.TrimSpace(js)), &ci) == nil {
			p.mu.Lock()
			pc.fromID = ci.Name
			from := p.ids[ci.Name]
			isolated := from != 0 && p.cut[from-1]
			p.mu.Unlock()
			if isolated {
				return
			}
		}
	}
	if _, err := up.Write([]byte(line)); err != nil {
		return
	}
	_, _ = io.Copy(up, r)
}

// isolate cuts node n off: its route connections close and new ones are
// refused until heal.
func (p *routeProxy) isolate(n int) {
	p.mu.Lock()
	p.cut[n-1] = true
	var victims []*proxied
	for pc := range p.conns {
		if pc.to == n || (pc.fromID != "" && p.ids[pc.fromID] == n) {
			victims = append(victims, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range victims {
		pc.close()
	}
}

func (p *routeProxy) heal(n int) {
	p.mu.Lock()
	p.cut[n-1] = false
	p.mu.Unlock()
}

func (p *routeProxy) close() {
	p.mu.Lock()
	p.closed = true
	var all []*proxied
	for pc := range p.conns {
		all = append(all, pc)
	}
	p.mu.Unlock()
	for _, l := range p.ls {
		if l != nil {
			l.Close()
		}
	}
	for _, pc := range all {
		pc.close()
	}
}
