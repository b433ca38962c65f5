package relay

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

func TestCompressionConfig(t *testing.T) {
	_, err := ParseConfig([]byte(`{"relay":{"compression":"lz4"}}`))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Path != "relay.compression" || !strings.Contains(err.Error(), `"lz4"`) {
		t.Fatalf("got %v, want an error at relay.compression naming lz4", err)
	}
	for _, c := range []struct{ setting, codec string }{{"", "s2"}, {"s2", "s2"}, {"zstd", "zstd"}, {"none", "none"}} {
		t.Run(c.codec+"-"+c.setting, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := ParseConfig([]byte(`{"relay":{"dataDir":"` + dir + `","compression":"` + c.setting + `"},` +
				`"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}},` +
				`"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","events":["put"]}]}}`))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Open(cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Publish(context.Background(), targettest.Record("images", "a.jpg", event.ObjectCreatedPut, 1)); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			l, err := wal.OpenReadOnly(cfg.DataPath("wal.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var codecs []string
			if err := l.FrameInfos(func(fi wal.FrameInfo) bool { codecs = append(codecs, fi.Codec); return true }); err != nil {
				t.Fatal(err)
			}
			if len(codecs) != 1 || codecs[0] != c.codec {
				t.Fatalf("got frames of codecs %v, want one %s frame", codecs, c.codec)
			}
		})
	}
}
