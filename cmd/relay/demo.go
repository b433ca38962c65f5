package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bucketrelay/bucketrelay/relay"
)

// demoCommand runs the relay on an embedded default: a webhook target that
// posts to a receiver inside the same process, so nothing has to be
// installed. It publishes the seed guide's sample events over the HTTP API
// and shows what the receiver got.
type demoCommand struct {
	out io.Writer
}

// Usage prints the command's help.
func (c *demoCommand) Usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage: relay demo [--data DIR] [--listen ADDR] [--keep]

Runs the relay with a webhook target (arn:minio:sqs::1:webhook) pointing at a
built-in receiver, sets the rule "images: put,delete with suffix .jpg" through
the bucket notification API, publishes sample events through POST /v1/events
and prints what the receiver gets. With --keep it goes on serving until
Ctrl-C, so you can try 'relay events list images' and curl against it.

Flags:
`)
	fs.PrintDefaults()
}

// Run runs the demo.
func (c *demoCommand) Run(ctx context.Context, args []string) error {
	if c.out == nil {
		c.out = os.Stdout
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dataDir := fs.String("data", "", "data directory (default: a new temporary directory)")
	listen := fs.String("listen", "127.0.0.1:9900", "API address (loopback); a busy port falls back to a free one")
	keep := fs.Bool("keep", false, "keep serving after the demo until Ctrl-C")
	fs.Usage = func() { c.Usage(fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		d, err := os.MkdirTemp("", "relay-demo-")
		if err != nil {
			return err
		}
		*dataDir = d
	}

	// The built-in webhook receiver.
	got := make(chan []byte, 16)
	var mu sync.Mutex
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	rsrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		select {
		case got <- b:
		default:
		}
		mu.Unlock()
	})}
	go rsrv.Serve(rln)
	defer rsrv.Close()

	if ln, err := net.Listen("tcp", *listen); err == nil {
		ln.Close()
	} else {
		*listen = "127.0.0.1:0"
	}
	cfgJSON := fmt.Sprintf(`{
  "relay": {"dataDir": %q, "listen": %q, "minBackoff": "50ms", "maxBackoff": "2s"},
  "notify": {"webhook": {"1": {"enable": true, "endpoint": "http://%s/"}}}
}`, *dataDir, *listen, rln.Addr())
	cfg, err := relay.ParseConfig([]byte(cfgJSON))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Demo configuration (data in %s):\n%s\n\n", *dataDir, cfgJSON)

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(sctx, cfg, c.out, func(a string) { addrc <- a }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		return err
	}
	base := "http://" + addr

	step := func(format string, a ...any) { fmt.Fprintf(c.out, "\n$ "+format+"\n", a...) }
	ev := &eventsCommand{out: c.out}
	step("relay events add images arn:minio:sqs::1:webhook --suffix .jpg --server %s", base)
	if err := ev.Run(ctx, []string{"add", "images", "arn:minio:sqs::1:webhook", "--suffix", ".jpg", "--server", base}); err != nil {
		return err
	}
	step("relay events list images --server %s", base)
	if err := ev.Run(ctx, []string{"list", "images", "--server", base}); err != nil {
		return err
	}

	samples := []struct{ name, key string }{
		{"s3:ObjectCreated:Put", "myphoto.jpg"},
		{"s3:ObjectCreated:Put", "notes.txt"}, // filtered out by the suffix
		{"s3:ObjectRemoved:Delete", "myphoto.jpg"},
	}
	var recs []string
	for i, s := range samples {
		recs = append(recs, sampleRecord(s.name, s.key, i))
	}
	body := `{"Records":[` + strings.Join(recs, ",") + `]}`
	step("curl -X POST %s/v1/events -d '{\"Records\":[...3 records: put myphoto.jpg, put notes.txt, delete myphoto.jpg]}'", base)
	resp, err := http.Post(base+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	ack, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Fprintf(c.out, "%s %s", resp.Status, ack)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("publishing failed: %s", resp.Status)
	}

	fmt.Fprintln(c.out, "\nThe webhook receiver got (notes.txt does not match the rule):")
	for i := 0; i < 2; i++ {
		select {
		case b := <-got:
			fmt.Fprintf(c.out, "  %s\n", b)
		case <-time.After(10 * time.Second):
			return fmt.Errorf("the receiver got %d of 2 events in 10s", i)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fmt.Fprintln(c.out, "\nDelivered.")
	if *keep {
		fmt.Fprintf(c.out, "Serving on %s until Ctrl-C.\n", base)
		<-ctx.Done()
	}
	stop()
	if err := <-errc; err != nil {
		return err
	}
	fmt.Fprintf(c.out, "\nThe log stays in %s; inspect it with: go run ./cmd/walinspect info %s\n", *dataDir, *dataDir)
	return nil
}

// sampleRecord returns an event record shaped like the seed guide's.
func sampleRecord(name, key string, i int) string {
	return fmt.Sprintf(`{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"%s","eventName":%q,"userIdentity":{"principalId":"minio"},"requestParameters":{"sourceIPAddress":"127.0.0.1:38062"},"responseElements":{"x-amz-request-id":"14B09A09703FC47%d","x-minio-origin-endpoint":"http://127.0.0.1:9000"},"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"images","ownerIdentity":{"principalId":"minio"},"arn":"arn:aws:s3:::images"},"object":{"key":%q,"size":6474,"eTag":"a3410f4f8788b510d6f19c5067e60a90","sequencer":"14B09A09703FC47%d"}},"source":{"host":"127.0.0.1","port":"38062","userAgent":"MinIO (linux; amd64) minio-go/v7 mc/RELEASE"}}`,
		time.Now().UTC().Format(time.RFC3339Nano), name, i, key, i)
}
