package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/internal/amjs"
	"github.com/dynamerge/dynamerge/internal/mutate"
)

// Sizes of TestDifferentialServer.
const (
	diffMaxChange = 1024             // larger changes are not mutated by default (too many positions)
	diffMaxBase   = 8 << 10          // nor changes with a longer history (each mutation pushes it again)
	diffLastN     = 3                // per golden case, the last few changes are mutated
	diffBatch     = 250              // docs per /v1/sync request
	diffReport    = 10               // disagreements reported in full
	diffSlowBatch = 15 * time.Second // one batch; far above its normal time
)

var (
	diffXORs     = []byte{0x01, 0x80, 0xff}
	diffXORsLong = []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff}
)

// diffCase is one mutated change and the history it is pushed onto.
type diffCase struct {
	name   string
	base   []byte
	change []byte
	heads  []string // the server's heads, when it accepted the change
}

// diffCorpus mutates changes of the golden histories made by Automerge JS in
// crdt/testdata: every byte from the chunk type on, XORed with each value,
// checksum fixed up. The unmutated changes come first as controls.
func diffCorpus(tb testing.TB, long bool) (controls, mutated []diffCase) {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "crdt", "testdata", "*", "changes.bin"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden histories in crdt/testdata/*/changes.bin (%v)", err)
	}
	sort.Strings(files)
	xors := diffXORs
	if long {
		xors = diffXORsLong
	}
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		chunks, err := mutate.Chunks(b)
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		first := 0
		if !long {
			first = max(0, len(chunks)-diffLastN)
		}
		for i := first; i < len(chunks); i++ {
			c := chunks[i]
			base := slices.Concat(chunks[:i]...)
			controls = append(controls, diffCase{name: fmt.Sprintf("%s change %d", name, i), base: base, change: c})
			if !long && (len(c) > diffMaxChange || len(base) > diffMaxBase) {
				continue
			}
			for pos := 8; pos < len(c); pos++ {
				for _, x := range xors {
					mutated = append(mutated, diffCase{
						name:   fmt.Sprintf("%s change %d pos %d xor %#02x", name, i, pos, x),
						base:   base,
						change: mutate.Flip(c, pos, x),
					})
				}
			}
		}
	}
	return controls, mutated
}

// pushCorpus pushes each case to a fresh record (history first, then the
// change) in batches, and returns the accepted cases, with the server's
// heads, and the count of refusals per error code.
func pushCorpus(ctx context.Context, tb testing.TB, c *client.Client, prefix string, cases []diffCase) (accepted []diffCase, refused map[string]int) {
	tb.Helper()
	refused = map[string]int{}
	for lo := 0; lo < len(cases); lo += diffBatch {
		batch := cases[lo:min(lo+diffBatch, len(cases))]
		docs := make([]client.Doc, len(batch))
		for i, dc := range batch {
			docs[i] = client.Doc{Collection: "diff", ID: fmt.Sprintf("%s%d", prefix, lo+i), Changes: dc.base}
		}
		t0 := time.Now()
		res, err := c.Sync(ctx, docs)
		checkBatchTime(tb, "histories", lo, len(docs), time.Since(t0))
		if err != nil {
			tb.Fatalf("pushing histories %d..%d: %v", lo, lo+len(batch), err)
		}
		for i := range docs {
			if res[i].Err != nil {
				tb.Fatalf("%s: the valid history was refused: %v", batch[i].name, res[i].Err)
			}
			docs[i].Have = res[i].Heads
			docs[i].Changes = batch[i].change
		}
		t0 = time.Now()
		res, err = c.Sync(ctx, docs)
		checkBatchTime(tb, "mutated changes", lo, len(docs), time.Since(t0))
		if err != nil {
			tb.Fatalf("pushing mutated changes %d..%d: %v", lo, lo+len(batch), err)
		}
		for i, r := range res {
			if r.Err != nil {
				refused[r.Err.Code]++
				continue
			}
			dc := batch[i]
			dc.heads = sortedHeads(r.Heads)
			accepted = append(accepted, dc)
		}
	}
	return accepted, refused
}

// jsResult is Automerge JS's verdict on one case.
type jsResult struct {
	ok    bool
	heads []string
	err   string
}

// checkBatchTime flags a batch that took far longer than its work: a
// crafted change must not stall a worker (and every record sharded to it).
func checkBatchTime(tb testing.TB, what string, lo, n int, d time.Duration) {
	tb.Helper()
	if os.Getenv("E2E_DEBUG") != "" {
		tb.Logf("batch %d: %d %s in %v", lo, n, what, d)
	}
	if d > diffSlowBatch {
		tb.Errorf("pushing %s %d..%d took %v (limit %v): the server stalled", what, lo, lo+n, d, diffSlowBatch)
	}
}

// checkInJS loads each case in Automerge JS and returns, per case, whether
// it loaded and the heads it got.
func checkInJS(tb testing.TB, js *amjs.Oracle, cases []diffCase) []jsResult {
	tb.Helper()
	res := make([]jsResult, len(cases))
	for i, dc := range cases {
		r, err := js.Check(dc.base, dc.change)
		if err != nil {
			tb.Fatalf("%s: %v", dc.name, err)
		}
		res[i] = jsResult{ok: r.OK, heads: sortedHeads(r.Heads), err: r.Error}
	}
	return res
}

func TestDifferentialServer(t *testing.T) {
	js := amjs.Start(t)
	controls, mutated := diffCorpus(t, *flagLong)
	if testing.Short() {
		// A sample: every 7th mutation still covers every kind of column.
		var sample []diffCase
		for i := 0; i < len(mutated); i += 7 {
			sample = append(sample, mutated[i])
		}
		mutated = sample
	}
	s := newStack(t)
	ctx := context.Background()
	start := time.Now()

	ctlAccepted, ctlRefused := pushCorpus(ctx, t, s.client, "ctl", controls)
	if len(ctlRefused) > 0 {
		t.Errorf("unmutated golden changes refused: %v", ctlRefused)
	}
	accepted, refused := pushCorpus(ctx, t, s.client, "mut", mutated)
	pushed := time.Since(start)

	all := slices.Concat(ctlAccepted, accepted)
	jsRes := checkInJS(t, js, all)
	bad := 0
	kinds := map[string]int{} // disagreements by Automerge JS's complaint
	for i, dc := range all {
		switch {
		case !jsRes[i].ok:
			bad++
			kinds[complaintKind(jsRes[i].err)]++
			if bad <= diffReport {
				t.Errorf("%s: accepted by the server (heads %v) but Automerge JS refuses it: %s\n\tbase (%d bytes) %s\n\tchange %x",
					dc.name, dc.heads, jsRes[i].err, len(dc.base), shortHex(dc.base), dc.change)
			} else if bad == diffReport+1 {
				t.Errorf("(further disagreements counted, not shown)")
			}
		case !slices.Equal(jsRes[i].heads, dc.heads):
			bad++
			kinds["different heads"]++
			if bad <= diffReport {
				t.Errorf("%s: server heads %v, Automerge JS heads %v\n\tchange %x", dc.name, dc.heads, jsRes[i].heads, dc.change)
			}
		}
	}
	if bad > 0 {
		t.Logf("disagreements by Automerge JS's complaint: %v", kinds)
	}
	t.Logf("%d controls (%d accepted), %d mutations: %d accepted, refused %v; %d disagreements with Automerge JS; pushed in %v, total %v",
		len(controls), len(ctlAccepted), len(mutated), len(accepted), refused, bad, pushed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// complaintKind groups Automerge JS errors that differ only in hashes and
// numbers.
func complaintKind(msg string) string {
	return digitsRE.ReplaceAllString(hashRE.ReplaceAllString(msg, "<hash>"), "N")
}

var (
	hashRE   = regexp.MustCompile(`[0-9a-f]{64}`)
	digitsRE = regexp.MustCompile(`[0-9]+`)
)

func shortHex(b []byte) string {
	if len(b) > 48 {
		return fmt.Sprintf("%x…", b[:48])
	}
	return fmt.Sprintf("%x", b)
}
