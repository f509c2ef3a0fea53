package integration

import (
	"crypto/rand"
	"os"
	"slices"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/internal/amgo"
	"github.com/dynamerge/dynamerge/internal/testutil"
	"github.com/dynamerge/dynamerge/server"
	"github.com/dynamerge/dynamerge/store"
)

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

// newStack starts an engine and server on st (one dynamerge "process");
// they stop (the store stays open) at the end of the test.
func newStack(tb testing.TB, st store.Store, eopts engine.Options) *testutil.Stack {
	tb.Helper()
	return testutil.Start(tb, st, eopts, server.Options{})
}

// doc is a client's copy of one record, made with automerge-go.
type doc struct {
	key     store.Key
	am      *automerge.Doc
	pending [][]byte // changes made but not yet acknowledged
	made    map[crdt.Hash]bool
}

func newDoc(key store.Key) *doc {
	return &doc{key: key, am: automerge.New(), made: map[crdt.Hash]bool{}}
}

// set sets a root key to a value and commits: one change, kept pending.
func (d *doc) set(tb testing.TB, k string, v any) {
	tb.Helper()
	h, c := amgo.Edit(tb, d.am, k, v)
	d.pending = append(d.pending, c)
	d.made[crdt.Hash(h)] = true
}

func (d *doc) heads() []string {
	var hs []string
	for _, h := range d.am.Heads() {
		hs = append(hs, crdt.Hash(h).String())
	}
	slices.Sort(hs)
	return hs
}

func join(bs [][]byte) []byte { return slices.Concat(bs...) }

// randomText returns n random lowercase letters: text that does not
// compress, so that sizes in the store are what the test says.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}
