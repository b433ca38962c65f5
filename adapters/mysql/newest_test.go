package mysql

import (
	"context"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// TestNamespaceNewestPerKey: a namespace batch that holds several
// operations on one key (a batch not coalesced by the engine, as Send's
// contract allows) leaves each key in its newest state: a delete then a
// put stores the object, a put then a delete removes it.
func TestNamespaceNewestPerKey(t *testing.T) {
	table := tableName("newest")
	db := testDB(t, table)
	tg := newTarget(t, testConfig(table, "namespace"))
	defer tg.Close()
	items := []delivery.Item{
		targettest.Item("images", "kept.jpg", event.ObjectCreatedPut, 0),
		targettest.Item("images", "gone.jpg", event.ObjectCreatedPut, 1),
		targettest.Item("images", "kept.jpg", event.ObjectRemovedDelete, 2),
		targettest.Item("images", "gone.jpg", event.ObjectRemovedDelete, 3),
		targettest.Item("images", "kept.jpg", event.ObjectCreatedPut, 4),
	}
	if err := tg.Send(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	got := state(t, db, table)
	if _, ok := got["images/kept.jpg"]; !ok || len(got) != 1 {
		keys := []string{}
		for k := range got {
			keys = append(keys, k)
		}
		t.Fatalf("keys stored %q, want only images/kept.jpg", keys)
	}
}
